import { createHmac } from 'node:crypto';
import OAuth from 'oauth-1.0a';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DestinationConnector, EncodedMember, FieldMapping } from '../../src/destinations/destination.js';
import { createXConnector, xConfigSchema } from '../../src/destinations/x/connector.js';
import { startFakeX, THROTTLE_RESET_SECONDS, type FakeX, type XCredentialsFixture } from '../fakes/x-server.js';
import { contact, rejection, sha256, uploadSession, useLoopbackFakes } from '../support/connectors.js';

useLoopbackFakes();

const CREDENTIALS: XCredentialsFixture = {
  consumerKey: 'xvz1evFS4wEEPTGEFPHBog',
  consumerSecret: 'kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw',
  accessToken: '370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb',
  accessTokenSecret: 'LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE',
};
const ACCOUNT_ID = '18ce54d4x5t';
const AUDIENCE_ID = 'abc2';
const SESSION = uploadSession();

const emailMember = (contactId: bigint, email: string): EncodedMember => ({ contactId, identifiers: { email: sha256(email) } });

let x: FakeX;
let connector: DestinationConnector;

function connectTo(baseUrl: string, credentials: XCredentialsFixture = CREDENTIALS): DestinationConnector {
  return createXConnector(xConfigSchema.parse({ accountId: ACCOUNT_ID, baseUrl }), credentials);
}

beforeEach(async () => {
  x = await startFakeX({ accountId: ACCOUNT_ID, credentials: CREDENTIALS });
  x.audiences.set(AUDIENCE_ID, new Set());
  connector = connectTo(x.baseUrl);
});

afterEach(() => x.close());

/** The `oauth_*` parameters of a recorded Authorization header. */
function oauthParams(authorization: string | undefined): Record<string, string> {
  expect(authorization).toMatch(/^OAuth /);
  return Object.fromEntries(
    [...authorization!.matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key!, decodeURIComponent(value!)]),
  );
}

/** Sends a request signed by the test itself, to check what the fake refuses. */
function signedFetch(
  url: string,
  init: { method: string; body?: string; timestamp?: number; authorization?: string },
): Promise<Response> {
  const oauth = new OAuth({
    consumer: { key: CREDENTIALS.consumerKey, secret: CREDENTIALS.consumerSecret },
    signature_method: 'HMAC-SHA1',
    hash_function: (base, key) => createHmac('sha1', key).update(base).digest('base64'),
  });
  if (init.timestamp !== undefined) oauth.getTimeStamp = () => init.timestamp!;
  const token = { key: CREDENTIALS.accessToken, secret: CREDENTIALS.accessTokenSecret };
  const authorization = init.authorization ?? oauth.toHeader(oauth.authorize({ url, method: init.method }, token)).Authorization;
  return fetch(url, {
    method: init.method,
    headers: { authorization, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.body,
  });
}

describe('xConfigSchema', () => {
  it('defaults the base URL to X Ads API', () => {
    expect(xConfigSchema.parse({ accountId: ACCOUNT_ID })).toEqual({ accountId: ACCOUNT_ID, baseUrl: 'https://ads-api.x.com' });
  });

  it.each([{}, { accountId: '18CE-54' }, { accountId: ACCOUNT_ID, baseUrl: 'ftp://ads-api.x.com' }])('rejects %o', (config) => {
    expect(xConfigSchema.safeParse(config).success).toBe(false);
  });
});

describe('encode', () => {
  it('normalizes each identifier by X rules and hashes all but partner_user_id', () => {
    const mapping: FieldMapping[] = [
      { sourceField: 'email', destinationField: 'email' },
      { sourceField: 'phone', destinationField: 'phone_number' },
      { sourceField: 'mobileAdId', destinationField: 'device_id' },
      { sourceField: 'externalId', destinationField: 'partner_user_id' },
    ];
    const encoded = connector.encode(
      contact({
        email: ' Alice@Example.COM ',
        phone: '+14155550100',
        mobileAdId: 'AB12CD34-0000-4000-8000-00000000ABCD',
        externalId: ' CRM-42 ',
      }),
      mapping,
    );

    expect(encoded).toEqual({
      email: sha256('alice@example.com'),
      phone_number: sha256('14155550100'),
      device_id: sha256('ab12cd34-0000-4000-8000-00000000abcd'),
      partner_user_id: 'CRM-42',
    });
  });

  it('takes handles without "@" in lowercase, and X user ids as integers', () => {
    const handle = connector.encode(contact({ externalId: ' @AdsAPI ' }), [{ sourceField: 'externalId', destinationField: 'handle' }]);
    const twitterId = connector.encode(contact({ externalId: ' 143567 ' }), [
      { sourceField: 'externalId', destinationField: 'twitter_id' },
    ]);

    expect(handle).toEqual({ handle: sha256('adsapi') });
    // X's documented example: @AdsAPI hashes to 49e0be2a…
    expect(handle?.['handle']).toBe('49e0be2aeccfb51a8dee4c945c8a70a9ac500cf6f5cb08112575f74db9b1470d');
    expect(twitterId).toEqual({ twitter_id: sha256('143567') });
  });

  it('strips everything but the digits from phones, leading zeros included', () => {
    expect(connector.encode(contact({ phone: '00447700900123' }), [{ sourceField: 'phone', destinationField: 'phone_number' }])).toEqual({
      phone_number: sha256('447700900123'),
    });
  });

  it('takes a lowercase SHA-256 value as already hashed', () => {
    const hashed = sha256('bob@example.com');
    expect(connector.encode(contact({ email: hashed }), [{ sourceField: 'email', destinationField: 'email' }])).toEqual({
      email: hashed,
    });
  });

  it('skips unusable values and returns null when nothing is left', () => {
    const mapping: FieldMapping[] = [
      { sourceField: 'email', destinationField: 'email' },
      { sourceField: 'externalId', destinationField: 'twitter_id' },
    ];
    expect(connector.encode(contact({ email: '', externalId: 'not-a-number' }), mapping)).toBeNull();
    expect(connector.encode(contact({ email: 'a@b.co', externalId: 'not-a-number' }), mapping)).toEqual({ email: sha256('a@b.co') });
  });

  it('refuses a mapping to a field X does not have', () => {
    expect(() => connector.encode(contact({ email: 'a@b.co' }), [{ sourceField: 'email', destinationField: 'EMAIL' }])).toThrow(
      /EMAIL/,
    );
  });
});

describe('ensureAudience', () => {
  it('returns an existing audience id without calling X', async () => {
    await expect(connector.ensureAudience({ platformAudienceId: AUDIENCE_ID, name: 'VIPs' })).resolves.toBe(AUDIENCE_ID);
    expect(x.requests).toHaveLength(0);
  });

  it('creates the audience with its name in the signed query string and no body', async () => {
    const id = await connector.ensureAudience({ platformAudienceId: null, name: 'VIP buyers (EU) & friends+1' });

    expect(x.audiences.get(id)).toEqual(new Set());
    expect(x.authRejections).toEqual([]);
    expect(x.requests).toHaveLength(1);
    expect(x.requests[0]).toMatchObject({
      method: 'POST',
      url: `/12/accounts/${ACCOUNT_ID}/custom_audiences?name=VIP%20buyers%20%28EU%29%20%26%20friends%2B1`,
      body: '',
      bodyBytes: 0,
    });
  });
});

describe('addMembers and removeMembers', () => {
  it('sends one Update operation per member, then Delete operations, leaving exactly the rest', async () => {
    const members: EncodedMember[] = [
      { contactId: 1n, identifiers: { email: sha256('a@example.com'), phone_number: sha256('14155550100') } },
      emailMember(2n, 'b@example.com'),
      { contactId: 3n, identifiers: { partner_user_id: 'crm-3' } },
    ];

    const added = await connector.addMembers(AUDIENCE_ID, members, SESSION);

    expect(added).toEqual({ received: 3, invalid: 0, invalidSamples: [] });
    expect(x.requests[0]).toMatchObject({
      method: 'POST',
      url: `/12/accounts/${ACCOUNT_ID}/custom_audiences/${AUDIENCE_ID}/users`,
      contentType: 'application/json',
      body: [
        {
          operation_type: 'Update',
          params: { users: [{ email: [sha256('a@example.com')], phone_number: [sha256('14155550100')] }] },
        },
        { operation_type: 'Update', params: { users: [{ email: [sha256('b@example.com')] }] } },
        { operation_type: 'Update', params: { users: [{ partner_user_id: ['crm-3'] }] } },
      ],
    });
    expect(x.audiences.get(AUDIENCE_ID)).toEqual(
      new Set([`email:${sha256('a@example.com')}`, `phone_number:${sha256('14155550100')}`, `email:${sha256('b@example.com')}`, 'partner_user_id:crm-3']),
    );

    const removed = await connector.removeMembers(AUDIENCE_ID, [members[0]!, members[2]!], SESSION);

    expect(removed).toEqual({ received: 2, invalid: 0, invalidSamples: [] });
    expect((x.requests[1]?.body as { operation_type: string }[]).map((op) => op.operation_type)).toEqual(['Delete', 'Delete']);
    expect(x.audiences.get(AUDIENCE_ID)).toEqual(new Set([`email:${sha256('b@example.com')}`]));
  });

  it('signs every request with HMAC-SHA1 and a fresh nonce, and keeps the secrets out of the request', async () => {
    await connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], SESSION);
    await connector.addMembers(AUDIENCE_ID, [emailMember(2n, 'b@example.com')], SESSION);

    const [first, second] = x.requests.map((request) => oauthParams(request.authorization));
    expect(first).toMatchObject({
      oauth_consumer_key: CREDENTIALS.consumerKey,
      oauth_token: CREDENTIALS.accessToken,
      oauth_signature_method: 'HMAC-SHA1',
      oauth_version: '1.0',
    });
    expect(first?.['oauth_nonce']).not.toBe(second?.['oauth_nonce']);
    expect(Math.abs(Number(first?.['oauth_timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(x.authRejections).toEqual([]);
    const sent = JSON.stringify(x.requests);
    expect(sent).not.toContain(CREDENTIALS.consumerSecret);
    expect(sent).not.toContain(CREDENTIALS.accessTokenSecret);
  });

  it('accepts 2,500 members in one request and refuses more without calling X', async () => {
    const members = Array.from({ length: 2_501 }, (_, i) => emailMember(BigInt(i), `user${i}@example.com`));

    expect(connector.maxBatchSize).toBe(2_500);
    await expect(connector.addMembers(AUDIENCE_ID, members, SESSION)).rejects.toThrow(/at most 2500/);
    expect(x.requests).toHaveLength(0);

    const outcome = await connector.addMembers(AUDIENCE_ID, members.slice(0, 2_500), SESSION);
    expect(outcome).toEqual({ received: 2_500, invalid: 0, invalidSamples: [] });
    expect(x.requests).toHaveLength(1);
    expect(x.audiences.get(AUDIENCE_ID)?.size).toBe(2_500);
  });

  it('splits a batch whose body would pass 5,000,000 bytes into requests under the limit', async () => {
    const members = Array.from({ length: 2_500 }, (_, i) => ({
      contactId: BigInt(i),
      identifiers: { email: sha256(`user${i}@example.com`), partner_user_id: `${i}-${'x'.repeat(2_000)}` },
    }));

    const outcome = await connector.addMembers(AUDIENCE_ID, members, SESSION);

    expect(outcome).toEqual({ received: 2_500, invalid: 0, invalidSamples: [] });
    expect(x.requests.length).toBeGreaterThan(1);
    expect(x.requests.every((request) => request.bodyBytes <= 5_000_000)).toBe(true);
    expect(x.requests.reduce((total, request) => total + (request.body as unknown[]).length, 0)).toBe(2_500);
    expect(x.audiences.get(AUDIENCE_ID)?.size).toBe(5_000);
  });

  it('sets aside the members X names in operation_errors as invalid and sends the others again', async () => {
    const rejectedHash = sha256('opted-out@example.com');
    x.rejectedValues.add(rejectedHash);
    const members: EncodedMember[] = [
      emailMember(1n, 'a@example.com'),
      { contactId: 2n, identifiers: { email: 'not-a-hash' } },
      emailMember(3n, 'opted-out@example.com'),
      emailMember(4n, 'b@example.com'),
    ];

    const outcome = await connector.addMembers(AUDIENCE_ID, members, SESSION);

    expect(outcome).toEqual({
      received: 4,
      invalid: 2,
      invalidSamples: ['email not-a-hash: Expected a lowercase SHA-256 hash for email', `email ${rejectedHash}: Invalid email`],
    });
    expect(x.requests.map((request) => (request.body as unknown[]).length)).toEqual([4, 2]);
    expect(x.audiences.get(AUDIENCE_ID)).toEqual(new Set([`email:${sha256('a@example.com')}`, `email:${sha256('b@example.com')}`]));
  });

  it('treats counts that disagree with what was sent as a failure to retry', async () => {
    x.failNext('count-mismatch');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], SESSION));

    expect(error.details).toMatchObject({ platform: 'X', retryable: true });
    expect(error.message).toMatch(/processed 0 of 1/);
  });
});

describe('readAudience', () => {
  it('reports no size and why the audience cannot be targeted yet, then its size once X shows it', async () => {
    await expect(connector.readAudience!(AUDIENCE_ID)).resolves.toEqual({
      sizeLowerBound: null,
      sizeUpperBound: null,
      matchRate: null,
      status: 'NOT_TARGETABLE',
      statusDetail: 'TOO_SMALL',
    });
    for (let i = 0; i < 120; i++) x.audiences.get(AUDIENCE_ID)!.add(`email:${i}`);
    await expect(connector.readAudience!(AUDIENCE_ID)).resolves.toMatchObject({
      sizeLowerBound: 120,
      sizeUpperBound: 120,
      status: 'TARGETABLE',
      statusDetail: null,
    });
  });
});

describe('errors', () => {
  const CREDENTIALS_MESSAGE = 'X rejected the credentials — reconnect the destination';

  it('reports a signature X cannot verify as not retryable, without any secret', async () => {
    const wrong = { ...CREDENTIALS, consumerSecret: 'not-the-consumer-secret-at-all' };
    const error = await rejection(connectTo(x.baseUrl, wrong).addMembers(AUDIENCE_ID, [emailMember(1n, 'a@b.co')], SESSION));

    expect(error.message).toBe(CREDENTIALS_MESSAGE);
    expect(error.details).toEqual({ platform: 'X', status: 401, code: 'UNAUTHORIZED_ACCESS', retryable: false });
    expect(x.authRejections).toEqual(['signature']);
    expect(x.audiences.get(AUDIENCE_ID)).toEqual(new Set());
    const shown = JSON.stringify({ message: error.message, details: error.details });
    for (const secret of Object.values(wrong)) expect(shown).not.toContain(secret);
  });

  it('reports an access token X does not know, or has revoked, the same way', async () => {
    const unknown = connectTo(x.baseUrl, { ...CREDENTIALS, accessToken: '1-revoked', accessTokenSecret: 'other' });
    expect((await rejection(unknown.ensureAudience({ platformAudienceId: null, name: 'VIPs' }))).message).toBe(CREDENTIALS_MESSAGE);
    expect(x.authRejections).toEqual(['unknown-token']);

    x.failNext('revoked-token');
    expect((await rejection(connector.checkAccess())).message).toBe(CREDENTIALS_MESSAGE);
    expect(x.audiences.size).toBe(1);
  });

  it('reports missing permissions as not retryable', async () => {
    x.failNext('forbidden');
    const error = await rejection(connector.ensureAudience({ platformAudienceId: null, name: 'VIPs' }));

    expect(error.message).toMatch(/permission/);
    expect(error.details).toMatchObject({ status: 403, code: 'UNAUTHORIZED_CLIENT_APPLICATION', retryable: false });
  });

  it('reports throttling as retryable, waiting until x-rate-limit-reset', async () => {
    x.failNext('throttle');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], SESSION));

    expect(error.details).toMatchObject({ status: 429, code: 'TOO_MANY_REQUESTS', retryable: true });
    expect(error.details.retryAfterMs).toBeGreaterThan(THROTTLE_RESET_SECONDS * 1000 - 100);
    expect(error.details.retryAfterMs).toBeLessThanOrEqual((THROTTLE_RESET_SECONDS + 1) * 1000);
    expect(error.message).toMatch(/rate-limiting/);
  });

  it('reports server errors as retryable, and the retried batch then succeeds', async () => {
    x.failNext('server-error');
    const members = [emailMember(1n, 'a@example.com')];
    const error = await rejection(connector.addMembers(AUDIENCE_ID, members, SESSION));

    expect(error.details).toMatchObject({ status: 500, code: 'INTERNAL_ERROR', retryable: true });
    await expect(connector.addMembers(AUDIENCE_ID, members, SESSION)).resolves.toMatchObject({ received: 1 });
    expect(x.audiences.get(AUDIENCE_ID)).toEqual(new Set([`email:${sha256('a@example.com')}`]));
  });

  it('reports an unreachable X as retryable', async () => {
    const gone = await startFakeX({ accountId: ACCOUNT_ID, credentials: CREDENTIALS });
    await gone.close();
    const error = await rejection(connectTo(gone.baseUrl).addMembers(AUDIENCE_ID, [emailMember(1n, 'a@b.co')], SESSION));

    expect(error.details.retryable).toBe(true);
    expect(error.message).toMatch(/Could not reach X/);
  });

  it('reports an audience that does not exist as not retryable', async () => {
    const error = await rejection(connector.addMembers('zzz9', [emailMember(1n, 'a@example.com')], SESSION));

    expect(error.message).toMatch(/audience zzz9 does not exist/);
    expect(error.details).toMatchObject({ status: 404, code: 'NOT_FOUND', retryable: false });
  });
});

describe('checkAccess', () => {
  it('reads the ads account with one signed GET', async () => {
    await expect(connector.checkAccess()).resolves.toBe(
      `X ads account ${ACCOUNT_ID} (Fake X ads account) is reachable and the credentials work`,
    );
    expect(x.requests.map((request) => `${request.method} ${request.url}`)).toEqual([`GET /12/accounts/${ACCOUNT_ID}`]);
    expect(x.authRejections).toEqual([]);
  });

  it('fails for a deleted account, and for an account the user cannot reach', async () => {
    x.account.deleted = true;
    expect((await rejection(connector.checkAccess())).message).toMatch(/is deleted/);

    const other = createXConnector(xConfigSchema.parse({ accountId: 'gq1a2b', baseUrl: x.baseUrl }), CREDENTIALS);
    const error = await rejection(other.checkAccess());
    expect(error.message).toMatch(/no ads account gq1a2b/);
    expect(error.details).toEqual({ platform: 'X', status: 403, code: 'ACCOUNT_NOT_FOUND', retryable: false });
  });

  it('reads 403 ACCOUNT_NOT_FOUND on an audience call as the account missing, not as a missing permission', async () => {
    const other = createXConnector(xConfigSchema.parse({ accountId: 'gq1a2b', baseUrl: x.baseUrl }), CREDENTIALS);
    const error = await rejection(other.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], SESSION));
    expect(error.message).toBe('X has no ads account gq1a2b that the connected user can access — check the accountId');
    expect(error.details).toMatchObject({ status: 403, code: 'ACCOUNT_NOT_FOUND', retryable: false });
  });
});

describe('the fake X is strict', () => {
  const usersUrl = () => `${x.baseUrl}/12/accounts/${ACCOUNT_ID}/custom_audiences/${AUDIENCE_ID}/users`;
  const operation = { operation_type: 'Update', params: { users: [{ email: [sha256('a@example.com')] }] } };

  it('accepts a request the test signs itself', async () => {
    const response = await signedFetch(usersUrl(), { method: 'POST', body: JSON.stringify([operation]) });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ data: { success_count: 1, total_count: 1 } });
  });

  it('refuses a stale timestamp and a replayed nonce', async () => {
    const stale = await signedFetch(usersUrl(), {
      method: 'POST',
      body: JSON.stringify([operation]),
      timestamp: Math.floor(Date.now() / 1000) - 3_600,
    });
    expect(stale.status).toBe(401);

    await connector.checkAccess();
    const replayed = await signedFetch(`${x.baseUrl}/12/accounts/${ACCOUNT_ID}`, {
      method: 'GET',
      authorization: x.requests.at(-1)!.authorization,
    });
    expect(replayed.status).toBe(401);
    expect(await replayed.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED_ACCESS' }] });
    expect(x.authRejections).toEqual(['timestamp', 'nonce']);
  });

  it('refuses more than 2,500 operations, a body over 5,000,000 bytes, and unknown identifier types', async () => {
    const tooMany = await signedFetch(usersUrl(), { method: 'POST', body: JSON.stringify(Array(2_501).fill(operation)) });
    expect(tooMany.status).toBe(400);

    const big = { operation_type: 'Update', params: { users: [{ partner_user_id: ['p'.repeat(5_000_000)] }] } };
    expect((await signedFetch(usersUrl(), { method: 'POST', body: JSON.stringify([big]) })).status).toBe(413);

    const unknownType = { operation_type: 'Update', params: { users: [{ mail: [sha256('a@example.com')] }] } };
    const refused = await signedFetch(usersUrl(), { method: 'POST', body: JSON.stringify([operation, unknownType]) });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({
      operation_errors: [[], [{ code: 'INVALID_PARAMETER', message: 'Unknown user identifier type mail' }]],
    });
    expect(x.audiences.get(AUDIENCE_ID)).toEqual(new Set());
  });
});
