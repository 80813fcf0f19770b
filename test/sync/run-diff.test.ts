import { decodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { graphql } from '../generated/gql.js';
import { AddAudienceMembers, RemoveAudienceMembers } from '../support/operations.js';
import {
  changeMembers,
  createAudienceWith,
  createMetaDestination,
  createSync,
  dataOf,
  expectType,
  sha256,
} from '../support/scenario.js';
import { readRun, runSync, triggerSync, usersRequests, waitForRunEnd } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

const suite = useGatewaySuite({ reset: true });

const RunDiffRunCounts = graphql(`
  query RunDiffRunCounts($id: ID!) {
    node(id: $id) {
      __typename
      ... on SyncRun { status membersAdded membersUpdated membersRemoved membersInvalid membersUnusable identifierCounts { type count } }
    }
  }
`);

const EMAIL_AND_PHONE = [
  { sourceField: 'email', destinationField: 'EMAIL' },
  { sourceField: 'phone', destinationField: 'PHONE' },
];

async function readCounts(runId: string) {
  return expectType(dataOf(await suite.gateway.execute(RunDiffRunCounts, { id: runId })).node!, 'SyncRun');
}

async function addMembers(
  audienceId: string,
  members: { email?: string; phone?: string; firstName?: string; externalId?: string }[],
) {
  const added = dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId, members }));
  expectType(added.addAudienceMembers, 'AddAudienceMembersSuccess');
}

function runDiffRows(runId: string) {
  return db().runDiff.count({ where: { runId: decodeGlobalID(runId).id } });
}

/** Meta hashes phones as digits only. */
const hashedPhone = (phone: string) => sha256(phone.replace(/\D/g, ''));

describe('UPSERT', () => {
  test('re-sends exactly the members whose mapped identifiers changed, as adds, and counts them as updated', async () => {
    const fake = await suite.fakeMeta();
    const destination = await createMetaDestination(suite.gateway, fake);
    const audience = await createAudienceWith(suite.gateway, []);
    await addMembers(audience.id, [
      { email: 'ada@example.com', phone: '+14155550101' },
      { email: 'grace@example.com', phone: '+14155550102' },
      { email: 'linus@example.org', phone: '+14155550103' },
    ]);
    const sync = await createSync(suite.gateway, {
      audienceId: audience.id,
      destinationId: destination.id,
      mode: 'UPSERT',
      fieldMapping: EMAIL_AND_PHONE,
    });
    const first = await runSync(suite.gateway, sync.id);
    expect(await readCounts(first.run.id)).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3, membersUpdated: 0 });

    // Ada's phone changes; Grace is written again with the same values (her contact does not change);
    // a mapped-out field of Linus changes (his contact does, his identifiers do not).
    await addMembers(audience.id, [
      { email: 'ada@example.com', phone: '+14155550199' },
      { email: 'grace@example.com', phone: '+14155550102' },
      { email: 'linus@example.org', firstName: 'Linus' },
    ]);
    const before = fake.requests.length;
    const second = await runSync(suite.gateway, sync.id);
    const uploads = usersRequests(fake.requests.slice(before));
    expect(uploads.map(({ method, schema, rows }) => ({ method, schema, rows }))).toEqual([
      {
        method: 'POST',
        schema: ['EMAIL', 'PHONE'],
        rows: [[sha256('ada@example.com'), hashedPhone('+14155550199')]],
      },
    ]);
    expect(await readCounts(second.run.id)).toMatchObject({
      status: 'SUCCEEDED',
      membersAdded: 0,
      membersUpdated: 1,
      membersRemoved: 0,
      identifierCounts: [
        { type: 'EMAIL', count: 1 },
        { type: 'PHONE', count: 1 },
      ],
    });
    const adaContact = await db().contact.findFirstOrThrow({ where: { email: 'ada@example.com' } });
    const ada = await db().syncedMember.findUniqueOrThrow({
      where: { syncId_contactId: { syncId: decodeGlobalID(sync.id).id, contactId: adaContact.id } },
    });
    expect(ada.identifiers).toEqual({ EMAIL: sha256('ada@example.com'), PHONE: hashedPhone('+14155550199') });

    // Everything checked is now current: the next run sends nothing.
    const quiet = fake.requests.length;
    const third = await runSync(suite.gateway, sync.id);
    expect(fake.requests.slice(quiet)).toEqual([]);
    expect(await readCounts(third.run.id)).toMatchObject({ membersAdded: 0, membersUpdated: 0, identifierCounts: [] });
  });
});

test('identifierCounts counts each identifier type sent, for adds and for removes', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, []);
  await addMembers(audience.id, [
    { email: 'ada@example.com' },
    { email: 'grace@example.com' },
    { phone: '+14155550101' },
    { email: 'linus@example.org', phone: '+14155550102' },
    // Nothing the mapping reads: counted invalid, not sent.
    { externalId: 'crm-42' },
  ]);
  const sync = await createSync(suite.gateway, {
    audienceId: audience.id,
    destinationId: destination.id,
    fieldMapping: EMAIL_AND_PHONE,
  });
  const first = await runSync(suite.gateway, sync.id);
  expect(await readCounts(first.run.id)).toMatchObject({
    membersAdded: 4,
    membersUnusable: 1,
    identifierCounts: [
      { type: 'EMAIL', count: 3 },
      { type: 'PHONE', count: 2 },
    ],
  });

  const members = [{ email: 'linus@example.org' }, { email: 'ada@example.com' }];
  const removed = dataOf(await suite.gateway.execute(RemoveAudienceMembers, { audienceId: audience.id, members }));
  expect(expectType(removed.removeAudienceMembers, 'RemoveAudienceMembersSuccess').removed).toBe(2);
  const second = await runSync(suite.gateway, sync.id);
  expect(await readCounts(second.run.id)).toMatchObject({
    membersRemoved: 2,
    identifierCounts: [
      { type: 'EMAIL', count: 2 },
      { type: 'PHONE', count: 1 },
    ],
  });
});

test("a run's diff is materialized while it runs and gone once it ends, whether it succeeded or failed", async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, ['ada@example.com', 'grace@example.com', 'linus@example.org']);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });

  const hold = fake.hold({ after: 1 });
  const { syncRun } = await triggerSync(suite.gateway, sync.id);
  await hold.waiting;
  expect(await runDiffRows(syncRun.id)).toBe(3);
  hold.release();
  expect(await waitForRunEnd(suite.gateway, syncRun.id)).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3 });
  expect(await runDiffRows(syncRun.id)).toBe(0);

  await changeMembers(suite.gateway, audience.id, { add: ['ken@example.net'], remove: ['ada@example.com'] });
  fake.failNext('token-expired');
  const failed = await runSync(suite.gateway, sync.id);
  expect(failed.run.status).toBe('FAILED');
  expect(await runDiffRows(failed.run.id)).toBe(0);
  expect(await db().runDiff.count()).toBe(0);
  expect((await readRun(suite.gateway, failed.run.id)).membersAdded).toBe(0);
});
