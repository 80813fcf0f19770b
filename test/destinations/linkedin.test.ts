import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DestinationConnector, EncodedMember, FieldMapping } from '../../src/destinations/destination.js';
import { createLinkedInConnector, linkedInConfigSchema } from '../../src/destinations/linkedin/connector.js';
import { startFakeLinkedIn, type FakeLinkedIn, type FakeLinkedInOptions } from '../fakes/linkedin-server.js';
import { contact, rejection, sha256, uploadSession, useLoopbackFakes } from '../support/connectors.js';

useLoopbackFakes();

const TOKEN = 'AQV-secret-linkedin-token';
const AD_ACCOUNT = '508000123';
const SEGMENT_ID = '18000777';
const GAID = '38400000-8cf0-11bd-b23e-10b96e40000d';

const sha512 = (value: string) => createHash('sha512').update(value, 'utf8').digest('hex');

const ALL_FIELDS_MAPPING: FieldMapping[] = [
  { sourceField: 'email', destinationField: 'SHA256_EMAIL' },
  { sourceField: 'email', destinationField: 'SHA512_EMAIL' },
  { sourceField: 'mobileAdId', destinationField: 'GOOGLE_AID' },
];

const emailMember = (contactId: bigint, email: string): EncodedMember => ({
  contactId,
  identifiers: { SHA256_EMAIL: sha256(email) },
});

const SESSION = uploadSession();

let linkedIn: FakeLinkedIn;
let connector: DestinationConnector;

function connectTo(baseUrl: string, overrides: Record<string, unknown> = {}, accessToken = TOKEN) {
  const config = linkedInConfigSchema.parse({ adAccountId: AD_ACCOUNT, baseUrl, sourcePlatform: 'ASG_GATEWAY', ...overrides });
  return createLinkedInConnector(config, { accessToken });
}

async function restartFake(options: Partial<FakeLinkedInOptions>) {
  await linkedIn.close();
  linkedIn = await startFakeLinkedIn({ accessToken: TOKEN, adAccountId: AD_ACCOUNT, ...options });
}

beforeEach(async () => {
  linkedIn = await startFakeLinkedIn({ accessToken: TOKEN, adAccountId: AD_ACCOUNT });
  linkedIn.segments.set(SEGMENT_ID, new Set());
  connector = connectTo(linkedIn.baseUrl);
});

afterEach(() => linkedIn.close());

const held = (segmentId = SEGMENT_ID) => linkedIn.segments.get(segmentId);

describe('linkedInConfigSchema', () => {
  it('applies the default version, base URL and segment delay', () => {
    expect(linkedInConfigSchema.parse({ adAccountId: '123' })).toEqual({
      adAccountId: '123',
      apiVersion: '202603',
      baseUrl: 'https://api.linkedin.com',
      segmentReadyDelayMs: 5_000,
    });
  });

  it.each([
    { adAccountId: 'urn:li:sponsoredAccount:123' },
    { adAccountId: '123', apiVersion: '2025-10' },
    { adAccountId: '123', apiVersion: '202513' },
    { adAccountId: '123', baseUrl: 'ftp://api.linkedin.com' },
    { adAccountId: '123', sourcePlatform: 'my partner' },
    { adAccountId: '123', segmentReadyDelayMs: -1 },
  ])('rejects %o', (config) => {
    expect(linkedInConfigSchema.safeParse(config).success).toBe(false);
  });
});

describe('encode', () => {
  it('trims and lowercases emails, then hashes them; Google ad ids go as lowercase text', () => {
    const encoded = connector.encode(
      contact({ email: ' Alice@Example.COM ', mobileAdId: '38400000-8CF0-11BD-B23E-10B96E40000D' }),
      ALL_FIELDS_MAPPING,
    );
    expect(encoded).toEqual({
      SHA256_EMAIL: sha256('alice@example.com'),
      SHA512_EMAIL: sha512('alice@example.com'),
      GOOGLE_AID: GAID,
    });
  });

  it('passes a stored SHA-256 email through, and leaves out SHA512_EMAIL, which cannot be derived from it', () => {
    const hashed = sha256('bob@example.com');
    expect(connector.encode(contact({ email: hashed }), ALL_FIELDS_MAPPING)).toEqual({ SHA256_EMAIL: hashed });
  });

  it('skips values that are not emails or ad ids and returns null when nothing is left', () => {
    const phoneAsEmail: FieldMapping[] = [{ sourceField: 'phone', destinationField: 'SHA256_EMAIL' }];
    expect(connector.encode(contact({ phone: '+14155550100' }), phoneAsEmail)).toBeNull();
    expect(connector.encode(contact({ email: '', mobileAdId: 'not-an-ad-id' }), ALL_FIELDS_MAPPING)).toBeNull();
  });

  it('refuses a mapping to an identifier LinkedIn does not have', () => {
    expect(() =>
      connector.encode(contact({ phone: '+14155550100' }), [{ sourceField: 'phone', destinationField: 'PHONE' }]),
    ).toThrow(/PHONE/);
  });
});

describe('addMembers and removeMembers', () => {
  it('sends one element per member with all its identifiers, as a Rest.li BATCH_CREATE with the version headers', async () => {
    const members: EncodedMember[] = [
      { contactId: 1n, identifiers: { SHA256_EMAIL: sha256('a@example.com'), GOOGLE_AID: GAID } },
      emailMember(2n, 'b@example.com'),
    ];

    expect(await connector.addMembers(SEGMENT_ID, members, SESSION)).toEqual({ received: 2, invalid: 0, invalidSamples: [] });

    expect(linkedIn.requests).toEqual([
      {
        method: 'POST',
        url: `/rest/dmpSegments/${SEGMENT_ID}/users`,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          linkedInVersion: '202603',
          restliProtocolVersion: '2.0.0',
          restliMethod: 'BATCH_CREATE',
          contentType: 'application/json',
        },
        body: {
          elements: [
            {
              action: 'ADD',
              userIds: [
                { idType: 'SHA256_EMAIL', idValue: sha256('a@example.com') },
                { idType: 'GOOGLE_AID', idValue: GAID },
              ],
            },
            { action: 'ADD', userIds: [{ idType: 'SHA256_EMAIL', idValue: sha256('b@example.com') }] },
          ],
        },
      },
    ]);
    expect(held()).toEqual(
      new Set([`SHA256_EMAIL:${sha256('a@example.com')}`, `GOOGLE_AID:${GAID}`, `SHA256_EMAIL:${sha256('b@example.com')}`]),
    );
  });

  it('removes with the REMOVE action, and re-adding a member is harmless', async () => {
    const [a, b] = [emailMember(1n, 'a@example.com'), emailMember(2n, 'b@example.com')];
    await connector.addMembers(SEGMENT_ID, [a, b], SESSION);
    await connector.addMembers(SEGMENT_ID, [a], SESSION);

    expect(await connector.removeMembers(SEGMENT_ID, [a], SESSION)).toEqual({ received: 1, invalid: 0, invalidSamples: [] });

    expect(linkedIn.requests.at(-1)?.body).toEqual({
      elements: [{ action: 'REMOVE', userIds: [{ idType: 'SHA256_EMAIL', idValue: sha256('a@example.com') }] }],
    });
    expect(held()).toEqual(new Set([`SHA256_EMAIL:${sha256('b@example.com')}`]));
  });

  it('accepts 5,000 members and refuses more without calling LinkedIn', async () => {
    const members = Array.from({ length: 5_001 }, (_, i) => emailMember(BigInt(i), `user${i}@example.com`));

    expect(connector.maxBatchSize).toBe(5_000);
    await expect(connector.addMembers(SEGMENT_ID, members, SESSION)).rejects.toThrow(/at most 5000/);
    expect(linkedIn.requests).toHaveLength(0);

    expect((await connector.addMembers(SEGMENT_ID, members.slice(0, 5_000), SESSION)).received).toBe(5_000);
    expect(held()?.size).toBe(5_000);
  });

  it('counts the users LinkedIn refuses one by one as invalid, and keeps the rest', async () => {
    const refused = sha256('refused@example.com');
    linkedIn.rejectedIdValues.add(refused);
    const outcome = await connector.addMembers(
      SEGMENT_ID,
      [
        emailMember(1n, 'a@example.com'),
        { contactId: 2n, identifiers: { SHA256_EMAIL: refused } },
        { contactId: 3n, identifiers: { SHA256_EMAIL: 'not-a-hash' } },
      ],
      SESSION,
    );

    expect(outcome).toEqual({
      received: 3,
      invalid: 2,
      invalidSamples: [
        `SHA256_EMAIL:${refused}: The SHA256_EMAIL value could not be processed`,
        'SHA256_EMAIL:not-a-hash: Invalid SHA256_EMAIL value',
      ],
    });
    expect(held()).toEqual(new Set([`SHA256_EMAIL:${sha256('a@example.com')}`]));
  });
});

describe('ensureAudience', () => {
  it('returns an existing segment id without calling LinkedIn', async () => {
    await expect(connector.ensureAudience({ platformAudienceId: SEGMENT_ID, name: 'VIPs' })).resolves.toBe(SEGMENT_ID);
    expect(linkedIn.requests).toHaveLength(0);
  });

  it('creates a user DMP segment on the ad account and reads its id from x-restli-id', async () => {
    const id = await connector.ensureAudience({ platformAudienceId: null, name: 'VIPs' });

    expect(held(id)).toEqual(new Set());
    expect(linkedIn.requests).toMatchObject([
      {
        method: 'POST',
        url: '/rest/dmpSegments',
        headers: { authorization: `Bearer ${TOKEN}`, linkedInVersion: '202603', restliProtocolVersion: '2.0.0' },
        body: {
          name: 'VIPs',
          sourcePlatform: 'ASG_GATEWAY',
          account: `urn:li:sponsoredAccount:${AD_ACCOUNT}`,
          accessPolicy: 'PRIVATE',
          type: 'USER',
          destinations: [{ destination: 'LINKEDIN' }],
        },
      },
    ]);
  });

  it('reads the id from x-linkedin-id when LinkedIn answers with that header', async () => {
    await restartFake({ idHeader: 'x-linkedin-id' });
    const id = await connectTo(linkedIn.baseUrl).ensureAudience({ platformAudienceId: null, name: 'VIPs' });
    expect(linkedIn.segments.has(id)).toBe(true);
  });

  it('on an ad account at LinkedIn\'s 1,000-segment cap, says what to do instead of retrying a 429', async () => {
    for (let i = linkedIn.segments.size; i < 1_000; i++) linkedIn.segments.set(String(30_000_000 + i), new Set());
    const error = await rejection(connector.ensureAudience({ platformAudienceId: null, name: 'VIPs' }));

    expect(error.message).toBe(
      'LinkedIn allows at most 1,000 DMP segments per ad account and ad account 508000123 has reached it: ' +
        'delete unused segments in Campaign Manager, or give the sync the id of an existing segment',
    );
    expect(error.details).toEqual({ platform: 'LINKEDIN', status: 429, code: 'SEGMENT_LIMIT_EXCEEDED', retryable: false });
    expect(linkedIn.segments.size).toBe(1_000);
  });

  it('without a sourcePlatform, says what to configure and calls nothing', async () => {
    const error = await rejection(
      connectTo(linkedIn.baseUrl, { sourcePlatform: undefined }).ensureAudience({ platformAudienceId: null, name: 'VIPs' }),
    );
    expect(error.message).toMatch(/set sourcePlatform/);
    expect(error.details.retryable).toBe(false);
    expect(linkedIn.requests).toHaveLength(0);
  });

  it('waits the configured delay after creating a segment before sending it users', async () => {
    await restartFake({ segmentReadyAfterMs: 150 });
    const patient = connectTo(linkedIn.baseUrl, { segmentReadyDelayMs: 200 });
    const started = Date.now();
    const id = await patient.ensureAudience({ platformAudienceId: null, name: 'VIPs' });

    await patient.addMembers(id, [emailMember(1n, 'a@example.com')], SESSION);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(linkedIn.requests.map((request) => request.url)).toEqual(['/rest/dmpSegments', `/rest/dmpSegments/${id}/users`]);
    expect(held(id)?.size).toBe(1);
  });

  it('treats a new segment LinkedIn has not set up yet as a passing problem', async () => {
    await restartFake({ segmentReadyAfterMs: 5_000 });
    const hasty = connectTo(linkedIn.baseUrl, { segmentReadyDelayMs: 50 });
    const id = await hasty.ensureAudience({ platformAudienceId: null, name: 'VIPs' });

    const error = await rejection(hasty.addMembers(id, [emailMember(1n, 'a@example.com')], SESSION));
    expect(error.message).toMatch(/still setting up the new segment/);
    expect(error.details).toMatchObject({ status: 404, retryable: true, retryAfterMs: 50 });
  });
});

describe('checkAccess', () => {
  it('reads the ad account and its segments, changing nothing', async () => {
    const message = await connector.checkAccess();

    expect(message).toBe(
      `LinkedIn ad account ${AD_ACCOUNT} (Fake LinkedIn ad account) is ACTIVE and the access token can manage its matched audiences`,
    );
    expect(linkedIn.requests.map((request) => `${request.method} ${request.url}`)).toEqual([
      `GET /rest/adAccounts/${AD_ACCOUNT}`,
      `GET /rest/dmpSegments?q=account&account=urn%3Ali%3AsponsoredAccount%3A${AD_ACCOUNT}&count=1`,
    ]);
    expect(linkedIn.segments.size).toBe(1);
  });

  it('fails for a cancelled ad account', async () => {
    linkedIn.adAccount.status = 'CANCELED';
    const error = await rejection(connector.checkAccess());
    expect(error.message).toMatch(/is CANCELED: its matched audiences cannot be updated/);
    expect(error.details.retryable).toBe(false);
  });

  it('fails for an ad account the member cannot see', async () => {
    const error = await rejection(connectTo(linkedIn.baseUrl, { adAccountId: '999' }).checkAccess());
    expect(error.message).toMatch(/no ad account 999/);
    expect(error.details).toMatchObject({ status: 404, retryable: false });
  });

  it('fails when the token may read the account but not its audiences', async () => {
    linkedIn.failNext('permission-denied', 1, (request) => request.url.startsWith('/rest/dmpSegments'));
    const error = await rejection(connector.checkAccess());
    expect(error.message).toMatch(/rw_dmp_segments/);
  });
});

describe('readAudience', () => {
  it("reports its LINKEDIN destination's audienceSize and status, and matchedCount / inputCount as the match rate", async () => {
    for (let i = 0; i < 400; i++) held()!.add(`SHA256_EMAIL:${i}`);
    for (let i = 0; i < 80; i++) linkedIn.unmatchedIdValues.add(String(i));
    await expect(connector.readAudience!(SEGMENT_ID)).resolves.toEqual({
      sizeLowerBound: 320,
      sizeUpperBound: 320,
      matchRate: 0.8,
      status: 'READY',
      statusDetail: null,
    });
  });

  it('reports a segment still BUILDING without counts or match rate', async () => {
    await expect(connector.readAudience!(SEGMENT_ID)).resolves.toEqual({
      sizeLowerBound: null,
      sizeUpperBound: null,
      matchRate: null,
      status: 'BUILDING',
      statusDetail: null,
    });
  });
});

describe('errors', () => {
  const TOKEN_MESSAGE = 'LinkedIn rejected the access token: it has expired — reconnect the destination';
  const addOne = (target = connector) => target.addMembers(SEGMENT_ID, [emailMember(1n, 'a@example.com')], SESSION);

  it('reports an expired token as not retryable, without the token', async () => {
    linkedIn.failNext('token-expired');
    const error = await rejection(addOne());

    expect(error.message).toBe(TOKEN_MESSAGE);
    expect(error.details).toEqual({ platform: 'LINKEDIN', status: 401, code: 'EXPIRED_ACCESS_TOKEN', retryable: false });
    expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(TOKEN);
  });

  it('reports a token LinkedIn does not recognize the same way', async () => {
    const error = await rejection(addOne(connectTo(linkedIn.baseUrl, {}, 'AQV-revoked')));
    expect(error.message).toBe(TOKEN_MESSAGE);
    expect(error.details).toMatchObject({ status: 401, retryable: false });
    expect(held()).toEqual(new Set());
  });

  it('reports missing permissions as not retryable', async () => {
    linkedIn.failNext('permission-denied');
    const error = await rejection(addOne());
    expect(error.message).toMatch(/cannot manage matched audiences on ad account 508000123/);
    expect(error.details).toMatchObject({ status: 403, code: 'ACCESS_DENIED', retryable: false });
  });

  it('reports a 429 without Retry-After as retryable, leaving the pause to the backoff', async () => {
    linkedIn.failNext('throttle');
    const error = await rejection(addOne());
    expect(error.message).toBe("LinkedIn is rate-limiting this member's requests; the sync will retry");
    expect(error.details).toEqual({ platform: 'LINKEDIN', status: 429, code: 'TOO_MANY_REQUESTS', retryable: true });
  });

  it('honours Retry-After on a 429', async () => {
    linkedIn.failNext('throttle-retry-after');
    const error = await rejection(addOne());
    expect(error.details).toMatchObject({ status: 429, retryable: true, retryAfterMs: 1_000 });
    expect(error.message).toContain('LinkedIn asked for 1 s');
  });

  it('reports server errors as retryable, and the retried batch then succeeds', async () => {
    linkedIn.failNext('server-error');
    const error = await rejection(addOne());
    expect(error.details).toMatchObject({ status: 500, retryable: true });
    await expect(addOne()).resolves.toMatchObject({ received: 1, invalid: 0 });
  });

  it('reports an unreachable LinkedIn as retryable', async () => {
    const gone = await startFakeLinkedIn({ accessToken: TOKEN });
    await gone.close();
    const error = await rejection(addOne(connectTo(gone.baseUrl)));
    expect(error.details.retryable).toBe(true);
    expect(error.message).toMatch(/Could not reach LinkedIn/);
  });

  it('reports a segment that does not exist as not retryable', async () => {
    const error = await rejection(connector.addMembers('4242', [emailMember(1n, 'a@example.com')], SESSION));
    expect(error.message).toMatch(/segment 4242 does not exist/);
    expect(error.details).toMatchObject({ status: 404, retryable: false });
  });

  it('reports a sunset API version with what to change', async () => {
    const error = await rejection(addOne(connectTo(linkedIn.baseUrl, { apiVersion: '202511' })));
    expect(error.message).toBe(
      "LinkedIn no longer serves API version 202511: set apiVersion in the destination's config to 202603",
    );
    expect(error.details).toMatchObject({ status: 426, retryable: false });
  });

  it('passes on what LinkedIn says about a request it rejects', async () => {
    const error = await rejection(
      connector.addMembers(SEGMENT_ID, [{ contactId: 1n, identifiers: { PHONE: sha256('14155550100') } }], SESSION),
    );
    expect(error.message).toMatch(/^LinkedIn rejected the request: .*known idType/);
    expect(error.details).toMatchObject({ status: 400, retryable: false });
  });
});
