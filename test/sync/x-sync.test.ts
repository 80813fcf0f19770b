import { expect, test } from 'vitest';
import { startFakeX, type FakeX, type RecordedXRequest, type XCredentialsFixture } from '../fakes/x-server.js';
import { TestDestination } from '../support/operations.js';
import { changeMembers, createAudienceWith, createDestinationWith, createSync, dataOf, expectType, hashedEmails } from '../support/scenario.js';
import { readSync, runSync } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

// The test gateway retries 3 times, backing off from 20 ms (PLATFORM_RETRIES, PLATFORM_RETRY_MIN_MS).
const suite = useGatewaySuite({ reset: true });

const ACCOUNT_ID = '18ce54d4x5t';
const CREDENTIALS: XCredentialsFixture = {
  consumerKey: 'gateway-consumer-key',
  consumerSecret: 'gateway-consumer-secret-0123456789',
  accessToken: '1234567890-gatewayAccessToken',
  accessTokenSecret: 'gateway-access-token-secret-abcdef',
};

const STARTING = ['ada@example.com', ' Grace@Example.com ', 'linus@example.org', 'ken@example.net', 'barbara@example.com'];
const LEAVING = [STARTING[1]!, STARTING[3]!];
const JOINING = ['margaret@example.com'];
const STAYING = STARTING.filter((email) => !LEAVING.includes(email));

async function fakeX(): Promise<FakeX> {
  return suite.closeAfterTest(await startFakeX({ accountId: ACCOUNT_ID, credentials: CREDENTIALS }));
}

function createXDestination(fake: FakeX, credentials: XCredentialsFixture = CREDENTIALS) {
  return createDestinationWith(suite.gateway, {
    name: 'X ads',
    config: { x: { accountId: ACCOUNT_ID, baseUrl: fake.baseUrl } },
    credentials: { x: credentials },
  });
}

async function xSyncScenario(emails: string[], credentials?: XCredentialsFixture) {
  const fake = await fakeX();
  const destination = await createXDestination(fake, credentials);
  const audience = await createAudienceWith(suite.gateway, emails);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, mode: 'MIRROR' });
  return { fake, destination, audience, sync };
}

const isUsersRequest = (request: { url: string }) => request.url.endsWith('/users');

/** Each member upload's operation type and the hashed emails it carried, in order. */
function uploads(requests: RecordedXRequest[]) {
  return requests.filter(isUsersRequest).map((request) => {
    const operations = request.body as { operation_type: string; params: { users: { email?: string[] }[] } }[];
    return {
      types: [...new Set(operations.map((operation) => operation.operation_type))],
      emails: operations.flatMap((operation) => operation.params.users.flatMap((user) => user.email ?? [])).sort(),
    };
  });
}

/** The hashed emails the fake X audience holds. */
function heldEmails(fake: FakeX): string[] {
  const [audience] = [...fake.audiences.values()];
  return [...(audience ?? [])].filter((entry) => entry.startsWith('email:')).map((entry) => entry.slice(6)).sort();
}

async function runAndRecord(fake: FakeX, syncId: string) {
  const before = fake.requests.length;
  const { run } = await runSync(suite.gateway, syncId);
  expect(run.status, run.errorMessage ?? undefined).toBe('SUCCEEDED');
  return { run, requests: fake.requests.slice(before) };
}

test('MIRROR: the first run creates the audience and adds everyone; the next sends exactly the difference', async () => {
  const { fake, audience, sync } = await xSyncScenario(STARTING);

  const first = await runAndRecord(fake, sync.id);
  expect(first.run).toMatchObject({ membersAdded: 5, membersRemoved: 0, membersInvalid: 0, totalMembers: 5 });
  const [create, ...rest] = first.requests;
  expect(create).toMatchObject({ method: 'POST', url: `/12/accounts/${ACCOUNT_ID}/custom_audiences?name=Buyers%20to%20Meta` });
  const [platformAudienceId] = [...fake.audiences.keys()];
  expect((await readSync(suite.gateway, sync.id)).platformAudienceId).toBe(platformAudienceId);
  // After a run that changed something, the gateway reads what X reports about the audience.
  expect(rest.map((request) => `${request.method} ${request.url}`)).toEqual([
    `POST /12/accounts/${ACCOUNT_ID}/custom_audiences/${platformAudienceId}/users`,
    `GET /12/accounts/${ACCOUNT_ID}/custom_audiences/${platformAudienceId}`,
  ]);
  expect(uploads(rest)).toEqual([{ types: ['Update'], emails: hashedEmails(STARTING) }]);
  expect(heldEmails(fake)).toEqual(hashedEmails(STARTING));
  expect(fake.authRejections).toEqual([]);

  await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
  const second = await runAndRecord(fake, sync.id);
  expect(second.run).toMatchObject({ membersAdded: 1, membersRemoved: 2, membersInvalid: 0, totalMembers: 4 });
  const [readBack] = second.requests.filter((request) => !isUsersRequest(request));
  expect(second.requests.filter((request) => !isUsersRequest(request))).toEqual([readBack]);
  expect(readBack).toMatchObject({ method: 'GET', url: `/12/accounts/${ACCOUNT_ID}/custom_audiences/${platformAudienceId}` });
  expect(uploads(second.requests)).toEqual([
    { types: ['Update'], emails: hashedEmails(JOINING) },
    { types: ['Delete'], emails: hashedEmails(LEAVING) },
  ]);
  expect(heldEmails(fake)).toEqual(hashedEmails([...STAYING, ...JOINING]));

  const third = await runAndRecord(fake, sync.id);
  expect(third.requests).toEqual([]);
  expect(third.run).toMatchObject({ membersAdded: 0, membersRemoved: 0, totalMembers: 4 });
});

test('throttling is retried after x-rate-limit-reset, and the run records the wait', async () => {
  const { fake, sync } = await xSyncScenario(STARTING);
  fake.failNext('throttle', 2, isUsersRequest);

  const { run } = await runAndRecord(fake, sync.id);
  expect(run).toMatchObject({ membersAdded: 5 });
  // Two pauses until a reset announced one to two seconds ahead (X's reset is in whole seconds).
  expect(run.waitedSeconds).toBeGreaterThanOrEqual(1.9);
  expect(run.waitedSeconds).toBeLessThan(10);
  expect(fake.requests.filter(isUsersRequest)).toHaveLength(3);
  expect(heldEmails(fake)).toEqual(hashedEmails(STARTING));
});

test('transient 5xx errors are retried and the batch is applied once', async () => {
  const { fake, sync } = await xSyncScenario(STARTING);
  fake.failNext('server-error', 2, isUsersRequest);

  const { run } = await runAndRecord(fake, sync.id);
  expect(run).toMatchObject({ membersAdded: 5, membersInvalid: 0 });
  expect(run.waitedSeconds).toBeGreaterThan(0);
  expect(fake.requests.filter(isUsersRequest)).toHaveLength(3);
  expect(heldEmails(fake)).toEqual(hashedEmails(STARTING));
  expect((await runAndRecord(fake, sync.id)).requests).toEqual([]);
});

test('members X refuses are counted invalid and do not fail the run', async () => {
  const { fake, sync } = await xSyncScenario(STARTING);
  const [refused] = hashedEmails(['ken@example.net']);
  fake.rejectedValues.add(refused!);

  const { run } = await runAndRecord(fake, sync.id);
  expect(run).toMatchObject({ membersAdded: 4, membersInvalid: 1, membersFailed: 0, errorMessage: null });
  expect(uploads(fake.requests).map((upload) => upload.emails.length)).toEqual([5, 4]);
  expect(heldEmails(fake)).toEqual(hashedEmails(STARTING.filter((email) => email !== 'ken@example.net')));
});

test('credentials X cannot verify fail the run at once, with what to do, and put the sync in ERROR', async () => {
  const wrong = { ...CREDENTIALS, accessTokenSecret: 'an-outdated-access-token-secret' };
  const { fake, sync } = await xSyncScenario(STARTING, wrong);

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run.status).toBe('FAILED');
  expect(run.errorMessage).toBe('X rejected the credentials — reconnect the destination');
  expect(run.errorDetails).toEqual({ platform: 'X', status: 401, code: 'UNAUTHORIZED_ACCESS', retryable: false });
  expect(run.waitedSeconds).toBe(0);
  expect(fake.requests).toHaveLength(1);
  expect(fake.authRejections).toEqual(['signature']);
  for (const secret of Object.values(wrong)) expect(JSON.stringify(run)).not.toContain(secret);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ERROR', statusError: run.errorMessage });
});

test('testDestination reads the ads account, and says what is wrong when it cannot', async () => {
  const check = async (id: string) =>
    expectType(dataOf(await suite.gateway.execute(TestDestination, { id })).testDestination, 'TestDestinationSuccess');
  const fake = await fakeX();

  const working = await createXDestination(fake);
  const passed = await check(working.id);
  expect(passed).toMatchObject({ ok: true, retryable: false });
  expect(passed.message).toContain(ACCOUNT_ID);
  expect(fake.requests.map((request) => `${request.method} ${request.url}`)).toEqual([`GET /12/accounts/${ACCOUNT_ID}`]);
  expect(fake.audiences.size).toBe(0);

  const revoked = await createXDestination(fake, { ...CREDENTIALS, accessToken: '1234567890-revoked' });
  expect(await check(revoked.id)).toEqual({
    __typename: 'TestDestinationSuccess',
    ok: false,
    retryable: false,
    message: 'X rejected the credentials — reconnect the destination',
    destination: { id: revoked.id },
  });

  fake.failNext('server-error');
  expect(await check(working.id)).toMatchObject({ ok: false, retryable: true, message: expect.stringMatching(/temporary problem/) });
});
