import { expect, test } from 'vitest';
import { AudienceSyncRunUpdated, SyncRunUpdated, TaskUpdated } from '../support/operations.js';
import { hashedEmails, heldEmails } from '../support/scenario.js';
import { readUntil, subscribeOverSSE } from '../support/sse.js';
import { useGatewaySuite } from '../support/suite.js';
import { addingWithProgress, readSync, triggerSync, whileNoWorkerTakesJobs } from '../support/sync-runs.js';

const suite = useGatewaySuite();

const EMAILS = ['ada@example.com', ' Grace@Example.com ', 'linus@example.org'];
const isFinished = (item: { status: string }) => ['SUCCEEDED', 'FAILED', 'COMPLETED', 'CANCELLED'].includes(item.status);

test('a triggered run goes QUEUED → RUNNING → SUCCEEDED live over server-sent events', async () => {
  const { fake, sync } = await suite.metaSyncScenario(EMAILS);
  const stream = await subscribeOverSSE(suite.gateway, AudienceSyncRunUpdated, { syncId: sync.id });
  // The run's last step (reading the platform audience, after the audience is created and the batch
  // sent) is held until the run was seen adding with progress.
  const hold = fake.hold({ after: 2 });

  // The first event is read before any worker may take the run: it shows the run queued.
  const { triggered, first } = await whileNoWorkerTakesJobs(async () => ({
    triggered: await triggerSync(suite.gateway, sync.id),
    first: await stream[Symbol.asyncIterator]().next(),
  }));
  expect(triggered.syncRun.status).toBe('QUEUED');
  expect(first.value?.errors).toBeUndefined();
  const rest = await readUntil(stream, ({ audienceSyncRunUpdated: event }) => {
    if (addingWithProgress(event)) hold.release();
    return isFinished(event);
  });
  const events = [first.value!.data!, ...rest].map((data) => data.audienceSyncRunUpdated);

  expect(events.every((event) => event.id === triggered.syncRun.id)).toBe(true);
  const statuses = events.map((event) => event.status);
  expect(statuses[0]).toBe('QUEUED');
  expect(statuses).toContain('RUNNING');
  expect(events.some(addingWithProgress)).toBe(true);
  expect(events.at(-1)).toEqual({
    id: triggered.syncRun.id,
    status: 'SUCCEEDED',
    phase: 'succeeded',
    progress: 1,
    membersAdded: 3,
    membersRemoved: 0,
    totalMembers: 3,
    errorMessage: null,
  });
  expect(heldEmails(fake)).toEqual(hashedEmails(EMAILS));
  expect((await readSync(suite.gateway, sync.id)).lastSyncedCount).toBe(3);
});

test('the task and the run a trigger returns can be followed to their end', async () => {
  const { fake, sync } = await suite.metaSyncScenario(EMAILS);
  // Meta holds the run mid-flight (its task RUNNING, nothing sent yet) while the subscriptions start.
  const hold = fake.hold();
  const triggered = await triggerSync(suite.gateway, sync.id);
  await hold.waiting;
  const taskEvents = await subscribeOverSSE(suite.gateway, TaskUpdated, { taskId: triggered.task.id });
  const runEvents = await subscribeOverSSE(suite.gateway, SyncRunUpdated, { runId: triggered.syncRun.id });
  // Then the run's last step (reading the platform audience, after the batch is sent) is held until
  // the run was seen adding: subscribers get a run's latest state, not every state.
  const lastStep = fake.hold({ after: 1 });
  hold.release();

  const [tasks, runs] = await Promise.all([
    readUntil(taskEvents, (data) => isFinished(data.taskUpdated)),
    readUntil(runEvents, (data) => {
      if (data.syncRunUpdated.phase === 'adding') lastStep.release();
      return isFinished(data.syncRunUpdated);
    }),
  ]);
  const task = tasks.at(-1)!.taskUpdated;
  const run = runs.at(-1)!.syncRunUpdated;
  expect(tasks.map((data) => data.taskUpdated.status)).toEqual(['COMPLETED']);
  expect(task).toMatchObject({
    id: triggered.task.id,
    status: 'COMPLETED',
    error: null,
    run: { id: triggered.syncRun.id, status: 'SUCCEEDED' },
    result: { status: 'SUCCEEDED', membersAdded: 3, membersRemoved: 0, membersInvalid: 0, totalMembers: 3, dryRun: false },
  });
  expect(runs.some((data) => data.syncRunUpdated.phase === 'adding')).toBe(true);
  expect(run).toMatchObject({ id: triggered.syncRun.id, status: 'SUCCEEDED', progress: 1 });
  const result = task.result as { membersAdded: number; membersRemoved: number };
  expect({ membersAdded: run.membersAdded, membersRemoved: run.membersRemoved }).toEqual({
    membersAdded: result.membersAdded,
    membersRemoved: result.membersRemoved,
  });
});

test('a subscription without an API key gets an UNAUTHENTICATED error event', async () => {
  const { sync } = await suite.metaSyncScenario(EMAILS);
  const stream = await subscribeOverSSE(suite.gateway, AudienceSyncRunUpdated, { syncId: sync.id }, { apiKey: null });
  const results = [];
  const timer = setTimeout(() => stream.close(new Error('the stream did not complete')), 60_000);
  for await (const result of stream) results.push(result);
  clearTimeout(timer);
  expect(results).toHaveLength(1);
  expect(results[0]!.data).toBeUndefined();
  expect(results[0]!.errors?.map((error) => error.extensions?.['code'])).toEqual(['UNAUTHENTICATED']);
});
