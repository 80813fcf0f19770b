import { expect, test } from 'vitest';
import { startFakeLinkedIn, type FakeLinkedIn, type RecordedRequest } from '../fakes/linkedin-server.js';
import { CreateAudienceSync, TestDestination, UpdateAudienceSync } from '../support/operations.js';
import { changeMembers, createAudienceWith, createDestinationWith, createSync, dataOf, expectType, sha256 } from '../support/scenario.js';
import { readSync, runSync } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

// The test gateway retries 3 times, backing off from 20 ms (PLATFORM_RETRIES, PLATFORM_RETRY_MIN_MS).
const suite = useGatewaySuite({ reset: true });

const TOKEN = 'AQV-linkedin-test-token-9876';
const AD_ACCOUNT = '508000123';
const SOURCE_PLATFORM = 'ASG_GATEWAY';
/** LinkedIn wants a pause after creating a segment; the fake refuses users for this long, the destination waits a bit more. */
const SEGMENT_READY_MS = 200;

const STARTING = ['ada@example.com', ' Grace@Example.com ', 'linus@example.org', 'ken@example.net'];
const LEAVING = [STARTING[1]!, STARTING[3]!];
const JOINING = ['margaret@example.com'];

async function fakeLinkedIn() {
  return suite.closeAfterTest(
    await startFakeLinkedIn({ accessToken: TOKEN, adAccountId: AD_ACCOUNT, segmentReadyAfterMs: SEGMENT_READY_MS }),
  );
}

function createLinkedInDestination(fake: FakeLinkedIn, accessToken = TOKEN) {
  return createDestinationWith(suite.gateway, {
    name: 'LinkedIn ads',
    config: {
      linkedin: {
        adAccountId: AD_ACCOUNT,
        baseUrl: fake.baseUrl,
        sourcePlatform: SOURCE_PLATFORM,
        segmentReadyDelayMs: SEGMENT_READY_MS + 100,
      },
    },
    credentials: { linkedin: { accessToken } },
  });
}

/** A fake LinkedIn and a MIRROR sync of a fresh audience to it; with `segmentId`, to that existing segment. */
async function linkedInScenario(emails: string[], options: { segmentId?: string; accessToken?: string } = {}) {
  const fake = await fakeLinkedIn();
  if (options.segmentId) fake.segments.set(options.segmentId, new Set());
  const destination = await createLinkedInDestination(fake, options.accessToken);
  const audience = await createAudienceWith(suite.gateway, emails);
  const sync = await createSync(suite.gateway, {
    audienceId: audience.id,
    destinationId: destination.id,
    platformAudienceName: 'Buyers on LinkedIn',
    platformAudienceId: options.segmentId,
  });
  return { fake, destination, audience, sync };
}

const hashed = (emails: string[]) => emails.map((email) => `SHA256_EMAIL:${sha256(email.trim().toLowerCase())}`).sort();
const heldBy = (fake: FakeLinkedIn, segmentId: string) => [...(fake.segments.get(segmentId) ?? [])].sort();

/** The users batches among the fake's requests: each element's action and identifiers. */
function usersBatches(requests: RecordedRequest[]) {
  return requests
    .filter((request) => request.url.endsWith('/users'))
    .map((request) => {
      const { elements } = request.body as { elements: { action: string; userIds: { idType: string; idValue: string }[] }[] };
      return elements.map(({ action, userIds }) => `${action} ${userIds.map((id) => `${id.idType}:${id.idValue}`).join(' ')}`).sort();
    });
}

const sent = (action: 'ADD' | 'REMOVE', emails: string[]) => hashed(emails).map((id) => `${action} ${id}`);

test('MIRROR: the first run creates the segment and adds every hashed email; the next sends exactly the difference', async () => {
  const { fake, audience, sync } = await linkedInScenario(STARTING);
  expect(sync.fieldMapping).toEqual([{ sourceField: 'email', destinationField: 'SHA256_EMAIL' }]);

  const first = await runSync(suite.gateway, sync.id);
  expect(first.run, first.run.errorMessage ?? '').toMatchObject({ status: 'SUCCEEDED', membersAdded: 4, membersInvalid: 0 });
  // After a run that changed something, the gateway reads what LinkedIn reports about the segment.
  expect(fake.requests.map((request) => `${request.method} ${request.url}`)).toEqual([
    'POST /rest/dmpSegments',
    expect.stringMatching(/^POST \/rest\/dmpSegments\/\d+\/users$/),
    expect.stringMatching(/^GET \/rest\/dmpSegments\/\d+$/),
  ]);
  expect(fake.requests[0]?.body).toEqual({
    name: 'Buyers on LinkedIn',
    sourcePlatform: SOURCE_PLATFORM,
    account: `urn:li:sponsoredAccount:${AD_ACCOUNT}`,
    accessPolicy: 'PRIVATE',
    type: 'USER',
    destinations: [{ destination: 'LINKEDIN' }],
  });
  const { platformAudienceId } = await readSync(suite.gateway, sync.id);
  expect(fake.segments.has(platformAudienceId!)).toBe(true);
  expect(usersBatches(fake.requests)).toEqual([sent('ADD', STARTING)]);
  expect(heldBy(fake, platformAudienceId!)).toEqual(hashed(STARTING));

  await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
  const before = fake.requests.length;
  const second = await runSync(suite.gateway, sync.id);
  expect(second.run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 1, membersRemoved: 2, totalMembers: 3 });
  expect(usersBatches(fake.requests.slice(before))).toEqual([sent('ADD', JOINING), sent('REMOVE', LEAVING)]);
  const staying = STARTING.filter((email) => !LEAVING.includes(email));
  expect(heldBy(fake, platformAudienceId!)).toEqual(hashed([...staying, ...JOINING]));
});

test('throttling is retried, waiting as long as LinkedIn asks when it says, and the wait is recorded', async () => {
  const { fake, sync } = await linkedInScenario(STARTING, { segmentId: '19500001' });
  const users = (request: { url: string }) => request.url.endsWith('/users');
  fake.failNext('throttle-retry-after', 1, users);
  fake.failNext('throttle', 1, users);

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run, run.errorMessage ?? '').toMatchObject({ status: 'SUCCEEDED', membersAdded: 4 });
  expect(run.waitedSeconds).toBeGreaterThanOrEqual(1);
  expect(run.waitedSeconds).toBeLessThan(10);
  expect(usersBatches(fake.requests)).toHaveLength(3);
  expect(heldBy(fake, '19500001')).toEqual(hashed(STARTING));
});

test('a transient 5xx is retried and the batch applied once', async () => {
  const { fake, sync } = await linkedInScenario(STARTING, { segmentId: '19500002' });
  fake.failNext('server-error', 2, (request) => request.url.endsWith('/users'));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run, run.errorMessage ?? '').toMatchObject({ status: 'SUCCEEDED', membersAdded: 4, membersInvalid: 0 });
  expect(run.waitedSeconds).toBeGreaterThan(0);
  expect(heldBy(fake, '19500002')).toEqual(hashed(STARTING));
  expect((await runSync(suite.gateway, sync.id)).run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 0 });
  expect(usersBatches(fake.requests)).toHaveLength(3);
});

test('users LinkedIn refuses one by one are counted invalid; the run still succeeds', async () => {
  const { fake, sync } = await linkedInScenario(STARTING, { segmentId: '19500003' });
  fake.rejectedIdValues.add(sha256('ada@example.com'));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3, membersInvalid: 1 });
  expect(heldBy(fake, '19500003')).toEqual(hashed(STARTING.slice(1)));
});

test('invalid credentials fail the run with a message to reconnect, put the sync in ERROR, and are not retried', async () => {
  const { fake, sync } = await linkedInScenario(STARTING, { segmentId: '19500004', accessToken: 'AQV-expired-token' });

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run.status).toBe('FAILED');
  expect(run.errorMessage).toBe('LinkedIn rejected the access token: it has expired — reconnect the destination');
  expect(run.errorDetails).toEqual({ platform: 'LINKEDIN', status: 401, code: 'INVALID_ACCESS_TOKEN', retryable: false });
  expect(run.waitedSeconds).toBe(0);
  expect(fake.requests).toHaveLength(1);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ERROR', statusError: run.errorMessage });
});

test("an ad account at LinkedIn's 1,000-segment cap fails the run at once with what to do, without retrying the 429", async () => {
  const fake = await fakeLinkedIn();
  for (let i = 0; i < 1_000; i++) fake.segments.set(String(30_000_000 + i), new Set());
  const destination = await createLinkedInDestination(fake);
  const audience = await createAudienceWith(suite.gateway, STARTING);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, platformAudienceName: 'Buyers' });

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run.status).toBe('FAILED');
  expect(run.errorMessage).toMatch(/^LinkedIn allows at most 1,000 DMP segments per ad account .* delete unused segments/);
  expect(run.errorDetails).toEqual({ platform: 'LINKEDIN', status: 429, code: 'SEGMENT_LIMIT_EXCEEDED', retryable: false });
  expect(run.waitedSeconds).toBe(0);
  expect(fake.requests.map((request) => `${request.method} ${request.url}`)).toEqual(['POST /rest/dmpSegments']);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ERROR', statusError: run.errorMessage });
});

test('testDestination passes on working credentials without writing, and fails with what to fix', async () => {
  const fake = await fakeLinkedIn();
  const working = await createLinkedInDestination(fake);
  const expired = await createLinkedInDestination(fake, 'AQV-expired-token');
  const check = async (id: string) =>
    expectType(dataOf(await suite.gateway.execute(TestDestination, { id })).testDestination, 'TestDestinationSuccess');

  const ok = await check(working.id);
  expect(ok).toMatchObject({ ok: true, retryable: false });
  expect(ok.message).toContain(`ad account ${AD_ACCOUNT}`);
  expect(fake.requests.map((request) => request.method)).toEqual(['GET', 'GET']);
  expect(fake.segments.size).toBe(0);

  const failed = await check(expired.id);
  expect(failed).toMatchObject({ ok: false, retryable: false });
  expect(failed.message).toMatch(/access token.*reconnect/);
  expect(failed.message).not.toContain('AQV-expired-token');

  fake.failNext('server-error');
  expect(await check(working.id)).toMatchObject({ ok: false, retryable: true });
});

test('a field mapping asking for a phone is refused on create and update, saying LinkedIn does not match on phones', async () => {
  const fake = await fakeLinkedIn();
  const destination = await createLinkedInDestination(fake);
  const audience = await createAudienceWith(suite.gateway, STARTING);
  const withPhone = [
    { sourceField: 'email', destinationField: 'SHA256_EMAIL' },
    { sourceField: 'phone', destinationField: 'PHONE' },
  ];

  const created = dataOf(
    await suite.gateway.execute(CreateAudienceSync, {
      input: { name: 'With phones', audienceId: audience.id, destinationId: destination.id, fieldMapping: withPhone },
    }),
  );
  const refused = expectType(created.createAudienceSync, 'ValidationError');
  expect(refused.issues).toEqual([
    {
      field: 'input.fieldMapping.1.destinationField',
      message: 'LINKEDIN accepts SHA256_EMAIL, SHA512_EMAIL, GOOGLE_AID (LinkedIn does not match on phone numbers)',
    },
  ]);

  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
  const updated = dataOf(
    await suite.gateway.execute(UpdateAudienceSync, { id: sync.id, input: { fieldMapping: withPhone } }),
  );
  expect(expectType(updated.updateAudienceSync, 'ValidationError').message).toContain(
    'LinkedIn does not match on phone numbers',
  );
  expect(fake.requests).toEqual([]);
});
