import type { FormattedExecutionResult } from 'graphql';
import { expect, test } from 'vitest';
import { subscriptionEventLoads } from '../../src/infra/metrics.js';
import { eventBus } from '../../src/infra/pubsub.js';
import { graphql } from '../generated/gql.js';
import { startFakeMeta, type FakeMeta, type RecordedRequest } from '../fakes/meta-server.js';
import { AddAudienceMembers, TriggerAudienceSync, UpdateAudienceSync } from '../support/operations.js';
import {
  META_TOKEN,
  createAudienceWith,
  createMetaDestination,
  createSync,
  dataOf,
  expectType,
} from '../support/scenario.js';
import { readUntil, subscribeOverSSE } from '../support/sse.js';
import { useGatewaySuite } from '../support/suite.js';
import { triggerSync, waitForRunEnd, whileNoWorkerTakesJobs } from '../support/sync-runs.js';
import { waitFor } from '../support/wait.js';

const suite = useGatewaySuite();

const SyncRunsUpdated = graphql(`
  subscription SyncRunsUpdated($syncId: ID, $status: [SyncRunStatus!]) {
    syncRunsUpdated(syncId: $syncId, status: $status) {
      id status phase progress activity membersAdded plannedAdds
      sync { id }
    }
  }
`);

/** Only the run's own columns: nothing a subscriber would load for itself. */
const RunsOfWorkspace = graphql(`
  subscription RunsOfWorkspace {
    syncRunsUpdated { id status phase progress activity membersAdded plannedAdds }
  }
`);

const WatchedSync = graphql(`
  subscription WatchedSync($syncId: ID) {
    audienceSyncUpdated(syncId: $syncId) { id status statusError lastSyncedAt lastSyncedCount nextRunAt lastRun { id status } }
  }
`);

const isUpload = (request: Pick<RecordedRequest, 'url'>) => request.url.endsWith('/users');

/** Holds the fake's first member upload from now on (requests before it go through); resolves with
 * the gate once that upload has arrived. */
async function holdFirstUpload(fake: FakeMeta) {
  for (;;) {
    const gate = fake.hold();
    if (isUpload(await gate.waiting)) return gate;
    gate.release();
  }
}

async function triggerAs(apiKey: string, syncId: string) {
  const result = dataOf(await suite.gateway.execute(TriggerAudienceSync, { id: syncId }, { apiKey }));
  return expectType(result.triggerAudienceSync, 'TriggerAudienceSyncSuccess');
}

const isEnd = (run: { status: string }) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status);

/** Reads a subscription's results until `done` accepts the list so far, without closing it. */
async function readWhile<T>(
  events: AsyncIterator<FormattedExecutionResult<T>>,
  done: (seen: T[]) => boolean,
  timeoutMs = 60_000,
): Promise<T[]> {
  const seen: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(seen)) {
    const step = await Promise.race([
      events.next(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms; so far ${JSON.stringify(seen)}`)), deadline - Date.now()).unref(),
      ),
    ]);
    if (step.done) throw new Error(`the subscription ended; so far ${JSON.stringify(seen)}`);
    expect(step.value.errors).toBeUndefined();
    seen.push(step.value.data!);
  }
  return seen;
}

function expectNoRepeats(events: unknown[]) {
  for (let i = 1; i < events.length; i++) expect(events[i], `event ${i} repeats event ${i - 1}`).not.toEqual(events[i - 1]);
}

/** A Meta sync of `count` members in the workspace of `apiKey` (the suite's by default). */
async function metaSync(count: number, apiKey?: string, cadenceHours = 0) {
  const fake = suite.closeAfterTest(await startFakeMeta({ accessToken: META_TOKEN }));
  const destination = await createMetaDestination(suite.gateway, fake, apiKey);
  const audience = await createAudienceWith(suite.gateway, [], apiKey);
  for (let start = 0; start < count; start += 5_000) {
    const members = Array.from({ length: Math.min(5_000, count - start) }, (_, i) => ({ email: `p${start + i}@example.com` }));
    const added = dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId: audience.id, members }, { apiKey }));
    expect(expectType(added.addAudienceMembers, 'AddAudienceMembersSuccess').added).toBe(members.length);
  }
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, cadenceHours }, apiKey);
  return { fake, sync };
}

test("syncRunsUpdated over graphql-ws streams every run of the workspace, and never another workspace's", async () => {
  const other = await suite.gateway.createWorkspace();
  const mine = await metaSync(3);
  const theirs = await metaSync(3, other.apiKey);
  const myStream = await suite.gateway.subscribeOverWebSocket(SyncRunsUpdated, {});
  const theirStream = await suite.gateway.subscribeOverWebSocket(SyncRunsUpdated, {}, other.apiKey);

  // The first event is read before any worker may take the run: it shows the run queued.
  const { first, queued } = await whileNoWorkerTakesJobs(async () => ({
    first: await triggerSync(suite.gateway, mine.sync.id),
    queued: await readWhile(myStream, (seen) => seen.length === 1),
  }));
  const mineSeen = [...queued, ...(await readWhile(myStream, (seen) => seen.some((event) => isEnd(event.syncRunsUpdated))))].map(
    (event) => event.syncRunsUpdated,
  );
  expect(mineSeen.every((run) => run.id === first.syncRun.id && run.sync.id === mine.sync.id)).toBe(true);
  expect(mineSeen[0]!.status).toBe('QUEUED');
  expect(mineSeen.at(-1)).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3, progress: 1, activity: null });
  expectNoRepeats(mineSeen);

  // The other workspace's first event is its own run: it never heard of the first.
  const theirRun = await triggerAs(other.apiKey, theirs.sync.id);
  const theirSeen = await readWhile(theirStream, (seen) => seen.some((event) => isEnd(event.syncRunsUpdated)));
  expect(theirSeen.every((event) => event.syncRunsUpdated.id === theirRun.syncRun.id)).toBe(true);
  // …and the first workspace's next event is its own next run, not the other's.
  const second = await triggerSync(suite.gateway, mine.sync.id);
  const [next] = await readWhile(myStream, (seen) => seen.length === 1);
  expect(next!.syncRunsUpdated.id).toBe(second.syncRun.id);
  await waitForRunEnd(suite.gateway, second.syncRun.id);
});

test('syncRunsUpdated filters by sync and status', async () => {
  const watched = await metaSync(3);
  const ignored = await metaSync(3);
  const stream = await suite.gateway.subscribeOverWebSocket(SyncRunsUpdated, { syncId: watched.sync.id, status: ['SUCCEEDED'] });
  const skipped = await triggerSync(suite.gateway, ignored.sync.id);
  await waitForRunEnd(suite.gateway, skipped.syncRun.id);
  const triggered = await triggerSync(suite.gateway, watched.sync.id);
  const [event] = await readWhile(stream, (seen) => seen.length === 1);
  expect(event!.syncRunsUpdated).toMatchObject({ id: triggered.syncRun.id, status: 'SUCCEEDED', membersAdded: 3 });
});

test('progress: the adding phase shows as it starts, a long batch reports every second, a pause says how long', async () => {
  const { fake, sync } = await metaSync(12_000);
  fake.failNext('http-429', 1, (request) => isUpload(request) && fake.requests.filter(isUpload).length === 2);
  const stream = await suite.gateway.subscribeOverWebSocket(SyncRunsUpdated, { syncId: sync.id });
  const holding = holdFirstUpload(fake);
  await triggerSync(suite.gateway, sync.id);
  const gate = await holding;
  // The first batch is held at Meta: the run says so, with the time it has lasted, every second.
  const held = await readWhile(stream, (seen) => /\(2 s\)$/.test(seen.at(-1)?.syncRunsUpdated.activity ?? ''));
  gate.release();
  const rest = await readWhile(stream, (seen) => seen.some((event) => isEnd(event.syncRunsUpdated)));
  const events = [...held, ...rest].map((event) => event.syncRunsUpdated);
  expectNoRepeats(events);

  const adding = events.findIndex((run) => run.phase === 'adding');
  expect(events[adding]).toMatchObject({ progress: 0, membersAdded: 0, plannedAdds: 12_000 });
  const activities = events.map((run) => run.activity);
  expect(activities).toContain('adding: batch 1 of 2 to Meta');
  expect(activities).toContain('adding: batch 1 of 2 to Meta (1 s)');
  expect(activities).toContain('adding: batch 1 of 2 to Meta (2 s)');
  // Meta asked for a 1 s pause before the second batch was taken.
  expect(activities.some((text) => /^waiting [12] s for Meta$/.test(text ?? ''))).toBe(true);
  expect(activities.some((text) => /^adding: batch 2 of 2 to Meta, attempt 2/.test(text ?? ''))).toBe(true);
  expect(events.at(-1)).toMatchObject({ status: 'SUCCEEDED', membersAdded: 12_000, activity: null });
}, 120_000);

test('audienceSyncUpdated over SSE: status, last sync and next scheduled run, for the workspace only', async () => {
  const other = await suite.gateway.createWorkspace();
  const { sync } = await metaSync(3, undefined, 24);
  const theirs = await metaSync(3, other.apiKey, 0);
  const stream = await subscribeOverSSE(suite.gateway, WatchedSync, { syncId: sync.id });
  const theirStream = await subscribeOverSSE(suite.gateway, WatchedSync, {}, { apiKey: other.apiKey });

  const triggered = await triggerSync(suite.gateway, sync.id);
  const seen = (await readUntil(stream, (data) => data.audienceSyncUpdated.lastSyncedAt !== null)).map(
    (data) => data.audienceSyncUpdated,
  );
  expectNoRepeats(seen);
  const synced = seen.at(-1)!;
  expect(synced).toMatchObject({ id: sync.id, status: 'ACTIVE', statusError: null, lastSyncedCount: 3 });
  expect(synced.lastRun).toEqual({ id: triggered.syncRun.id, status: 'SUCCEEDED' });
  // Every 24 hours from when the schedule was saved.
  const nextRunIn = new Date(synced.nextRunAt as string).getTime() - Date.now();
  expect(nextRunIn).toBeGreaterThan(23 * 3_600_000);
  expect(nextRunIn).toBeLessThanOrEqual(24 * 3_600_000);

  // The other workspace's first event is its own sync's change, and a manual-only sync has no next run.
  const paused = dataOf(
    await suite.gateway.execute(UpdateAudienceSync, { id: theirs.sync.id, input: { status: 'PAUSED' } }, { apiKey: other.apiKey }),
  );
  expectType(paused.updateAudienceSync, 'UpdateAudienceSyncSuccess');
  const [theirEvent] = await readUntil(theirStream, () => true);
  expect(theirEvent!.audienceSyncUpdated).toMatchObject({ id: theirs.sync.id, status: 'PAUSED', nextRunAt: null });
});

test('fan-out under concurrent runs: every subscriber sees the same stream, and each event is loaded and executed once', async () => {
  const syncs = await Promise.all([metaSync(3), metaSync(5), metaSync(7)]);
  const loadsOfRuns = async () => (await subscriptionEventLoads.get()).values.find((v) => v.labels.kind === 'run')?.value ?? 0;
  const published: string[] = [];
  const bus = eventBus().subscribe('workspace:runUpdated', suite.gateway.workspaceId);
  void (async () => {
    for await (const event of bus) published.push(event.version);
  })();
  const subscribers = await Promise.all(
    Array.from({ length: 20 }, () => suite.gateway.subscribeOverWebSocket(RunsOfWorkspace, {})),
  );
  const loadsBefore = await loadsOfRuns();
  // Subscribers of one operation share its results: those leaving do not end it for the others.
  const leaving = subscribers.splice(0, 5);
  await Promise.all(leaving.map((subscriber) => subscriber.return?.()));

  const runs = await Promise.all(syncs.map(({ sync }) => triggerSync(suite.gateway, sync.id)));
  const ended = (seen: { syncRunsUpdated: { id: string; status: string } }[]) =>
    runs.every((run) => seen.some((event) => event.syncRunsUpdated.id === run.syncRun.id && isEnd(event.syncRunsUpdated)));
  const streams = await Promise.all(subscribers.map((subscriber) => readWhile(subscriber, ended)));

  for (const stream of streams) {
    expect(stream).toEqual(streams[0]);
    const finals = stream.filter((event) => isEnd(event.syncRunsUpdated)).map((event) => event.syncRunsUpdated.membersAdded);
    expect(finals.sort()).toEqual([3, 5, 7]);
  }
  // Each publication was loaded once on this gateway, not once per subscriber.
  const loads = (await loadsOfRuns()) - loadsBefore;
  await waitFor(async () => published.length, (count) => count >= loads, { what: 'the bus to hand over every event' });
  expect(loads).toBeGreaterThan(0);
  expect(loads).toBeLessThanOrEqual(new Set(published).size);
  await bus.return?.();
}, 120_000);
