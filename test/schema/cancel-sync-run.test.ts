import { decodeGlobalID } from '@pothos/plugin-relay';
import { expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { graphql } from '../generated/gql.js';
import type { FakeMeta, RecordedRequest } from '../fakes/meta-server.js';
import { AddAudienceMembers } from '../support/operations.js';
import {
  createAudienceWith,
  createMetaDestination,
  createSync,
  dataOf,
  expectType,
  hashedEmails,
  heldEmails,
} from '../support/scenario.js';
import { readRun, readTask, runSync, triggerSync, waitForRunEnd } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';
import { syncedState } from '../support/synced-state.js';
import { waitFor } from '../support/wait.js';

const suite = useGatewaySuite({ reset: true });

const CancelSyncRun = graphql(`
  mutation CancelSyncRun($id: ID!) {
    cancelSyncRun(id: $id) {
      __typename
      ... on CancelSyncRunSuccess {
        stopping
        syncRun { id status phase cancelRequestedAt cancelledByName cancelledBy { id name } finishedAt }
      }
      ... on SyncRunFinishedError { status }
      ... on NotFoundError { field }
      ... on ValidationError { field }
      ... on Error { message code }
    }
  }
`);

const RunCancellation = graphql(`
  query RunCancellation($id: ID!) {
    node(id: $id) {
      ... on SyncRun { id status phase activity membersAdded cancelRequestedAt cancelledByName cancelledBy { name } }
    }
  }
`);

const emailsOf = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}@example.com`);

/** A Meta sync of `count` members: Meta takes 10,000 per upload. */
async function largeMetaSync(count: number) {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, []);
  const emails = emailsOf('person', count);
  for (let start = 0; start < count; start += 5_000) {
    const members = emails.slice(start, start + 5_000).map((email) => ({ email }));
    const added = dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId: audience.id, members }));
    expect(expectType(added.addAudienceMembers, 'AddAudienceMembersSuccess').added).toBe(members.length);
  }
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
  return { fake, emails, sync, syncUuid: decodeGlobalID(sync.id).id };
}

const isUpload = (request: RecordedRequest) => request.url.endsWith('/users');

/** Holds the fake's first member upload from now on (requests before it go through); resolves with
 * the gate once that upload has arrived. */
async function holdFirstUpload(fake: FakeMeta) {
  for (;;) {
    const gate = fake.hold();
    const request = await gate.waiting;
    if (isUpload(request)) return gate;
    gate.release();
  }
}

async function cancel(id: string, apiKey?: string) {
  return dataOf(await suite.gateway.execute(CancelSyncRun, { id }, { apiKey })).cancelSyncRun;
}

test('a queued run is cancelled at once, its task fails, and no worker ever starts it', async () => {
  const { fake, emails, sync } = await largeMetaSync(12_000);
  const held = holdFirstUpload(fake);
  const first = await triggerSync(suite.gateway, sync.id);
  const gate = await held;
  // While the first run is held sending, a second one waits in the queue.
  const second = await triggerSync(suite.gateway, sync.id);
  expect(second.coalesced).toBe(false);
  expect((await readRun(suite.gateway, second.syncRun.id)).status).toBe('QUEUED');

  const result = expectType(await cancel(second.syncRun.id), 'CancelSyncRunSuccess');
  expect(result.stopping).toBe(false);
  expect(result.syncRun).toMatchObject({ status: 'CANCELLED', phase: 'cancelled', cancelledByName: 'test key' });
  expect(result.syncRun.cancelledBy?.name).toBe('test key');
  expect(result.syncRun.finishedAt).not.toBeNull();
  const task = await readTask(suite.gateway, second.task.id);
  expect(task).toMatchObject({ status: 'FAILED', error: 'The run was cancelled by API key "test key"' });
  expect(task.result).toMatchObject({ status: 'CANCELLED' });

  gate.release();
  expect((await waitForRunEnd(suite.gateway, first.syncRun.id)).status).toBe('SUCCEEDED');
  expect(heldEmails(fake)).toEqual(hashedEmails(emails));
  // The cancelled run's job, retried while the first ran, found it cancelled and left it so.
  const cancelled = await readRun(suite.gateway, second.syncRun.id);
  expect(cancelled).toMatchObject({ status: 'CANCELLED', startedAt: null, membersAdded: 0 });
  // A new trigger queues a fresh run instead of joining the cancelled one.
  const next = await triggerSync(suite.gateway, sync.id);
  expect(next.coalesced).toBe(false);
  expect(next.syncRun.id).not.toBe(second.syncRun.id);
  expect((await waitForRunEnd(suite.gateway, next.syncRun.id)).status).toBe('SUCCEEDED');
}, 120_000);

test('a running run stops after its current batch: what was confirmed stays recorded, and the next run sends the rest', async () => {
  const { fake, emails, sync, syncUuid } = await largeMetaSync(25_000);
  const held = holdFirstUpload(fake);
  const triggered = await triggerSync(suite.gateway, sync.id);
  const gate = await held;

  const result = expectType(await cancel(triggered.syncRun.id), 'CancelSyncRunSuccess');
  expect(result.stopping).toBe(true);
  expect(result.syncRun.status).toBe('RUNNING');
  expect(result.syncRun.cancelRequestedAt).not.toBeNull();
  // Asking again keeps the first request.
  const again = expectType(await cancel(triggered.syncRun.id), 'CancelSyncRunSuccess');
  expect(again.syncRun.cancelRequestedAt).toBe(result.syncRun.cancelRequestedAt);

  gate.release();
  const ended = await waitForRunEnd(suite.gateway, triggered.syncRun.id);
  expect(ended).toMatchObject({ status: 'CANCELLED', phase: 'cancelled', membersAdded: 10_000 });
  const { node } = dataOf(await suite.gateway.execute(RunCancellation, { id: triggered.syncRun.id }));
  expect(node).toMatchObject({ activity: null, cancelledByName: 'test key', cancelledBy: { name: 'test key' } });
  expect((await readTask(suite.gateway, triggered.task.id)).status).toBe('FAILED');

  // The batch it was sending was applied and confirmed; no other batch was sent.
  const uploads = fake.requests.filter(isUpload);
  expect(uploads).toHaveLength(1);
  const applied = heldEmails(fake);
  expect(applied).toHaveLength(10_000);
  const state = await syncedState(syncUuid);
  expect(state.confirmed).toHaveLength(10_000);
  // The batch recorded ahead while the first was sent stays in doubt, unsent, as after a crash.
  expect(state.inDoubt.length).toBeLessThanOrEqual(10_000);
  expect(state.inDoubt.every((member) => member.action === 'add')).toBe(true);
  // The sync itself is neither failed nor marked synced by a cancelled run.
  const syncRow = await db().audienceSync.findUniqueOrThrow({ where: { id: syncUuid } });
  expect(syncRow).toMatchObject({ status: 'ACTIVE', lastSyncedAt: null });

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 15_000, membersRemoved: 0 });
  expect(heldEmails(fake)).toEqual(hashedEmails(emails));
  const after = await syncedState(syncUuid);
  expect(after.inDoubt).toEqual([]);
  expect(after.confirmed).toHaveLength(25_000);
}, 120_000);

test('a run that has ended answers SyncRunFinishedError, and nothing changes', async () => {
  const { sync } = await suite.metaSyncScenario(['ada@example.com']);
  const { run } = await runSync(suite.gateway, sync.id);
  const result = expectType(await cancel(run.id), 'SyncRunFinishedError');
  expect(result).toMatchObject({ status: 'SUCCEEDED', code: 'RUN_FINISHED' });
  expect(await readRun(suite.gateway, run.id)).toMatchObject({ status: 'SUCCEEDED' });
  const { node } = dataOf(await suite.gateway.execute(RunCancellation, { id: run.id }));
  expect(node).toMatchObject({ cancelRequestedAt: null, cancelledByName: null });
});

test("another workspace's key gets NotFoundError, a READ key and no key are refused, a bad id is a ValidationError", async () => {
  const { fake, sync } = await largeMetaSync(12_000);
  const held = holdFirstUpload(fake);
  const triggered = await triggerSync(suite.gateway, sync.id);
  const gate = await held;
  try {
    const other = await suite.gateway.createWorkspace();
    expect(expectType(await cancel(triggered.syncRun.id, other.apiKey), 'NotFoundError').field).toBe('id');

    const reader = await suite.gateway.createWorkspace('READ');
    const readOnly = await suite.gateway.execute(CancelSyncRun, { id: triggered.syncRun.id }, { apiKey: reader.apiKey });
    expect(readOnly.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await suite.gateway.execute(CancelSyncRun, { id: triggered.syncRun.id }, { apiKey: null });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    expect(expectType(await cancel(sync.id), 'ValidationError').field).toBe('id');
    const run = await db().syncRun.findUniqueOrThrow({ where: { id: decodeGlobalID(triggered.syncRun.id).id } });
    expect(run).toMatchObject({ status: 'RUNNING', cancelRequestedAt: null, cancelledById: null });
  } finally {
    gate.release();
  }
  await waitFor(
    () => readRun(suite.gateway, triggered.syncRun.id),
    (run) => run.status === 'SUCCEEDED',
    { what: 'the run to succeed', timeoutMs: 60_000 },
  );
}, 120_000);
