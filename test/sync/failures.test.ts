import { expect, test } from 'vitest';
import { graphql } from '../generated/gql.js';
import { AddAudienceMembers, CreateDestination, ListAudienceSyncs, UpdateAudienceSync } from '../support/operations.js';
import {
  EMAIL_AND_MADID_MAPPING,
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
  emailColumn,
  readSync,
  runSync,
  triggerSync,
  uploadedEmails,
  usersRequests,
  waitForRunEnd,
} from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

const UpdateDestinationCredentials = graphql(`
  mutation UpdateDestinationCredentials($id: ID!, $credentials: DestinationCredentialsInput!) {
    updateDestination(id: $id, input: { credentials: $credentials }) {
      __typename
      ... on UpdateDestinationSuccess { destination { id credentialsConfigured } }
      ... on Error { message code }
    }
  }
`);

const suite = useGatewaySuite({ reset: true });

const EMAILS = ['ada@example.com', 'grace@example.com', 'linus@example.org'];

async function syncsInStatus(status: 'ACTIVE' | 'ERROR') {
  const { audienceSyncs } = dataOf(await suite.gateway.execute(ListAudienceSyncs, { status }));
  return audienceSyncs.edges.map((edge) => edge.node.id);
}

test('an expired token fails the run with a message to reconnect, puts the sync in ERROR until a run succeeds', async () => {
  const { fake, sync } = await suite.metaSyncScenario(EMAILS);
  fake.failNext('token-expired');

  const { run, task } = await runSync(suite.gateway, sync.id);
  expect(run.status).toBe('FAILED');
  expect(run.errorMessage).toMatch(/access token/i);
  expect(run.errorMessage).toMatch(/reconnect/i);
  expect(run.errorMessage).not.toContain(META_TOKEN);
  expect(run.errorDetails).toEqual({ platform: 'META', status: 400, code: 190, retryable: false });
  expect(task).toMatchObject({ status: 'FAILED', error: run.errorMessage, result: { status: 'FAILED', membersAdded: 0 } });

  const failed = await readSync(suite.gateway, sync.id);
  expect(failed).toMatchObject({ status: 'ERROR', statusError: run.errorMessage, lastSyncedAt: null });
  expect(failed.lastRun).toEqual({ id: run.id, status: 'FAILED' });
  expect((await readSync(suite.gateway, sync.id, 'FAILED')).runs.map((failure) => failure.id)).toEqual([run.id]);
  expect((await readSync(suite.gateway, sync.id, 'SUCCEEDED')).runs).toEqual([]);
  expect(await syncsInStatus('ERROR')).toEqual([sync.id]);

  // Nothing else is queued to fail: the next run goes through and clears the error.
  const retried = await runSync(suite.gateway, sync.id);
  expect(retried.run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3, errorMessage: null, errorDetails: null });
  expect(heldEmails(fake)).toEqual(hashedEmails(EMAILS));
  const recovered = await readSync(suite.gateway, sync.id);
  expect(recovered).toMatchObject({ status: 'ACTIVE', statusError: null, lastSyncedCount: 3 });
  expect((await readSync(suite.gateway, sync.id, 'FAILED')).runs.map((failure) => failure.id)).toEqual([run.id]);
  expect(await syncsInStatus('ERROR')).toEqual([]);
});

test('a run that fails part-way keeps what Meta took; the next run sends only the rest', async () => {
  const { fake, audience, sync } = await suite.metaSyncScenario(EMAILS);
  expect((await runSync(suite.gateway, sync.id)).run.status).toBe('SUCCEEDED');
  await changeMembers(suite.gateway, audience.id, { add: ['margaret@example.com'], remove: [EMAILS[0]!] });
  fake.failNext('permission-denied', 1, (request) => request.method === 'DELETE');

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'FAILED', membersAdded: 1, membersRemoved: 0 });
  expect(run.errorMessage).toMatch(/permission/);
  expect(run.errorDetails).toMatchObject({ platform: 'META', code: 200, retryable: false });
  expect(heldEmails(fake)).toEqual(hashedEmails([...EMAILS, 'margaret@example.com']));

  const before = fake.requests.length;
  const resumed = await runSync(suite.gateway, sync.id);
  expect(resumed.run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 0, membersRemoved: 1 });
  const uploads = usersRequests(fake.requests.slice(before));
  expect(uploadedEmails(uploads)).toEqual([{ method: 'DELETE', emails: hashedEmails([EMAILS[0]!]) }]);
  expect(heldEmails(fake)).toEqual(hashedEmails([...EMAILS.slice(1), 'margaret@example.com']));
});

test('a sync in ERROR paused while a run is under way stays paused when the run succeeds', async () => {
  const { fake, sync } = await suite.metaSyncScenario(EMAILS);
  fake.failNext('token-expired');
  expect((await runSync(suite.gateway, sync.id)).run.status).toBe('FAILED');

  const hold = fake.hold();
  const triggered = await triggerSync(suite.gateway, sync.id);
  await hold.waiting;
  const paused = dataOf(await suite.gateway.execute(UpdateAudienceSync, { id: sync.id, input: { status: 'PAUSED' } }));
  expect(expectType(paused.updateAudienceSync, 'UpdateAudienceSyncSuccess').audienceSync.status).toBe('PAUSED');
  hold.release();

  expect(await waitForRunEnd(suite.gateway, triggered.syncRun.id)).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3 });
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'PAUSED', statusError: null, lastSyncedCount: 3 });
});

test('a destination without credentials fails the run with what to do, and runs once they are added', async () => {
  const fake = await suite.fakeMeta();
  const created = dataOf(
    await suite.gateway.execute(CreateDestination, {
      input: { name: 'Meta ads', config: { meta: { adAccountId: 'act_1234567890', baseUrl: fake.baseUrl } } },
    }),
  );
  const destination = expectType(created.createDestination, 'CreateDestinationSuccess').destination;
  expect(destination.credentialsConfigured).toBe(false);
  const audience = await createAudienceWith(suite.gateway, EMAILS);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });

  const { run, task } = await runSync(suite.gateway, sync.id);
  expect(run.status).toBe('FAILED');
  expect(run.errorMessage).toMatch(/no credentials/i);
  expect(run.errorMessage).toContain('updateDestination');
  expect(task).toMatchObject({ status: 'FAILED', error: run.errorMessage });
  expect(fake.requests).toEqual([]);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ERROR', statusError: run.errorMessage });

  const updated = dataOf(
    await suite.gateway.execute(UpdateDestinationCredentials, {
      id: destination.id,
      credentials: { meta: { accessToken: META_TOKEN } },
    }),
  );
  expect(expectType(updated.updateDestination, 'UpdateDestinationSuccess').destination.credentialsConfigured).toBe(true);
  expect((await runSync(suite.gateway, sync.id)).run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3 });
  expect(heldEmails(fake)).toEqual(hashedEmails(EMAILS));
});

test('members without a usable identifier are counted unusable, rows Meta rejects invalid, and neither fails the batch', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, EMAILS);
  const unusable = [
    { phone: '+14155550100' }, // a phone, while the mapping sends emails and mobile ad ids only
    { externalId: 'crm-42' },
    { mobileAdId: 'not-a-mobile-ad-id' }, // sent, and rejected by Meta as invalid
  ];
  const added = dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId: audience.id, members: unusable }));
  expect(expectType(added.addAudienceMembers, 'AddAudienceMembersSuccess').added).toBe(3);
  const sync = await createSync(suite.gateway, {
    audienceId: audience.id,
    destinationId: destination.id,
    fieldMapping: EMAIL_AND_MADID_MAPPING,
  });

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({
    status: 'SUCCEEDED',
    totalMembers: 6,
    membersAdded: 3,
    membersInvalid: 1,
    membersUnusable: 2,
    unusableCounts: [{ reason: 'NO_MAPPED_VALUE', count: 2 }],
    membersFailed: 0,
    errorMessage: null,
  });
  // The row Meta rejected is sampled with Meta's reason; the two with nothing to send are only counted.
  expect(run.invalidSamples).toEqual([expect.stringMatching(/^not-a-mobile-ad-id: /)]);
  const uploads = usersRequests(fake.requests);
  expect(uploads).toHaveLength(1);
  expect(uploads[0]!.schema).toEqual(['EMAIL', 'MADID']);
  expect(uploads[0]!.rows).toHaveLength(4);
  expect(emailColumn(uploads[0]!).filter((value) => value !== '')).toEqual(hashedEmails(EMAILS));
  expect(heldEmails(fake)).toEqual(hashedEmails(EMAILS));
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ACTIVE', statusError: null });
});

test('a Meta audience flagged for health or financial status: the run fails at once, the sync is in ERROR saying what Meta expects', async () => {
  const { fake, audience, sync } = await suite.metaSyncScenario(EMAILS);
  expect((await runSync(suite.gateway, sync.id)).run.status).toBe('SUCCEEDED');
  fake.flagged.add([...fake.audiences.keys()][0]!);
  await changeMembers(suite.gateway, audience.id, { add: ['new@example.com'], remove: ['ada@example.com'] });
  const before = usersRequests(fake.requests).length;

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'FAILED', membersAdded: 0, waitedSeconds: 0 });
  expect(run.errorMessage).toMatch(/flagged the audience as possibly implying health or financial status/);
  // Not retried: one refused request, no backoff.
  expect(usersRequests(fake.requests).length - before).toBe(1);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ERROR', statusError: run.errorMessage });
});

test('Meta refusing removals that would make the audience too small: adds still apply, the refusal is reported and retried later', async () => {
  const { fake, audience, sync } = await suite.metaSyncScenario(EMAILS);
  expect((await runSync(suite.gateway, sync.id)).run.status).toBe('SUCCEEDED');

  await changeMembers(suite.gateway, audience.id, { add: ['new@example.com'], remove: ['ada@example.com', 'grace@example.com'] });
  fake.failNext('audience-too-small', 1, (request) => request.method === 'DELETE');
  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 1, membersRemoved: 0, membersRefused: 2 });
  expect(run.refusalReason).toMatch(/too small/);
  expect(heldEmails(fake)).toEqual(hashedEmails([...EMAILS, 'new@example.com']));

  // Once Meta accepts, the next run removes exactly the refused members.
  const retried = (await runSync(suite.gateway, sync.id)).run;
  expect(retried).toMatchObject({ status: 'SUCCEEDED', membersAdded: 0, membersRemoved: 2, membersRefused: 0 });
  expect(heldEmails(fake)).toEqual(hashedEmails(['linus@example.org', 'new@example.com']));
});
