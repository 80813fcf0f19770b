import { describe, expect, test } from 'vitest';
import type { FakeMeta } from '../fakes/meta-server.js';
import { AddAudienceMembers, UpdateAudienceSync } from '../support/operations.js';
import {
  META_TOKEN,
  changeMembers,
  createAudienceWith,
  createMetaDestination,
  createSync,
  dataOf,
  expectType,
  hashedEmails,
  heldEmails,
} from '../support/scenario.js';
import {
  readSync,
  readTask,
  runSync,
  triggerSync,
  uploadedEmails,
  usersRequests,
  waitForRunEnd,
} from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

const suite = useGatewaySuite({ reset: true });

const STARTING = ['ada@example.com', ' Grace@Example.com ', 'linus@example.org', 'ken@example.net', 'barbara@example.com'];
const LEAVING = [STARTING[1]!, STARTING[3]!];
const JOINING = ['margaret@example.com'];
const STAYING = STARTING.filter((email) => !LEAVING.includes(email));

/** Runs the sync and returns the run with the member uploads it sent. */
async function runAndRecord(fake: FakeMeta, syncId: string) {
  const before = fake.requests.length;
  const { run } = await runSync(suite.gateway, syncId);
  expect(run.status, run.errorMessage ?? undefined).toBe('SUCCEEDED');
  return { run, requests: fake.requests.slice(before), uploads: usersRequests(fake.requests.slice(before)) };
}

describe.each([
  { mode: 'MIRROR' as const, held: [...STAYING, ...JOINING], removed: 2 },
  { mode: 'ADD' as const, held: [...STARTING, ...JOINING], removed: 0 },
])('$mode mode', ({ mode, held, removed }) => {
  test('the first run adds everyone, the next sends only the changes, an unchanged audience sends nothing', async () => {
    const { fake, audience, sync } = await suite.metaSyncScenario(STARTING, mode);

    const first = await runAndRecord(fake, sync.id);
    expect(first.run).toMatchObject({ membersAdded: 5, membersRemoved: 0, membersInvalid: 0, totalMembers: 5 });
    expect(first.run).toMatchObject({ plannedAdds: 5, plannedUpdates: 0, plannedRemoves: 0 });
    expect(heldEmails(fake)).toEqual(hashedEmails(STARTING));
    expect(first.uploads.map((upload) => upload.method)).toEqual(['POST']);

    await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
    const second = await runAndRecord(fake, sync.id);
    expect(second.run).toMatchObject({ membersAdded: 1, membersRemoved: removed, membersInvalid: 0, totalMembers: 4 });
    expect(second.run).toMatchObject({ plannedAdds: 1, plannedUpdates: 0, plannedRemoves: removed });
    expect(heldEmails(fake)).toEqual(hashedEmails(held));
    const expectedUploads = [{ method: 'POST', emails: hashedEmails(JOINING) }];
    if (mode === 'MIRROR') expectedUploads.push({ method: 'DELETE', emails: hashedEmails(LEAVING) });
    expect(uploadedEmails(second.uploads)).toEqual(expectedUploads);

    const third = await runAndRecord(fake, sync.id);
    expect(third.requests).toEqual([]);
    expect(third.run).toMatchObject({ membersAdded: 0, membersRemoved: 0, membersInvalid: 0, totalMembers: 4, progress: 1 });
    expect((await readSync(suite.gateway, sync.id)).lastSyncedCount).toBe(held.length);
  });
});

test('REMOVE mode only removes the members who left, from a sync that already has state', async () => {
  const { fake, audience, sync } = await suite.metaSyncScenario(STARTING, 'ADD');
  await runAndRecord(fake, sync.id);
  await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
  const updated = dataOf(await suite.gateway.execute(UpdateAudienceSync, { id: sync.id, input: { mode: 'REMOVE' } }));
  expect(expectType(updated.updateAudienceSync, 'UpdateAudienceSyncSuccess').audienceSync.mode).toBe('REMOVE');

  const removal = await runAndRecord(fake, sync.id);
  expect(removal.run).toMatchObject({ membersAdded: 0, membersRemoved: 2, totalMembers: 4 });
  expect(uploadedEmails(removal.uploads)).toEqual([
    { method: 'DELETE', emails: hashedEmails(LEAVING) },
  ]);
  expect(heldEmails(fake)).toEqual(hashedEmails(STAYING));

  const again = await runAndRecord(fake, sync.id);
  expect(again.requests).toEqual([]);
  expect(again.run).toMatchObject({ membersAdded: 0, membersRemoved: 0 });
});

describe('the platform audience', () => {
  test.each([
    { given: 'platformAudienceName', platformAudienceName: 'Newsletter buyers (EU)', expected: 'Newsletter buyers (EU)' },
    { given: 'no name', platformAudienceName: undefined, expected: 'Buyers to Meta' },
  ])('the first run creates it ($given) and keeps its id; uploads carry a session', async (example) => {
    const { platformAudienceName, expected } = example;
    const fake = await suite.fakeMeta();
    const destination = await createMetaDestination(suite.gateway, fake);
    const audience = await createAudienceWith(suite.gateway, STARTING);
    const sync = await createSync(suite.gateway, {
      audienceId: audience.id,
      destinationId: destination.id,
      platformAudienceName,
    });
    expect((await readSync(suite.gateway, sync.id)).platformAudienceId).toBeNull();

    const first = await runAndRecord(fake, sync.id);
    const [create, ...rest] = first.requests;
    expect(create).toMatchObject({
      method: 'POST',
      url: '/v27.0/act_1234567890/customaudiences',
      authorization: `Bearer ${META_TOKEN}`,
      body: { name: expected, subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY' },
    });
    const [platformAudienceId] = [...fake.audiences.keys()];
    expect((await readSync(suite.gateway, sync.id)).platformAudienceId).toBe(platformAudienceId);
    // The upload, then (a run that changed something) the read of what Meta reports about the audience.
    expect(rest.map((request) => `${request.method} ${request.url.split('?')[0]}`)).toEqual([
      `POST /v27.0/${platformAudienceId}/users`,
      `GET /v27.0/${platformAudienceId}`,
    ]);
    const [upload] = first.uploads;
    expect(upload).toMatchObject({ method: 'POST', audienceId: platformAudienceId, schema: ['EMAIL'] });
    expect(upload!.session).toEqual({
      session_id: expect.any(Number),
      batch_seq: 1,
      last_batch_flag: true,
      estimated_num_total: STARTING.length,
    });
    expect(upload!.session.session_id).toBeGreaterThan(0);

    await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
    const second = await runAndRecord(fake, sync.id);
    expect(second.requests.some((request) => request.url.endsWith('/customaudiences'))).toBe(false);
    expect(second.uploads.map((u) => [u.method, u.audienceId, u.session.batch_seq, u.session.last_batch_flag])).toEqual([
      ['POST', platformAudienceId, 1, true],
      ['DELETE', platformAudienceId, 1, true],
    ]);
    const [adds, removes] = second.uploads;
    expect(adds!.session).toMatchObject({ estimated_num_total: 1 });
    expect(removes!.session).toMatchObject({ estimated_num_total: 2 });
    expect(new Set([upload!.session.session_id, adds!.session.session_id, removes!.session.session_id]).size).toBe(3);
  });

  test('an audience id given at creation is filled as it is, without creating another', async () => {
    const fake = await suite.fakeMeta();
    fake.audiences.set('23850000000000999', new Set());
    const destination = await createMetaDestination(suite.gateway, fake);
    const audience = await createAudienceWith(suite.gateway, STARTING);
    const sync = await createSync(suite.gateway, {
      audienceId: audience.id,
      destinationId: destination.id,
      platformAudienceId: '23850000000000999',
    });

    const { requests } = await runAndRecord(fake, sync.id);
    expect(requests.map((request) => `${request.method} ${request.url}`)).toEqual([
      'POST /v27.0/23850000000000999/users',
      // After the run: what Meta reports about the audience.
      'GET /v27.0/23850000000000999?fields=approximate_count_lower_bound,approximate_count_upper_bound,operation_status,delivery_status',
    ]);
    expect(heldEmails(fake)).toEqual(hashedEmails(STARTING));
  });
});

test('12,500 members go in two uploads of one session: 10,000 rows then 2,500', async () => {
  const emails = Array.from({ length: 12_500 }, (_, i) => `member${i}@example.com`);
  const { fake, audience, sync } = await suite.metaSyncScenario([]);
  for (let start = 0; start < emails.length; start += 5_000) {
    const members = emails.slice(start, start + 5_000).map((email) => ({ email }));
    const added = dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId: audience.id, members }));
    expectType(added.addAudienceMembers, 'AddAudienceMembersSuccess');
  }

  const { run, uploads } = await runAndRecord(fake, sync.id);
  expect(run).toMatchObject({ membersAdded: 12_500, totalMembers: 12_500, progress: 1 });
  const batches = uploads.map(({ method, rows, session }) => [method, rows.length, session.batch_seq, session.last_batch_flag]);
  expect(batches).toEqual([
    ['POST', 10_000, 1, false],
    ['POST', 2_500, 2, true],
  ]);
  expect(uploads[0]!.session.session_id).toBe(uploads[1]!.session.session_id);
  expect(uploads.map((upload) => upload.session.estimated_num_total)).toEqual([12_500, 12_500]);
  expect(heldEmails(fake)).toEqual(hashedEmails(emails));
}, 60_000);

test('the upload ends with last_batch_flag even when its final members have nothing to send', async () => {
  const emails = Array.from({ length: 10_000 }, (_, i) => `member${i}@example.com`);
  const { fake, audience, sync } = await suite.metaSyncScenario([]);
  // The sync maps emails only; members added last have a phone and no email, so nothing of theirs is sent.
  const members = [...emails.map((email) => ({ email })), ...['+14155550101', '+14155550102'].map((phone) => ({ phone }))];
  for (let start = 0; start < members.length; start += 5_000) {
    const added = dataOf(
      await suite.gateway.execute(AddAudienceMembers, { audienceId: audience.id, members: members.slice(start, start + 5_000) }),
    );
    expectType(added.addAudienceMembers, 'AddAudienceMembersSuccess');
  }
  await suite.gateway.execute(UpdateAudienceSync, {
    id: sync.id,
    input: { fieldMapping: [{ sourceField: 'email', destinationField: 'EMAIL' }] },
  });

  const { run, uploads } = await runAndRecord(fake, sync.id);
  expect(run).toMatchObject({ membersAdded: 10_000, membersInvalid: 0, membersUnusable: 2, progress: 1 });
  expect(uploads.map(({ rows, session }) => [rows.length, session.batch_seq, session.last_batch_flag])).toEqual([
    [10_000, 1, true],
  ]);
}, 60_000);

test('a dry run counts what it would send, sends nothing and leaves the synced state alone', async () => {
  const { fake, audience, sync } = await suite.metaSyncScenario(STARTING);

  const firstDry = await runSync(suite.gateway, sync.id, { dryRun: true });
  expect(firstDry.run).toMatchObject({
    status: 'SUCCEEDED',
    dryRun: true,
    membersAdded: 5,
    membersRemoved: 0,
    totalMembers: 5,
  });
  expect(firstDry.task.result).toMatchObject({ dryRun: true, membersAdded: 5 });
  expect(fake.requests).toEqual([]);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({
    lastSyncedAt: null,
    lastSyncedCount: null,
    platformAudienceId: null,
  });

  await runAndRecord(fake, sync.id);
  const synced = await readSync(suite.gateway, sync.id);
  await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
  const requestsBefore = fake.requests.length;

  const dry = await runSync(suite.gateway, sync.id, { dryRun: true });
  expect(dry.run).toMatchObject({ status: 'SUCCEEDED', dryRun: true, membersAdded: 1, membersRemoved: 2, totalMembers: 4 });
  expect(fake.requests).toHaveLength(requestsBefore);
  expect(heldEmails(fake)).toEqual(hashedEmails(STARTING));
  const afterDry = await readSync(suite.gateway, sync.id);
  expect(afterDry).toMatchObject({
    lastSyncedAt: synced.lastSyncedAt,
    lastSyncedCount: synced.lastSyncedCount,
    lastRun: synced.lastRun,
  });

  // The real run still has the whole change to send: the dry run recorded nothing as synced.
  const real = await runAndRecord(fake, sync.id);
  expect(real.run).toMatchObject({ dryRun: false, membersAdded: 1, membersRemoved: 2 });
  expect(heldEmails(fake)).toEqual(hashedEmails([...STAYING, ...JOINING]));
});

test('triggers while a run is queued join it: one run, a task each', async () => {
  const { fake, sync } = await suite.metaSyncScenario(STARTING);
  // The first run holds the sync while Meta is slow to answer, so the next one stays queued.
  const hold = fake.hold();
  const first = await triggerSync(suite.gateway, sync.id);
  await hold.waiting;

  const [a, b] = await Promise.all([triggerSync(suite.gateway, sync.id), triggerSync(suite.gateway, sync.id)]);
  expect([a.coalesced, b.coalesced].sort()).toEqual([false, true]);
  expect(a.syncRun.id).toBe(b.syncRun.id);
  expect(a.syncRun.id).not.toBe(first.syncRun.id);
  expect(a.task.id).not.toBe(b.task.id);
  const queued = await readSync(suite.gateway, sync.id);
  expect(queued.runs.map((run) => [run.id, run.status])).toEqual([
    [a.syncRun.id, 'QUEUED'],
    [first.syncRun.id, 'RUNNING'],
  ]);
  expect(queued.lastRun).toEqual({ id: a.syncRun.id, status: 'QUEUED' });

  hold.release();
  expect(await waitForRunEnd(suite.gateway, first.syncRun.id)).toMatchObject({ status: 'SUCCEEDED', membersAdded: 5 });
  expect(await waitForRunEnd(suite.gateway, a.syncRun.id)).toMatchObject({ status: 'SUCCEEDED', membersAdded: 0 });
  for (const task of [a.task, b.task]) {
    expect(await readTask(suite.gateway, task.id)).toMatchObject({
      status: 'COMPLETED',
      run: { id: a.syncRun.id, status: 'SUCCEEDED' },
      result: { status: 'SUCCEEDED' },
    });
  }
  expect((await readSync(suite.gateway, sync.id)).runs).toHaveLength(2);
});
