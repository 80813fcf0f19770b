import { decodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { findSyncScheduleJob } from '../../src/jobs/audience-sync.js';
import { RUN_TASK_JOB } from '../../src/jobs/tasks.js';
import { scheduler } from '../../src/jobs/scheduler.js';
import { startFakeMeta } from '../fakes/meta-server.js';
import { startFakeNotificationReceiver } from '../fakes/task-notification-receiver.js';
import { graphql } from '../generated/gql.js';
import type { SyncAudiencesInput } from '../generated/graphql.js';
import { unknownId } from '../support/global-ids.js';
import { MemberTaskUpdated, holdMemberTasks, waitForTaskEnd } from '../support/member-tasks.js';
import { AddAudienceMembers, CreateAudienceSync, DeleteAudience, NodeById, SyncAudiences } from '../support/operations.js';
import { META_TOKEN, createAudienceWith, createMetaDestination, createSync, dataOf, expectType, sha256 } from '../support/scenario.js';
import { readUntil, subscribeOverSSE } from '../support/sse.js';
import { useGatewaySuite } from '../support/suite.js';
import { expectNothingWritten } from '../support/tables.js';
import { waitFor } from '../support/wait.js';

const SyncAudiencesList = graphql(`
  query SyncAudiencesList {
    audiences(first: 50) { edges { node { id name externalId consentBasis memberCount } } }
  }
`);

const suite = useGatewaySuite({ reset: true });

const email = (name: string) => sha256(`${name}@example.com`);
const phone = (number: string) => sha256(number);
const MADID = '6D92078A-8246-4BA4-AE5B-76104861E7DC';

async function syncAudiences(input: SyncAudiencesInput, apiKey?: string) {
  return dataOf(await suite.gateway.execute(SyncAudiences, { input }, { apiKey })).syncAudiences;
}

/** Sends the request, expects it accepted, and waits for its task to end. */
async function syncAndWait(input: SyncAudiencesInput, apiKey?: string) {
  const accepted = expectType(await syncAudiences(input, apiKey), 'SyncAudiencesSuccess').task;
  expect(accepted).toMatchObject({ kind: 'SYNC_AUDIENCES', status: 'QUEUED' });
  return waitForTaskEnd(suite.gateway, accepted.id, { apiKey });
}

/** The workspace's live audiences as the API lists them, by externalId. */
async function listedAudiences(apiKey?: string) {
  const { audiences } = dataOf(await suite.gateway.execute(SyncAudiencesList, {}, { apiKey }));
  return Object.fromEntries(audiences.edges.map(({ node }) => [node.externalId ?? node.name, node]));
}

/** The external ids of an audience's members, as stored. */
async function memberExternalIds(audienceGlobalId: string) {
  const members = await db().audienceMember.findMany({
    where: { audienceId: decodeGlobalID(audienceGlobalId).id },
    select: { contact: { select: { externalId: true } } },
  });
  return members.map((member) => member.contact.externalId).sort();
}

describe('validation: the whole request is refused, nothing is written', () => {
  const member = (externalId: string) => ({ externalId, hashedEmail: email(externalId) });
  test.each<[string, SyncAudiencesInput, string, RegExp]>([
    ['no audience', { audiences: [] }, 'input.audiences', /at least one audience/],
    [
      'an audienceId given twice',
      { audiences: [{ audienceId: 'crm-1', add: [member('a')] }, { audienceId: 'crm-2' }, { audienceId: 'crm-1' }] },
      'input.audiences.2.audienceId',
      /twice.*audiences\.0/,
    ],
    ['an audienceId of 256 characters', { audiences: [{ audienceId: 'x'.repeat(256) }] }, 'input.audiences.0.audienceId', /1–255/],
    [
      'an upper-case hashedEmail',
      { audiences: [{ audienceId: 'crm-1', add: [member('a'), { externalId: 'b', hashedEmail: email('b').toUpperCase() }] }] },
      'input.audiences.0.add.1.hashedEmail',
      /64 lowercase hexadecimal/,
    ],
    [
      'a raw phone number as hashedPhone',
      { audiences: [{ audienceId: 'crm-1' }, { audienceId: 'crm-2', add: [{ externalId: 'c', hashedPhone: '+14155550100' }] }] },
      'input.audiences.1.add.0.hashedPhone',
      /SHA-256/,
    ],
    [
      'a mobile ad id that is not one',
      { audiences: [{ audienceId: 'crm-1', add: [{ externalId: 'a', uids: [{ type: 'MOBILE_AD_ID', value: 'abc' }] }] }] },
      'input.audiences.0.add.0.uids.0.value',
      /IDFA or GAID/,
    ],
    [
      'adding to an audience being deleted',
      { audiences: [{ audienceId: 'crm-1', add: [member('a')], delete: true }] },
      'input.audiences.0.delete',
      /cannot be deleted and given members to add/,
    ],
    [
      'a notifyUrl that is not https',
      { audiences: [{ audienceId: 'crm-1' }], notifyUrl: 'http://hooks.example.com/done' },
      'input.notifyUrl',
      /https/,
    ],
    [
      'a notifyUrl on a private network',
      { audiences: [{ audienceId: 'crm-1' }], notifyUrl: 'ftp://10.0.0.5/done' },
      'input.notifyUrl',
      /https/,
    ],
    [
      'a notifySecret without a notifyUrl',
      { audiences: [{ audienceId: 'crm-1' }], notifySecret: 'x'.repeat(40) },
      'input.notifySecret',
      /give notifyUrl too/,
    ],
    [
      'a notifySecret too short to be a secret',
      { audiences: [{ audienceId: 'crm-1' }], notifyUrl: 'https://hooks.example.com/done', notifySecret: 'hunter2' },
      'input.notifySecret',
      /32–1024 characters/,
    ],
  ])('%s is a ValidationError', async (_case, input, field, message) => {
    const result = expectType(await expectNothingWritten(() => syncAudiences(input)), 'ValidationError');

    expect(result.field).toBe(field);
    expect(result.issues[0]!.message).toMatch(message);
  });

  test('more than 100,000 members (adds and removes together) is refused, saying how many', async () => {
    const add = Array.from({ length: 60_000 }, (_, i) => ({ externalId: `m${i}` }));
    const remove = Array.from({ length: 40_001 }, (_, i) => `r${i}`);

    const result = expectType(
      await expectNothingWritten(() => syncAudiences({ audiences: [{ audienceId: 'a', add }, { audienceId: 'b', remove }] })),
      'ValidationError',
    );

    expect(result).toMatchObject({ field: 'input.audiences', message: expect.stringMatching(/at most 100000 .*got 100001/) });
  });

  test('every problem is listed, each with its path', async () => {
    const result = expectType(
      await expectNothingWritten(() =>
        syncAudiences({
          audiences: [
            { audienceId: 'crm-1', add: [member('a'), { externalId: ' ', hashedEmail: 'f00' }] },
            { audienceId: 'crm-2', remove: ['ok', ''] },
          ],
        }),
      ),
      'ValidationError',
    );

    expect(result.issues.map((issue) => issue.field)).toEqual([
      'input.audiences.0.add.1.externalId',
      'input.audiences.0.add.1.hashedEmail',
      'input.audiences.1.remove.1',
    ]);
  });

  test('a READ key is refused and writes nothing', async () => {
    const reader = await suite.gateway.createWorkspace('READ');
    const result = await expectNothingWritten(() =>
      suite.gateway.execute(SyncAudiences, { input: { audiences: [{ audienceId: 'crm-1' }] } }, { apiKey: reader.apiKey }),
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('applying a request', () => {
  test('creates the audiences and their members exactly, in the database and through the API', async () => {
    const task = await syncAndWait({
      audiences: [
        {
          audienceId: 'crm-buyers',
          name: 'Buyers',
          consentBasis: 'CONSENT',
          add: [
            { externalId: 'u1', hashedEmail: email('ada'), hashedPhone: phone('+14155550100') },
            { externalId: 'u2', uids: [{ type: 'MOBILE_AD_ID', value: MADID }] },
            { externalId: 'u3', hashedEmail: email('grace') },
            { externalId: 'u3', hashedEmail: email('grace') },
          ],
        },
        { audienceId: 'crm-leads', add: [{ externalId: 'u1' }] },
      ],
    });

    expect(task).toMatchObject({ status: 'COMPLETED', error: null, progress: 1, processed: 5, total: 5 });
    expect(task.startedAt).not.toBeNull();
    const listed = await listedAudiences();
    expect(listed['crm-buyers']).toMatchObject({ name: 'Buyers', consentBasis: 'CONSENT', memberCount: 3 });
    expect(listed['crm-leads']).toMatchObject({ name: 'crm-leads', consentBasis: null, memberCount: 1 });
    expect(task.result).toEqual({
      audiences: [
        { audienceId: 'crm-buyers', id: listed['crm-buyers']!.id, created: true, added: 3, removed: 0, deleted: false },
        { audienceId: 'crm-leads', id: listed['crm-leads']!.id, created: true, added: 1, removed: 0, deleted: false },
      ],
      deletedMissing: 0,
    });
    const contacts = await db().contact.findMany({
      where: { workspaceId: suite.gateway.workspaceId },
      select: { key: true, email: true, phone: true, mobileAdId: true },
      orderBy: { key: 'asc' },
    });
    expect(contacts).toEqual([
      { key: 'ext:u1', email: email('ada'), phone: phone('+14155550100'), mobileAdId: null },
      { key: 'ext:u2', email: null, phone: null, mobileAdId: MADID.toLowerCase() },
      { key: 'ext:u3', email: email('grace'), phone: null, mobileAdId: null },
    ]);
    expect(await memberExternalIds(listed['crm-buyers']!.id)).toEqual(['u1', 'u2', 'u3']);
    expect(await db().taskPayload.count()).toBe(0);
  });

  test('a later request updates by audienceId: adds, removes by externalId, and keeps name and consent unless given', async () => {
    await syncAndWait({
      audiences: [{ audienceId: 'crm-buyers', name: 'Buyers', consentBasis: 'CONTRACT', add: ['u1', 'u2', 'u3'].map((externalId) => ({ externalId })) }],
    });

    const task = await syncAndWait({
      audiences: [{ audienceId: 'crm-buyers', add: [{ externalId: 'u3' }, { externalId: 'u4' }], remove: ['u1', 'nobody'] }],
    });

    const listed = await listedAudiences();
    expect(task.result).toMatchObject({
      audiences: [{ audienceId: 'crm-buyers', id: listed['crm-buyers']!.id, created: false, added: 1, removed: 1, deleted: false }],
    });
    expect(listed['crm-buyers']).toMatchObject({ name: 'Buyers', consentBasis: 'CONTRACT', memberCount: 3 });
    expect(await memberExternalIds(listed['crm-buyers']!.id)).toEqual(['u2', 'u3', 'u4']);
  });

  test('members are applied in batches: a request of 12,000 members publishes its progress on taskUpdated', async () => {
    const release = await holdMemberTasks(suite.gateway.workspaceId);
    const add = Array.from({ length: 12_000 }, (_, i) => ({ externalId: `member-${i}`, hashedEmail: email(`member-${i}`) }));
    const accepted = expectType(await syncAudiences({ audiences: [{ audienceId: 'big', add }] }), 'SyncAudiencesSuccess').task;
    expect(accepted).toMatchObject({ total: 12_000, processed: 0, progress: 0 });
    const stream = await subscribeOverSSE(suite.gateway, MemberTaskUpdated, { taskId: accepted.id });

    await release();
    const events = (await readUntil(stream, ({ taskUpdated }) => taskUpdated.status === 'COMPLETED', 20_000)).map(
      (data) => data.taskUpdated,
    );

    const progress = events.filter((event) => event.status === 'RUNNING').map((event) => [event.processed, event.progress]);
    expect(progress).toEqual(expect.arrayContaining([[5_000, 5_000 / 12_000], [10_000, 10_000 / 12_000], [12_000, 1]]));
    const processed = events.map((event) => event.processed);
    expect(processed).toEqual([...processed].sort((a, b) => a - b));
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progress: 1, processed: 12_000, total: 12_000 });
    expect((await listedAudiences()).big!.memberCount).toBe(12_000);
  });

  test('tasks of a workspace run one at a time, in the order they were accepted', async () => {
    const release = await holdMemberTasks(suite.gateway.workspaceId);
    const first = expectType(
      await syncAudiences({ audiences: [{ audienceId: 'crm', add: [{ externalId: 'u1' }] }] }),
      'SyncAudiencesSuccess',
    ).task;
    const second = expectType(await syncAudiences({ audiences: [{ audienceId: 'crm', remove: ['u1'] }] }), 'SyncAudiencesSuccess').task;

    await release();
    const [ranFirst, ranSecond] = [await waitForTaskEnd(suite.gateway, first.id), await waitForTaskEnd(suite.gateway, second.id)];

    expect(new Date(ranFirst.completedAt!).getTime()).toBeLessThanOrEqual(new Date(ranSecond.startedAt!).getTime());
    expect(ranSecond.result).toMatchObject({ audiences: [{ added: 0, removed: 1 }] });
    expect((await listedAudiences()).crm!.memberCount).toBe(0);
  });

  test('running an ended task’s job again (jobs are at-least-once) changes nothing and does not notify twice', async () => {
    const receiver = await startFakeNotificationReceiver();
    try {
      const task = await syncAndWait({ audiences: [{ audienceId: 'crm', add: [{ externalId: 'u1' }] }], notifyUrl: receiver.url });
      const taskId = decodeGlobalID(task.id).id;
      const before = await notifiedTask(task.id);

      const again = await scheduler().now(RUN_TASK_JOB, { taskId, kind: 'SYNC_AUDIENCES' });
      await waitFor(
        async () => {
          const { jobs } = await scheduler().queryJobs({ name: RUN_TASK_JOB, data: { taskId } });
          return jobs.find((job) => String(job._id) === String(again.attrs._id))?.lastFinishedAt;
        },
        Boolean,
        { what: 'the job to run again' },
      );

      expect(await db().task.findUniqueOrThrow({ where: { id: taskId } })).toEqual(before);
      expect(receiver.notifications).toHaveLength(1);
      expect(await db().audienceMember.count()).toBe(1);
    } finally {
      await receiver.close();
    }
  });
});

describe('deleting audiences', () => {
  test('`delete: true` deletes the audience and its syncs: it leaves lists and lookups, and mutations refuse it', async () => {
    const fake = await startFakeMeta({ accessToken: META_TOKEN });
    try {
      await syncAndWait({ audiences: [{ audienceId: 'crm-buyers', add: [{ externalId: 'u1' }] }, { audienceId: 'crm-keep' }] });
      const audience = (await listedAudiences())['crm-buyers']!;
      const destination = await createMetaDestination(suite.gateway, fake);
      const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, cadenceHours: 24 });
      const syncId = decodeGlobalID(sync.id).id;
      expect(await findSyncScheduleJob(syncId)).toBeDefined();

      const task = await syncAndWait({ audiences: [{ audienceId: 'crm-buyers', delete: true }, { audienceId: 'crm-gone', delete: true }] });

      expect(task.result).toMatchObject({
        audiences: [
          { audienceId: 'crm-buyers', id: audience.id, created: false, added: 0, removed: 0, deleted: true },
          { audienceId: 'crm-gone', id: null, created: false, deleted: false },
        ],
      });
      expect(Object.keys(await listedAudiences())).toEqual(['crm-keep']);
      expect(dataOf(await suite.gateway.execute(NodeById, { id: audience.id })).node).toBeNull();
      expect(dataOf(await suite.gateway.execute(NodeById, { id: sync.id })).node).toBeNull();
      expect(await findSyncScheduleJob(syncId)).toBeUndefined();
      const add = dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId: audience.id, members: [{ email: 'a@example.com' }] }));
      expect(add.addAudienceMembers).toMatchObject({ __typename: 'NotFoundError', field: 'audienceId' });
      const createSyncAgain = dataOf(
        await suite.gateway.execute(CreateAudienceSync, {
          input: { name: 'again', audienceId: audience.id, destinationId: destination.id },
        }),
      );
      expect(createSyncAgain.createAudienceSync).toMatchObject({ __typename: 'NotFoundError', field: 'input.audienceId' });
      const deleteAgain = dataOf(await suite.gateway.execute(DeleteAudience, { id: audience.id })).deleteAudience;
      expect(deleteAgain).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    } finally {
      await fake.close();
    }
  });

  test('the audienceId of a deleted audience starts a new audience', async () => {
    await syncAndWait({ audiences: [{ audienceId: 'crm', add: [{ externalId: 'u1' }] }] });
    const old = (await listedAudiences()).crm!;
    await syncAndWait({ audiences: [{ audienceId: 'crm', delete: true }] });

    const task = await syncAndWait({ audiences: [{ audienceId: 'crm', add: [{ externalId: 'u2' }] }] });

    const renewed = (await listedAudiences()).crm!;
    expect(renewed.id).not.toBe(old.id);
    expect(task.result).toMatchObject({ audiences: [{ id: renewed.id, created: true, added: 1 }] });
    expect(await memberExternalIds(renewed.id)).toEqual(['u2']);
  });

  test('deleteMissing deletes exactly the API-managed audiences the request does not name', async () => {
    await syncAndWait({ audiences: ['crm-a', 'crm-b', 'crm-c'].map((audienceId) => ({ audienceId })) });
    const handMade = await createAudienceWith(suite.gateway, ['ada@example.com']);
    const other = await suite.gateway.createWorkspace();
    await syncAndWait({ audiences: [{ audienceId: 'crm-b' }] }, other.apiKey);

    const task = await syncAndWait({ audiences: [{ audienceId: 'crm-a' }, { audienceId: 'crm-new' }], deleteMissing: true });

    expect(task.result).toMatchObject({ deletedMissing: 2 });
    expect(Object.keys(await listedAudiences()).sort()).toEqual(['Buyers', 'crm-a', 'crm-new']);
    expect((await listedAudiences())['Buyers']!.id).toBe(handMade.id);
    expect(Object.keys(await listedAudiences(other.apiKey))).toEqual(['crm-b']);
  });

  test('deleteAudience deletes an audience created any way; another workspace’s audience is the same NotFoundError as an unknown one', async () => {
    const audience = await createAudienceWith(suite.gateway, ['ada@example.com']);
    const other = await suite.gateway.createWorkspace();
    const theirs = await createAudienceWith(suite.gateway, [], other.apiKey);

    const foreign = await expectNothingWritten(async () => dataOf(await suite.gateway.execute(DeleteAudience, { id: theirs.id })));
    const unknown = await expectNothingWritten(async () =>
      dataOf(await suite.gateway.execute(DeleteAudience, { id: unknownId('Audience') })),
    );
    expect(foreign.deleteAudience).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    expect(foreign).toEqual(unknown);

    const deleted = dataOf(await suite.gateway.execute(DeleteAudience, { id: audience.id })).deleteAudience;
    expect(deleted).toEqual({ __typename: 'DeleteAudienceSuccess', deletedId: audience.id });
    expect(await listedAudiences()).toEqual({});
    expect(Object.keys(await listedAudiences(other.apiKey))).toHaveLength(1);
  });
});

describe('notifyUrl', () => {
  test('receives the ended task as JSON, after a failed attempt; the result records the delivery', async () => {
    const receiver = await startFakeNotificationReceiver();
    try {
      receiver.failNext(1);
      const task = await syncAndWait({ audiences: [{ audienceId: 'crm', add: [{ externalId: 'u1' }] }], notifyUrl: receiver.url });
      const notified = await notifiedTask(task.id);

      const { notification, ...resultWhenEnded } = notified.result as Record<string, unknown>;
      expect(receiver.notifications).toEqual([
        { id: task.id, kind: 'SYNC_AUDIENCES', status: 'COMPLETED', result: resultWhenEnded, error: null },
      ]);
      expect(resultWhenEnded).toMatchObject({ audiences: [{ audienceId: 'crm', added: 1 }], deletedMissing: 0 });
      expect(notification).toEqual({ delivered: true, attempts: 2, status: 204 });
    } finally {
      await receiver.close();
    }
  });

  test('with a notifySecret the call is signed (HMAC-SHA256 over timestamp and body); the secret is stored sealed', async () => {
    const signingSecret = 'task-notifications-0123456789abcdef-secret';
    const receiver = await startFakeNotificationReceiver({ signingSecret });
    try {
      const task = await syncAndWait({
        audiences: [{ audienceId: 'crm', add: [{ externalId: 'u1' }] }],
        notifyUrl: receiver.url,
        notifySecret: signingSecret,
      });
      const notified = await notifiedTask(task.id);

      expect(notified.result).toMatchObject({ notification: { delivered: true, attempts: 1, status: 204 } });
      expect(receiver.notifications).toHaveLength(1);
      expect(notified.notifySecret).toMatch(/^v1:/);
      expect(notified.notifySecret).not.toContain(signingSecret);
    } finally {
      await receiver.close();
    }
  });

  test('a receiver that checks signatures refuses a call signed with another secret: the result says so', async () => {
    const receiver = await startFakeNotificationReceiver({ signingSecret: 'the-secret-the-receiver-expects-0123456789' });
    try {
      const task = await syncAndWait({
        audiences: [{ audienceId: 'crm' }],
        notifyUrl: receiver.url,
        notifySecret: 'a-different-secret-given-to-the-gateway-42',
      });
      const notified = await notifiedTask(task.id);

      expect(notified.status).toBe('COMPLETED');
      expect(notified.result).toMatchObject({ notification: { delivered: false, attempts: 1, status: 401 } });
      expect(receiver.notifications).toHaveLength(0);
    } finally {
      await receiver.close();
    }
  });

  test('a receiver that cannot be reached does not fail the task: the result says so', async () => {
    const receiver = await startFakeNotificationReceiver();
    await receiver.close();

    const task = await syncAndWait({ audiences: [{ audienceId: 'crm' }], notifyUrl: receiver.url });
    const notified = await notifiedTask(task.id);

    expect(notified.status).toBe('COMPLETED');
    expect(notified.result).toMatchObject({ notification: { delivered: false, attempts: 4, error: 'could not be reached' } });
  });
});

describe('workspaces', () => {
  test('the same audienceId in two workspaces names two audiences; a task is invisible to another workspace', async () => {
    const other = await suite.gateway.createWorkspace();
    const ours = await syncAndWait({ audiences: [{ audienceId: 'crm', add: [{ externalId: 'u1' }] }] });
    await syncAndWait({ audiences: [{ audienceId: 'crm', add: [{ externalId: 'u1' }, { externalId: 'u2' }] }] }, other.apiKey);

    expect((await listedAudiences()).crm!.memberCount).toBe(1);
    expect((await listedAudiences(other.apiKey)).crm!.memberCount).toBe(2);
    expect(await db().contact.count()).toBe(3);
    expect(dataOf(await suite.gateway.execute(NodeById, { id: ours.id }, { apiKey: other.apiKey })).node).toBeNull();
  });
});

/** The stored task once its notifyUrl has been tried: its result records the delivery. */
function notifiedTask(taskId: string) {
  return waitFor(
    () => db().task.findUniqueOrThrow({ where: { id: decodeGlobalID(taskId).id } }),
    (stored) => Boolean((stored.result as { notification?: unknown }).notification),
    { what: `task ${taskId}'s notification` },
  );
}
