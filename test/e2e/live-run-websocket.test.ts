import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { AudienceSyncRunUpdated, SyncRuns, TriggerAudienceSync } from '../support/operations.js';
import { dataOf, expectType, hashedEmails, heldEmails, metaSyncScenario } from '../support/scenario.js';
import { addingWithProgress, whileNoWorkerTakesJobs } from '../support/sync-runs.js';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startTestGateway();
});
afterAll(async () => {
  await gateway.stop();
});

test('a triggered run goes QUEUED → RUNNING → SUCCEEDED live over graphql-ws, then shows in the history', async () => {
  const emails = ['ada@example.com', ' Grace@Example.com ', 'linus@example.org'];
  const { fake, sync } = await metaSyncScenario(gateway, emails);
  const subscription = await gateway.subscribeOverWebSocket(AudienceSyncRunUpdated, { syncId: sync.id });
  // The run's last step (reading the platform audience, after the audience is created and the batch
  // sent) is held until the run was seen adding with progress.
  const hold = fake.hold({ after: 2 });

  // The first event is read before any worker may take the run: it shows the run queued.
  const { success, first } = await whileNoWorkerTakesJobs(async () => {
    const triggered = dataOf(await gateway.execute(TriggerAudienceSync, { id: sync.id }));
    return { success: expectType(triggered.triggerAudienceSync, 'TriggerAudienceSyncSuccess'), first: await subscription.next() };
  });
  expect(success.syncRun.status).toBe('QUEUED');
  expect(success.task.status).toBe('QUEUED');
  expect(first.value?.errors).toBeUndefined();
  const events = [first.value!.data!.audienceSyncRunUpdated];
  for await (const { data, errors } of subscription) {
    expect(errors).toBeUndefined();
    events.push(data!.audienceSyncRunUpdated);
    if (addingWithProgress(data!.audienceSyncRunUpdated)) hold.release();
    if (['SUCCEEDED', 'FAILED'].includes(data!.audienceSyncRunUpdated.status)) break;
  }

  const statuses = events.map((event) => event.status);
  expect(statuses[0]).toBe('QUEUED');
  expect(statuses).toContain('RUNNING');
  expect(statuses.at(-1)).toBe('SUCCEEDED');
  expect(events.some(addingWithProgress)).toBe(true);
  expect(events.at(-1)).toMatchObject({ progress: 1, membersAdded: 3 });
  expect(heldEmails(fake)).toEqual(hashedEmails(emails));

  const history = dataOf(await gateway.execute(SyncRuns, { id: sync.id }));
  const node = history.node as { runs: { edges: { node: unknown }[] }; lastSyncedCount: number; lastRun: { id: string } };
  expect(node.runs.edges).toHaveLength(1);
  expect(node.runs.edges[0]!.node).toMatchObject({ status: 'SUCCEEDED', trigger: 'MANUAL', membersAdded: 3, totalMembers: 3 });
  expect(node.lastSyncedCount).toBe(3);
  expect(node.lastRun?.id).toBe(success.syncRun.id);
  await fake.close();
});

test('a WebSocket without a valid API key is refused', async () => {
  const client = gateway.webSocketClient('asg_not-a-key');
  const outcome = await new Promise<unknown>((resolve) =>
    client.subscribe({ query: '{ __typename }' }, { next: () => undefined, error: resolve, complete: () => resolve('completed') }),
  );
  expect(outcome).not.toBe('completed');
  expect((outcome as { code?: number }).code).toBe(4403);
});
