import { expect, test } from 'vitest';
import { THROTTLE_RETRY_DELAY_SECONDS, type FakeGoogle, type RecordedRequest } from '../fakes/google-server.js';
import { AddAudienceMembers, CreateDestination, TestDestination } from '../support/operations.js';
import {
  GOOGLE_ACCOUNT_ID,
  GOOGLE_CLIENT,
  GOOGLE_LIST_ID,
  GOOGLE_REFRESH_TOKEN,
  createGoogleDestination,
} from '../support/google.js';
import { changeMembers, createAudienceWith, createSync, dataOf, expectType, sha256 } from '../support/scenario.js';
import { readSync, runSync } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';
import { expectNothingWritten } from '../support/tables.js';

// The test gateway retries 3 times, backing off from 20 ms (PLATFORM_RETRIES, PLATFORM_RETRY_MIN_MS).
const suite = useGatewaySuite({ reset: true });

const STARTING = ['ada@example.com', ' Grace@Example.com ', 'Linus.Torvalds@gmail.com', 'ken@example.net'];
const LEAVING = [STARTING[1]!, STARTING[3]!];
const JOINING = ['margaret@example.com'];
/** Each email as Google must receive it: normalized by its rules (Gmail without dots), then hashed. */
const HASHED: Record<string, string> = {
  'ada@example.com': sha256('ada@example.com'),
  ' Grace@Example.com ': sha256('grace@example.com'),
  'Linus.Torvalds@gmail.com': sha256('linustorvalds@gmail.com'),
  'ken@example.net': sha256('ken@example.net'),
  'margaret@example.com': sha256('margaret@example.com'),
};
const hashed = (emails: string[]) => emails.map((email) => HASHED[email]!).sort();

/** A fake Google and a MIRROR sync to it of a fresh audience: into GOOGLE_LIST_ID, or, `withoutList`, with no list id yet. */
async function googleSyncScenario(emails: string[], options: { withoutList?: boolean; api?: 'ADS_API' } = {}) {
  const platformAudienceId = options.withoutList ? undefined : GOOGLE_LIST_ID;
  const fake = await suite.fakeGoogle();
  const destination = await createGoogleDestination(suite.gateway, fake, options.api);
  const audience = await createAudienceWith(suite.gateway, emails);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, platformAudienceId });
  return { fake, destination, audience, sync };
}

const memberUploads = (requests: RecordedRequest[]) => requests.filter((r) => r.url.startsWith('/v1/audienceMembers:'));

interface MembersBody {
  audienceMembers: { userData: { userIdentifiers: { emailAddress?: string; phoneNumber?: string }[] } }[];
}

/** Each member upload's operation and hashed emails. */
function uploadedEmails(requests: RecordedRequest[]) {
  return memberUploads(requests).map((request) => ({
    operation: request.url.split(':')[1],
    emails: (request.body as MembersBody).audienceMembers
      .map((member) => member.userData.userIdentifiers.find((identifier) => identifier.emailAddress)?.emailAddress)
      .sort(),
  }));
}

function heldEmails(fake: FakeGoogle, listId = GOOGLE_LIST_ID): string[] {
  return [...(fake.userLists.get(listId)?.members ?? [])]
    .filter((key) => key.startsWith('EMAIL:'))
    .map((key) => key.slice('EMAIL:'.length))
    .sort();
}

async function runAndRecord(fake: FakeGoogle, syncId: string) {
  const before = fake.requests.length;
  const { run } = await runSync(suite.gateway, syncId);
  expect(run.status, run.errorMessage ?? undefined).toBe('SUCCEEDED');
  return { run, requests: fake.requests.slice(before) };
}

test('the destination keeps its settings, with defaults, and only a hint of the refresh token', async () => {
  const fake = await suite.fakeGoogle();
  const destination = await createGoogleDestination(suite.gateway, fake);

  expect(destination).toMatchObject({
    platform: 'GOOGLE',
    config: {
      __typename: 'GoogleConfig',
      operatingAccount: { accountType: 'GOOGLE_ADS', accountId: GOOGLE_ACCOUNT_ID },
      customerMatchTermsAccepted: true,
    },
    credentialsConfigured: true,
    credentialsHint: `…${GOOGLE_REFRESH_TOKEN.slice(-4)}`,
  });
  expect(JSON.stringify(destination)).not.toContain(GOOGLE_CLIENT.clientSecret);
});

test('a destination whose user has not accepted the Customer Match terms is refused', async () => {
  const result = await expectNothingWritten(async () =>
    dataOf(
      await suite.gateway.execute(CreateDestination, {
        input: {
          name: 'Google Ads',
          config: {
            google: {
              operatingAccount: { accountId: GOOGLE_ACCOUNT_ID },
              consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
              customerMatchTermsAccepted: false,
            },
          },
        },
      }),
    ),
  );
  const refused = expectType(result.createDestination, 'ValidationError');
  expect(refused.field).toBe('input.config.google.customerMatchTermsAccepted');
  expect(refused.issues?.[0]?.message).toMatch(/accept the Customer Match terms/);
});

test('MIRROR: the first run ingests everyone, the next sends exactly the difference, an unchanged audience nothing', async () => {
  const { fake, audience, sync } = await googleSyncScenario(STARTING);
  const withPhone = dataOf(
    await suite.gateway.execute(AddAudienceMembers, {
      audienceId: audience.id,
      members: [{ email: 'barbara@example.com', phone: '+1 415 555 0100' }],
    }),
  );
  expectType(withPhone.addAudienceMembers, 'AddAudienceMembersSuccess');

  const first = await runAndRecord(fake, sync.id);
  expect(first.run).toMatchObject({ membersAdded: 5, membersRemoved: 0, membersInvalid: 0, totalMembers: 5 });
  const [ingest, ...others] = memberUploads(first.requests);
  expect(others).toEqual([]);
  const members = (ingest!.body as MembersBody).audienceMembers.map((member) => member.userData.userIdentifiers);
  expect(members).toHaveLength(5);
  expect(members).toEqual(
    expect.arrayContaining([
      [{ emailAddress: sha256('barbara@example.com') }, { phoneNumber: sha256('+14155550100') }],
      ...hashed(STARTING).map((email) => [{ emailAddress: email }]),
    ]),
  );
  expect(heldEmails(fake)).toEqual([...hashed(STARTING), sha256('barbara@example.com')].sort());

  await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
  const second = await runAndRecord(fake, sync.id);
  expect(second.run).toMatchObject({ membersAdded: 1, membersRemoved: 2, membersInvalid: 0, totalMembers: 4 });
  expect(uploadedEmails(second.requests)).toEqual([
    { operation: 'ingest', emails: hashed(JOINING) },
    { operation: 'remove', emails: hashed(LEAVING) },
  ]);
  const remove = memberUploads(second.requests)[1]!;
  expect(Object.keys(remove.body as object).sort()).toEqual(['audienceMembers', 'destinations', 'encoding']);
  expect(heldEmails(fake)).toEqual(
    [...hashed(STARTING.filter((email) => !LEAVING.includes(email))), ...hashed(JOINING), sha256('barbara@example.com')].sort(),
  );

  const third = await runAndRecord(fake, sync.id);
  expect(memberUploads(third.requests)).toEqual([]);
  expect(third.run).toMatchObject({ membersAdded: 0, membersRemoved: 0, totalMembers: 4 });
  // One token exchange served all three runs.
  expect(fake.requests.filter((request) => request.url === '/token')).toHaveLength(1);
});

test('a sync without a list id creates a Customer Match list on its first run and keeps its id', async () => {
  const { fake, sync } = await googleSyncScenario(STARTING, { withoutList: true });

  const first = await runAndRecord(fake, sync.id);
  const created = first.requests.find((request) => request.url.endsWith('/userLists'));
  expect(created).toMatchObject({ method: 'POST', url: `/v1/accountTypes/GOOGLE_ADS/accounts/${GOOGLE_ACCOUNT_ID}/userLists` });
  const [listId] = [...fake.userLists.keys()].filter((id) => id !== GOOGLE_LIST_ID);
  expect(fake.userLists.get(listId!)?.displayName).toBe('Buyers to Meta');
  expect((await readSync(suite.gateway, sync.id)).platformAudienceId).toBe(listId);
  expect(heldEmails(fake, listId)).toEqual(hashed(STARTING));

  const second = await runAndRecord(fake, sync.id);
  expect(second.requests.some((request) => request.url.endsWith('/userLists'))).toBe(false);
});

test('throttling: the run waits as long as Google asks, retries, and records the wait', async () => {
  const { fake, sync } = await googleSyncScenario(STARTING);
  fake.failNext('throttle', 2, (request) => request.path.endsWith(':ingest'));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 4 });
  // Two pauses of at least the RetryInfo delay.
  expect(run.waitedSeconds).toBeGreaterThanOrEqual(2 * THROTTLE_RETRY_DELAY_SECONDS);
  expect(run.waitedSeconds).toBeLessThan(10);
  expect(memberUploads(fake.requests)).toHaveLength(3);
  expect(heldEmails(fake)).toEqual(hashed(STARTING));
});

test('transient 5xx errors are retried, and the batch is applied once', async () => {
  const { fake, sync } = await googleSyncScenario(STARTING);
  fake.failNext('unavailable', 2, (request) => request.path.endsWith(':ingest'));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run, run.errorMessage ?? '').toMatchObject({ status: 'SUCCEEDED', membersAdded: 4, membersInvalid: 0 });
  expect(run.waitedSeconds).toBeGreaterThan(0);
  expect(memberUploads(fake.requests)).toHaveLength(3);
  expect(heldEmails(fake)).toEqual(hashed(STARTING));
  const again = await runAndRecord(fake, sync.id);
  expect(again.run).toMatchObject({ membersAdded: 0 });
  expect(memberUploads(again.requests)).toEqual([]);
});

test('revoked credentials fail the run at once with what to do, and put the sync in ERROR', async () => {
  const { fake, sync } = await googleSyncScenario(STARTING);
  fake.revokeAccess();

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run.status).toBe('FAILED');
  expect(run.errorMessage).toBe(
    'Google rejected the credentials: the refresh token has expired or been revoked — reconnect the destination',
  );
  expect(run.errorDetails).toEqual({ platform: 'GOOGLE', status: 400, code: 'invalid_grant', retryable: false });
  expect(run.waitedSeconds).toBe(0);
  expect(fake.requests.map((request) => request.url)).toEqual(['/token']);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ERROR', statusError: run.errorMessage });
  expect(heldEmails(fake)).toEqual([]);
});

test('testDestination passes with working credentials, reading only', async () => {
  const fake = await suite.fakeGoogle();
  const destination = await createGoogleDestination(suite.gateway, fake);

  const result = dataOf(await suite.gateway.execute(TestDestination, { id: destination.id }));
  const outcome = expectType(result.testDestination, 'TestDestinationSuccess');
  expect(outcome).toMatchObject({ ok: true, retryable: false, destination: { id: destination.id } });
  expect(outcome.message).toContain(`Google Ads account ${GOOGLE_ACCOUNT_ID}`);
  expect(fake.requests.map((request) => `${request.method} ${request.url}`)).toEqual([
    'POST /token',
    `GET /v1/accountTypes/GOOGLE_ADS/accounts/${GOOGLE_ACCOUNT_ID}/userLists?pageSize=1`,
  ]);
  expect(fake.userLists.size).toBe(1);
});

test.each([
  ['revoked credentials', (fake: FakeGoogle) => fake.revokeAccess(), /rejected the credentials.*reconnect/, false],
  ['a Google outage', (fake: FakeGoogle) => fake.failNext('unavailable'), /temporary problem/, true],
] as const)('testDestination fails on %s, saying what is wrong', async (_case, breakIt, message, retryable) => {
  const fake = await suite.fakeGoogle();
  const destination = await createGoogleDestination(suite.gateway, fake);
  breakIt(fake);

  const result = dataOf(await suite.gateway.execute(TestDestination, { id: destination.id }));
  const outcome = expectType(result.testDestination, 'TestDestinationSuccess');
  expect(outcome).toMatchObject({ ok: false, retryable });
  expect(outcome.message).toMatch(message);
  expect(outcome.message).not.toContain(GOOGLE_REFRESH_TOKEN);
});

test('ADS_API: each upload is a job nothing waits for, and no job starts while another runs on the list', async () => {
  const { fake, audience, sync } = await googleSyncScenario(STARTING, { api: 'ADS_API' });
  const jobRequests = (requests: RecordedRequest[]) =>
    requests.filter((request) => /offlineUserDataJobs/.test(request.url)).map((request) => request.url.split('/').at(-1));

  const first = await runAndRecord(fake, sync.id);
  expect(first.run).toMatchObject({ membersAdded: 4, membersRefused: 0 });
  expect(jobRequests(first.requests)).toEqual(['offlineUserDataJobs:create', '700000001:addOperations', '700000001:run']);
  expect(heldEmails(fake)).toEqual([]);
  fake.completeAdsJobs();
  expect(heldEmails(fake)).toEqual(hashed(STARTING));

  await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
  const second = await runAndRecord(fake, sync.id);
  // The adds' job is still running when the removes come: they wait, and the run says why.
  expect(second.run).toMatchObject({ membersAdded: 1, membersRemoved: 0, membersRefused: 2 });
  expect(second.run.refusalReason).toMatch(/still applying an earlier upload.*removals wait for a later run/);
  expect(jobRequests(second.requests)).toEqual(['offlineUserDataJobs:create', '700000002:addOperations', '700000002:run']);
  fake.completeAdsJobs();

  const third = await runAndRecord(fake, sync.id);
  expect(third.run).toMatchObject({ membersAdded: 0, membersRemoved: 2, membersRefused: 0 });
  const removes = third.requests.find((request) => request.url.endsWith(':addOperations'));
  const removed = (removes?.body as { operations: { remove: { userIdentifiers: { hashedEmail: string }[] } }[] }).operations;
  expect(removed.map((operation) => operation.remove.userIdentifiers.map((identifier) => identifier.hashedEmail)).sort()).toEqual(
    hashed(LEAVING).map((email) => [email]),
  );
  fake.completeAdsJobs();
  expect(heldEmails(fake)).toEqual(hashed([...STARTING.filter((email) => !LEAVING.includes(email)), ...JOINING]));
  expect([...fake.adsJobs.values()].map((job) => job.status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
});
