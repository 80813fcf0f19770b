import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DestinationError,
  type DestinationConnector,
  type EncodedMember,
  type FieldMapping,
} from '../../src/destinations/destination.js';
import { createGoogleConnector } from '../../src/destinations/google/connector.js';
import {
  googleConfigSchema,
  googleCredentialsSchema,
  type GoogleCredentials,
} from '../../src/destinations/google/settings.js';
import {
  ADS_SCOPE,
  DATA_MANAGER_SCOPE,
  startFakeGoogle,
  THROTTLE_RETRY_DELAY_SECONDS,
  type FakeGoogle,
} from '../fakes/google-server.js';
import { contact, rejection, sha256, uploadSession, useLoopbackFakes } from '../support/connectors.js';

useLoopbackFakes();

const CLIENT = { clientId: 'client-123.apps.googleusercontent.com', clientSecret: 'GOCSPX-client-secret' };
const REFRESH_TOKEN = '1//refresh-token-secret';
const STATIC_TOKEN = 'ya29.static-access-token';
const CREDENTIALS: GoogleCredentials = { ...CLIENT, refreshToken: REFRESH_TOKEN };
const DEVELOPER_TOKEN = 'dev-token-secret-ABCD';
const ADS_CREDENTIALS: GoogleCredentials = { ...CREDENTIALS, developerToken: DEVELOPER_TOKEN };
const ACCOUNT_ID = '1234567890';
const LIST_ID = '9000000001';
const USER_LIST = `customers/${ACCOUNT_ID}/userLists/${LIST_ID}`;
const CONSENT = { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_DENIED' } as const;

const ALL_CONTACT_FIELDS: FieldMapping[] = [
  { sourceField: 'email', destinationField: 'EMAIL' },
  { sourceField: 'phone', destinationField: 'PHONE' },
  { sourceField: 'firstName', destinationField: 'FIRST_NAME' },
  { sourceField: 'lastName', destinationField: 'LAST_NAME' },
  { sourceField: 'country', destinationField: 'COUNTRY' },
  { sourceField: 'zip', destinationField: 'ZIP' },
];

const emailMember = (contactId: bigint, email: string): EncodedMember => ({ contactId, identifiers: { EMAIL: sha256(email) } });
const SESSION = uploadSession();

let google: FakeGoogle;
let connector: DestinationConnector;

function connectTo(
  fake: FakeGoogle,
  options: { credentials?: GoogleCredentials; config?: Record<string, unknown> } = {},
): DestinationConnector {
  const config = googleConfigSchema.parse({
    operatingAccount: { accountId: '123-456-7890' },
    consent: CONSENT,
    customerMatchTermsAccepted: true,
    baseUrl: fake.baseUrl,
    tokenUrl: fake.tokenUrl,
    ...options.config,
  });
  return createGoogleConnector(config, options.credentials ?? CREDENTIALS);
}

/** A connector with `api: ADS_API`: the Google Ads API's offline user data jobs. */
function connectAds(options: { credentials?: GoogleCredentials; config?: Record<string, unknown>; fake?: FakeGoogle } = {}) {
  return connectTo(options.fake ?? google, {
    credentials: options.credentials ?? ADS_CREDENTIALS,
    config: { api: 'ADS_API', operatingAccount: { accountId: ACCOUNT_ID }, ...options.config },
  });
}

const tokenRequests = () => google.requests.filter((request) => request.url === '/token');
const apiRequests = () => google.requests.filter((request) => request.url !== '/token');
const adsRequestLines = () => apiRequests().map((request) => `${request.method} ${request.url}`);
const heldInList = () => google.userLists.get(LIST_ID)!.members;

beforeEach(async () => {
  google = await startFakeGoogle({
    ...CLIENT,
    refreshToken: REFRESH_TOKEN,
    staticAccessToken: STATIC_TOKEN,
    accountId: ACCOUNT_ID,
    developerToken: DEVELOPER_TOKEN,
    scope: `${DATA_MANAGER_SCOPE} ${ADS_SCOPE}`,
  });
  google.userLists.set(LIST_ID, { displayName: 'Buyers', uploadKeyType: 'CONTACT_ID', members: new Set() });
  connector = connectTo(google);
});

afterEach(() => google.close());

function expectNoSecrets(error: DestinationError) {
  const shown = JSON.stringify({ message: error.message, details: error.details });
  for (const secret of [REFRESH_TOKEN, CLIENT.clientSecret, STATIC_TOKEN]) expect(shown).not.toContain(secret);
}

describe('googleConfigSchema', () => {
  const valid = { operatingAccount: { accountId: '123-456-7890' }, consent: CONSENT, customerMatchTermsAccepted: true };

  it('applies the defaults and keeps only the digits of the account id', () => {
    expect(googleConfigSchema.parse(valid)).toEqual({
      api: 'DATA_MANAGER',
      operatingAccount: { accountType: 'GOOGLE_ADS', accountId: '1234567890' },
      consent: CONSENT,
      customerMatchTermsAccepted: true,
      adsApiVersion: 'v26',
      tokenUrl: 'https://oauth2.googleapis.com/token',
    });
  });

  it.each([
    [{ customerMatchTermsAccepted: false }, 'customerMatchTermsAccepted'],
    [{ customerMatchTermsAccepted: undefined }, 'customerMatchTermsAccepted'],
    [{ consent: { adUserData: 'GRANTED', adPersonalization: 'CONSENT_GRANTED' } }, 'consent.adUserData'],
    [{ consent: undefined }, 'consent'],
    [{ operatingAccount: { accountId: 'act_12' } }, 'operatingAccount.accountId'],
    [{ operatingAccount: { accountType: 'YOUTUBE', accountId: '1' } }, 'operatingAccount.accountType'],
    [{ tokenUrl: 'ftp://oauth2.googleapis.com/token' }, 'tokenUrl'],
  ])('refuses %o on %s', (override, path) => {
    const result = googleConfigSchema.safeParse({ ...valid, ...override });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toContain(path);
  });

  it('tells the user to accept the Customer Match terms', () => {
    const result = googleConfigSchema.safeParse({ ...valid, customerMatchTermsAccepted: undefined });
    expect(result.error?.issues[0]?.message).toMatch(/accept the Customer Match terms.*customerMatchTermsAccepted to true/);
  });
});

describe('googleCredentialsSchema', () => {
  it('takes an access token, or an OAuth client with a refresh token', () => {
    expect(googleCredentialsSchema.parse({ accessToken: STATIC_TOKEN })).toEqual({ accessToken: STATIC_TOKEN });
    expect(googleCredentialsSchema.parse(CREDENTIALS)).toEqual(CREDENTIALS);
  });

  it('refuses a refresh token without its client, saying what it needs', () => {
    const result = googleCredentialsSchema.safeParse({ refreshToken: REFRESH_TOKEN });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/clientId, clientSecret, refreshToken/);
  });
});

describe('encode', () => {
  it('normalizes contact details by Google rules, hashing all but COUNTRY and ZIP', () => {
    const encoded = connector.encode(
      contact({
        email: ' Alice.Smith@Example.COM ',
        phone: '+1 (415) 555-0100',
        firstName: '  Zoë ',
        lastName: "O'Brien",
        country: 'gb',
        zip: ' SW1A 1AA ',
      }),
      ALL_CONTACT_FIELDS,
    );

    expect(encoded).toEqual({
      EMAIL: sha256('alice.smith@example.com'),
      PHONE: sha256('+14155550100'),
      FIRST_NAME: sha256('zoë'),
      LAST_NAME: sha256('obrien'),
      COUNTRY: 'GB',
      ZIP: 'SW1A 1AA',
    });
  });

  // Data Manager AddressInfo: names lowercase, no punctuation, no surrounding whitespace.
  it.each([
    ["D'Angelo", 'dangelo'],
    ['O’Brien', 'obrien'],
    ['Jean-Luc', 'jeanluc'],
    ['  Mary   Ann  ', 'mary ann'],
    ['St. John', 'st john'],
    ['Zoë', 'zoë'],
    ['Zoe\u0308', 'zoë'],
    ['ÉLODIE', 'élodie'],
    ['José-María', 'josémaría'],
  ])('sends the name %j to the Data Manager API as %j', (name, normalized) => {
    const encoded = connector.encode(contact({ firstName: name, lastName: name, country: 'FR', zip: '75001' }), ALL_CONTACT_FIELDS);
    expect(encoded).toMatchObject({ FIRST_NAME: sha256(normalized), LAST_NAME: sha256(normalized) });
  });

  // Google Ads API OfflineUserAddressInfo: first names lowercased and trimmed, last names also lose punctuation.
  it.each([
    ["D'Angelo", "d'angelo", 'dangelo'],
    ['  Jean-Luc  ', 'jean-luc', 'jeanluc'],
    ['Zoe\u0308', 'zoë', 'zoë'],
  ])('sends the name %j to the Google Ads API as first name %j and last name %j', (name, first, last) => {
    const encoded = connectAds().encode(
      contact({ firstName: name, lastName: name, country: 'FR', zip: '75001' }),
      ALL_CONTACT_FIELDS,
    );
    expect(encoded).toMatchObject({ FIRST_NAME: sha256(first), LAST_NAME: sha256(last) });
  });

  it.each([
    ['John.Doe+news@GMail.com', 'johndoe@gmail.com'],
    ['j.o.h.n@googlemail.com', 'john@googlemail.com'],
    ['jo hn.doe+tag@example.com', 'john.doe+tag@example.com'],
  ])('normalizes the email %s as %s', (email, normalized) => {
    expect(connector.encode(contact({ email }), ALL_CONTACT_FIELDS)).toEqual({ EMAIL: sha256(normalized) });
  });

  it('drops values Google would refuse, so they cannot fail a whole request', () => {
    const unusable = contact({ email: 'not-an-email', phone: '4155550100', country: 'USA', zip: '94105' });
    expect(connector.encode(unusable, ALL_CONTACT_FIELDS)).toBeNull();
  });

  it('sends an address only when all four parts are there', () => {
    const partial = contact({ email: 'a@b.co', firstName: 'Ada', lastName: 'Lovelace', country: 'GB' });
    expect(connector.encode(partial, ALL_CONTACT_FIELDS)).toEqual({ EMAIL: sha256('a@b.co') });
  });

  it('takes lowercase SHA-256 values as already hashed', () => {
    const email = sha256('bob@example.com');
    const phone = sha256('+14155550100');
    expect(connector.encode(contact({ email, phone }), ALL_CONTACT_FIELDS)).toEqual({ EMAIL: email, PHONE: phone });
  });

  it('sends mobile ids as they are, unhashed', () => {
    const mobileAdId = 'AB12CD34-0000-4000-8000-00000000ABCD';
    const mapping: FieldMapping[] = [{ sourceField: 'mobileAdId', destinationField: 'MOBILE_ID' }];
    expect(connector.encode(contact({ mobileAdId }), mapping)).toEqual({ MOBILE_ID: mobileAdId });
    expect(connector.encode(contact({ mobileAdId: 'not-an-id' }), mapping)).toBeNull();
  });

  it('refuses a mapping that mixes mobile ids with contact details, which no list accepts', () => {
    const mapping: FieldMapping[] = [
      { sourceField: 'email', destinationField: 'EMAIL' },
      { sourceField: 'mobileAdId', destinationField: 'MOBILE_ID' },
    ];
    const encode = () => connector.encode(contact({ email: 'a@b.co' }), mapping);
    expect(encode).toThrow(DestinationError);
    expect(encode).toThrow(/either contact details or mobile ids/);
  });

  it('refuses a mapping to a field Google does not have', () => {
    expect(() => connector.encode(contact({ email: 'a@b.co' }), [{ sourceField: 'email', destinationField: 'FN' }])).toThrow(/"FN"/);
  });
});

describe('addMembers and removeMembers', () => {
  const ADA: EncodedMember = {
    contactId: 1n,
    identifiers: {
      EMAIL: sha256('ada@example.com'),
      PHONE: sha256('+447700900123'),
      FIRST_NAME: sha256('ada'),
      LAST_NAME: sha256('lovelace'),
      COUNTRY: 'GB',
      ZIP: 'W1 1AA',
    },
  };
  const destination = { operatingAccount: { accountType: 'GOOGLE_ADS', accountId: ACCOUNT_ID }, productDestinationId: LIST_ID };

  it('ingests each person as one member with all their identifiers, with consent and the terms', async () => {
    const outcome = await connector.addMembers(LIST_ID, [ADA, emailMember(2n, 'grace@example.com')], SESSION);

    // The ingestion's request id comes back, to read its match rate later.
    expect(outcome).toEqual({ invalid: 0, invalidSamples: [], platformRequestId: expect.any(String) });
    expect(google.dataManagerRequests.get(outcome.platformRequestId!)).toMatchObject({ operation: 'ingest', recordCount: 2 });
    const [ingest] = apiRequests();
    expect(ingest).toMatchObject({ method: 'POST', url: '/v1/audienceMembers:ingest', contentType: 'application/json' });
    expect(ingest?.authorization).toMatch(/^Bearer ya29\.fake-/);
    expect(ingest?.body).toEqual({
      destinations: [destination],
      audienceMembers: [
        {
          userData: {
            userIdentifiers: [
              { emailAddress: sha256('ada@example.com') },
              { phoneNumber: sha256('+447700900123') },
              { address: { givenName: sha256('ada'), familyName: sha256('lovelace'), regionCode: 'GB', postalCode: 'W1 1AA' } },
            ],
          },
        },
        { userData: { userIdentifiers: [{ emailAddress: sha256('grace@example.com') }] } },
      ],
      encoding: 'HEX',
      consent: CONSENT,
      termsOfService: { customerMatchTermsOfServiceStatus: 'ACCEPTED' },
    });
    expect(google.userLists.get(LIST_ID)?.members).toEqual(
      new Set([
        `EMAIL:${sha256('ada@example.com')}`,
        `PHONE:${sha256('+447700900123')}`,
        `ADDRESS:${sha256('ada')}|${sha256('lovelace')}|GB|W1 1AA`,
        `EMAIL:${sha256('grace@example.com')}`,
      ]),
    );
  });

  it('removes with destinations, members and encoding only', async () => {
    await connector.addMembers(LIST_ID, [ADA, emailMember(2n, 'grace@example.com')], SESSION);
    const outcome = await connector.removeMembers(LIST_ID, [ADA], { ...SESSION, id: 'run-1:removes' });

    // A removal's status carries no match rate: its request id is not kept.
    expect(outcome).toEqual({ invalid: 0, invalidSamples: [] });
    const remove = apiRequests()[1];
    expect(remove?.url).toBe('/v1/audienceMembers:remove');
    expect(Object.keys(remove?.body as object).sort()).toEqual(['audienceMembers', 'destinations', 'encoding']);
    expect(google.userLists.get(LIST_ID)?.members).toEqual(new Set([`EMAIL:${sha256('grace@example.com')}`]));
  });

  it('names the login account when the user signs in through a manager account', async () => {
    const viaManager = connectTo(google, { config: { loginAccount: { accountId: '111-222-3333' } } });
    await viaManager.addMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION);

    expect((apiRequests()[0]?.body as { destinations: unknown[] }).destinations).toEqual([
      { ...destination, loginAccount: { accountType: 'GOOGLE_ADS', accountId: '1112223333' } },
    ]);
  });

  it('sends mobile ids as mobile data to a mobile-id list', async () => {
    google.userLists.set('9000000002', { displayName: 'App users', uploadKeyType: 'MOBILE_ID', members: new Set() });
    const mobileId = 'ab12cd34-0000-4000-8000-00000000abcd';
    await connector.addMembers('9000000002', [{ contactId: 1n, identifiers: { MOBILE_ID: mobileId } }], SESSION);

    expect((apiRequests()[0]?.body as { audienceMembers: unknown[] }).audienceMembers).toEqual([
      { mobileData: { mobileIds: [mobileId] } },
    ]);
    expect(google.userLists.get('9000000002')?.members).toEqual(new Set([`MOBILE_ID:${mobileId}`]));
  });

  it('accepts 10,000 members and refuses more without calling Google', async () => {
    const members = Array.from({ length: 10_001 }, (_, i) => emailMember(BigInt(i), `user${i}@example.com`));

    expect(connector.maxBatchSize).toBe(10_000);
    await expect(connector.addMembers(LIST_ID, members, SESSION)).rejects.toThrow(/at most 10000/);
    expect(google.requests).toHaveLength(0);

    await expect(connector.addMembers(LIST_ID, members.slice(0, 10_000), SESSION)).resolves.toMatchObject({ invalid: 0, invalidSamples: [] });
    expect(google.userLists.get(LIST_ID)?.members.size).toBe(10_000);
  });
});

describe('readAudience: the match rate of the last upload (requestStatus.retrieve)', () => {
  const members = (count: number) => Array.from({ length: count }, (_, i) => emailMember(BigInt(i + 1), `person${i}@example.com`));
  /** Google knows the first `count` of `members(...)`. */
  const knowFirst = (count: number) => {
    for (const member of members(count)) google.googleUsers.add(`EMAIL:${member.identifiers.EMAIL}`);
  };

  it('reports the range Google gives for what it matched of the members sent, as bounds, with no single rate', async () => {
    knowFirst(11);
    const { platformRequestId } = await connector.addMembers(LIST_ID, members(20), SESSION);

    const report = await connector.readAudience!(LIST_ID, { lastPlatformRequestId: platformRequestId! });
    // 11 of 20: 55%, in MATCH_RATE_RANGE_51_TO_60.
    expect(report).toEqual({
      sizeLowerBound: 20,
      sizeUpperBound: 20,
      matchRate: null,
      matchRateLowerBound: 0.51,
      matchRateUpperBound: 0.6,
      status: 'OPEN',
      statusDetail: `Google matched 51–60% of 20 members sent in the last upload (Data Manager request ${platformRequestId}).`,
    });
    expect(apiRequests().at(-1)).toMatchObject({
      method: 'GET',
      url: `/v1/requestStatus:retrieve?requestId=${platformRequestId}`,
    });
  });

  it('reads the edges of the ranges: under 20% and 91–100%', async () => {
    const none = await connector.addMembers(LIST_ID, members(10), SESSION);
    expect(await connector.readAudience!(LIST_ID, { lastPlatformRequestId: none.platformRequestId! })).toMatchObject({
      matchRateLowerBound: 0,
      matchRateUpperBound: 0.2,
    });
    knowFirst(10);
    const all = await connector.addMembers(LIST_ID, members(10), SESSION);
    expect(await connector.readAudience!(LIST_ID, { lastPlatformRequestId: all.platformRequestId! })).toMatchObject({
      matchRateLowerBound: 0.91,
      matchRateUpperBound: 1,
    });
  });

  it('says the upload is still processing, with no match information, until Google is done', async () => {
    google.holdRequests = true;
    knowFirst(3);
    const { platformRequestId } = await connector.addMembers(LIST_ID, members(3), SESSION);

    expect(await connector.readAudience!(LIST_ID, { lastPlatformRequestId: platformRequestId! })).toMatchObject({
      sizeLowerBound: 3,
      matchRate: null,
      matchRateLowerBound: null,
      matchRateUpperBound: null,
      statusDetail: `Google is still processing the last upload (Data Manager request ${platformRequestId}): its match rate is not known yet`,
    });
    google.completeRequests();
    expect(await connector.readAudience!(LIST_ID, { lastPlatformRequestId: platformRequestId! })).toMatchObject({
      matchRateLowerBound: 0.91,
      matchRateUpperBound: 1,
    });
  });

  it('says why there is no match rate when Google failed the upload or finds it not eligible, and what it refused of a partial one', async () => {
    const { platformRequestId } = await connector.addMembers(LIST_ID, members(4), SESSION);
    const request = google.dataManagerRequests.get(platformRequestId!)!;
    const read = () => connector.readAudience!(LIST_ID, { lastPlatformRequestId: platformRequestId! });
    const upload = `the last upload (Data Manager request ${platformRequestId})`;

    Object.assign(request, { status: 'FAILED', errorCounts: [{ reason: 'PROCESSING_ERROR_REASON_DENIED_CONSENT', recordCount: 4 }] });
    expect(await read()).toMatchObject({
      matchRateLowerBound: null,
      matchRateUpperBound: null,
      statusDetail: `Google failed ${upload}, so it has no match rate: PROCESSING_ERROR_REASON_DENIED_CONSENT × 4`,
    });

    Object.assign(request, { status: 'SUCCESS', errorCounts: undefined, uploadMatchRateRange: 'MATCH_RATE_RANGE_NOT_ELIGIBLE' });
    expect(await read()).toMatchObject({
      matchRateLowerBound: null,
      statusDetail: `Google reports no match rate for ${upload}: it is not eligible for one.`,
    });

    Object.assign(request, {
      status: 'PARTIAL_SUCCESS',
      errorCounts: [{ reason: 'PROCESSING_ERROR_REASON_DENIED_CONSENT', recordCount: 1 }],
      uploadMatchRateRange: undefined,
    });
    expect(await read()).toMatchObject({
      matchRateLowerBound: 0,
      matchRateUpperBound: 0.2,
      statusDetail: `Google matched 0–20% of 4 members sent in ${upload}. Google refused part of it: PROCESSING_ERROR_REASON_DENIED_CONSENT × 1.`,
    });
  });

  it('still reports the list when Google does not know the request id, and says why there is no match rate', async () => {
    await connector.addMembers(LIST_ID, members(2), SESSION);
    const report = await connector.readAudience!(LIST_ID, { lastPlatformRequestId: 'forgotten-request' });

    expect(report).toEqual({
      sizeLowerBound: 2,
      sizeUpperBound: 2,
      matchRate: null,
      matchRateLowerBound: null,
      matchRateUpperBound: null,
      status: 'OPEN',
      statusDetail: 'Google no longer knows the last upload (Data Manager request forgotten-request), so it has no match rate',
    });
  });

  it('reads no request status when no upload gave an id, and fails as a DestinationError when Google fails', async () => {
    expect(await connector.readAudience!(LIST_ID, { lastPlatformRequestId: null })).toMatchObject({
      matchRateLowerBound: null,
      statusDetail: null,
    });
    expect(apiRequests().some((request) => request.url.startsWith('/v1/requestStatus'))).toBe(false);

    const { platformRequestId } = await connector.addMembers(LIST_ID, members(2), SESSION);
    google.failNext('unavailable', 1, (request) => request.path === '/v1/requestStatus:retrieve');
    const error = await rejection(connector.readAudience!(LIST_ID, { lastPlatformRequestId: platformRequestId! }));
    expect(error.details).toMatchObject({ retryable: true });
  });
});

describe('access tokens', () => {
  it('exchanges the refresh token once and reuses the access token until shortly before it expires', async () => {
    await connector.addMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION);
    await connectTo(google).removeMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION);

    expect(tokenRequests()).toHaveLength(1);
    expect(tokenRequests()[0]).toMatchObject({
      method: 'POST',
      contentType: 'application/x-www-form-urlencoded',
      body: { grant_type: 'refresh_token', client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret, refresh_token: REFRESH_TOKEN },
    });
    const [first, second] = apiRequests();
    expect(second?.authorization).toBe(first?.authorization);
  });

  it('exchanges again when the token is about to expire', async () => {
    const shortLived = await startFakeGoogle({ ...CLIENT, refreshToken: REFRESH_TOKEN, accountId: ACCOUNT_ID, tokenLifetimeSeconds: 30 });
    try {
      shortLived.userLists.set(LIST_ID, { displayName: 'Buyers', uploadKeyType: 'CONTACT_ID', members: new Set() });
      const client = connectTo(shortLived);
      await client.addMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION);
      await client.addMembers(LIST_ID, [emailMember(2n, 'b@example.com')], SESSION);

      expect(shortLived.requests.filter((request) => request.url === '/token')).toHaveLength(2);
    } finally {
      await shortLived.close();
    }
  });

  it('exchanges again once when Google refuses a cached token, and goes on', async () => {
    await connector.checkAccess();
    google.failNext('unauthenticated');

    await expect(connector.addMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION)).resolves.toMatchObject({ invalid: 0, invalidSamples: [] });
    expect(tokenRequests()).toHaveLength(2);
    const ingests = apiRequests().filter((request) => request.url.endsWith(':ingest'));
    expect(ingests).toHaveLength(2);
    expect(ingests[1]?.authorization).not.toBe(ingests[0]?.authorization);
  });

  it('uses an access token given as it is, without the token endpoint', async () => {
    await connectTo(google, { credentials: { accessToken: STATIC_TOKEN } }).addMembers(LIST_ID, [emailMember(1n, 'a@b.co')], SESSION);

    expect(tokenRequests()).toHaveLength(0);
    expect(apiRequests()[0]?.authorization).toBe(`Bearer ${STATIC_TOKEN}`);
  });

  it('refuses a token without the Data Manager scope before calling the API', async () => {
    const narrow = await startFakeGoogle({ ...CLIENT, refreshToken: REFRESH_TOKEN, accountId: ACCOUNT_ID, scope: 'https://www.googleapis.com/auth/adwords' });
    try {
      const error = await rejection(connectTo(narrow).checkAccess());
      expect(error.message).toMatch(/not granted the scope https:\/\/www\.googleapis\.com\/auth\/datamanager — reconnect/);
      expect(error.details.retryable).toBe(false);
      expect(narrow.requests.map((request) => request.url)).toEqual(['/token']);
    } finally {
      await narrow.close();
    }
  });
});

describe('errors', () => {
  const members = [emailMember(1n, 'a@example.com')];

  it('reports a revoked refresh token as not retryable, telling the user to reconnect, without secrets', async () => {
    google.revokeAccess();
    const error = await rejection(connector.addMembers(LIST_ID, members, SESSION));

    expect(error.message).toBe('Google rejected the credentials: the refresh token has expired or been revoked — reconnect the destination');
    expect(error.details).toMatchObject({ platform: 'GOOGLE', status: 400, code: 'invalid_grant', retryable: false });
    expectNoSecrets(error);
    expect(apiRequests()).toHaveLength(0);
  });

  it('reports access revoked after a token was cached the same way, after one fresh exchange', async () => {
    await connector.checkAccess();
    google.revokeAccess();
    const error = await rejection(connector.addMembers(LIST_ID, members, SESSION));

    expect(error.message).toMatch(/^Google rejected the credentials.*reconnect the destination$/);
    expect(error.details.retryable).toBe(false);
    expect(tokenRequests()).toHaveLength(2);
  });

  it('reports a wrong OAuth client as not retryable', async () => {
    const error = await rejection(
      connectTo(google, { credentials: { ...CREDENTIALS, clientSecret: 'GOCSPX-wrong' } }).addMembers(LIST_ID, members, SESSION),
    );

    expect(error.message).toMatch(/OAuth client id or secret is wrong — reconnect/);
    expect(error.details).toMatchObject({ status: 401, code: 'invalid_client', retryable: false });
    expect(error.message).not.toContain('GOCSPX-wrong');
  });

  it('reports an access token Google refuses as not retryable, without asking the token endpoint', async () => {
    const error = await rejection(connectTo(google, { credentials: { accessToken: 'ya29.expired' } }).addMembers(LIST_ID, members, SESSION));

    expect(error.message).toBe('Google rejected the credentials: the access token is invalid or has expired — reconnect the destination');
    expect(error.details).toMatchObject({ status: 401, code: 'UNAUTHENTICATED', retryable: false });
    expect(tokenRequests()).toHaveLength(0);
  });

  it('reports missing permission on the account as not retryable, naming the account', async () => {
    google.failNext('permission-denied');
    const error = await rejection(connector.addMembers(LIST_ID, members, SESSION));

    expect(error.message).toMatch(/Google refused access.*Google Ads account 1234567890/);
    expect(error.details).toMatchObject({ status: 403, code: 'PERMISSION_DENIED', retryable: false });
  });

  it('reports throttling as retryable after the delay Google gives in RetryInfo', async () => {
    google.failNext('throttle');
    const error = await rejection(connector.addMembers(LIST_ID, members, SESSION));

    expect(error.details).toMatchObject({
      status: 429,
      code: 'RESOURCE_EXHAUSTED',
      retryable: true,
      retryAfterMs: THROTTLE_RETRY_DELAY_SECONDS * 1000,
    });
    expect(error.message).toMatch(/rate-limiting/);
  });

  it('takes the delay from Retry-After when there is no RetryInfo', async () => {
    google.failNext('http-429-retry-after');
    const error = await rejection(connector.addMembers(LIST_ID, members, SESSION));

    expect(error.details).toMatchObject({ retryable: true, retryAfterMs: THROTTLE_RETRY_DELAY_SECONDS * 1000 });
  });

  it.each([
    ['unavailable', 503, /temporary problem/],
    ['aborted', 409, /concurrent change to Customer Match list 9000000001/],
  ] as const)('reports %s as retryable, and the retried batch is applied once', async (failure, status, message) => {
    google.failNext(failure);
    const error = await rejection(connector.addMembers(LIST_ID, members, SESSION));

    expect(error.details).toMatchObject({ status, retryable: true });
    expect(error.message).toMatch(message);
    expect(google.userLists.get(LIST_ID)?.members.size).toBe(0);
    await connector.addMembers(LIST_ID, members, SESSION);
    expect(google.userLists.get(LIST_ID)?.members).toEqual(new Set([`EMAIL:${sha256('a@example.com')}`]));
  });

  it('reports a failing token endpoint as retryable', async () => {
    google.failNext('token-server-error');
    const error = await rejection(connector.checkAccess());

    expect(error.details).toMatchObject({ status: 503, retryable: true });
  });

  it('reports an unreachable Google as retryable', async () => {
    const gone = await startFakeGoogle({ ...CLIENT, refreshToken: REFRESH_TOKEN, accountId: ACCOUNT_ID });
    await gone.close();
    const error = await rejection(connectTo(gone).addMembers(LIST_ID, members, SESSION));

    expect(error.details.retryable).toBe(true);
    expect(error.message).toMatch(/Could not reach Google/);
  });

  it('reports a request Google finds invalid as not retryable, with the field violation, applying nothing', async () => {
    const error = await rejection(
      connector.addMembers(LIST_ID, [emailMember(1n, 'a@example.com'), { contactId: 2n, identifiers: { EMAIL: 'abc123' } }], SESSION),
    );

    expect(error.details).toMatchObject({ status: 400, code: 'INVALID_ARGUMENT', retryable: false });
    expect(error.message).toMatch(
      /^Google rejected the request: .*audience_members\[1\]\.user_data\.user_identifiers\[0\]\.email_address: .* \(INVALID_SHA256_FORMAT\)$/,
    );
    expect(google.userLists.get(LIST_ID)?.members.size).toBe(0);
  });

  it('reports an unknown list as not retryable, pointing at platformAudienceId', async () => {
    const error = await rejection(connector.addMembers('9000000999', members, SESSION));

    expect(error.message).toMatch(/does not know Customer Match list 9000000999 in Google Ads account 1234567890.*platformAudienceId/);
    expect(error.details.retryable).toBe(false);
  });

  it('reports a list of another identifier kind as not retryable', async () => {
    google.userLists.set('9000000002', { displayName: 'App users', uploadKeyType: 'MOBILE_ID', members: new Set() });
    const error = await rejection(connector.addMembers('9000000002', members, SESSION));

    expect(error.message).toMatch(/takes another kind of identifier/);
  });
});

describe('checkAccess', () => {
  it('reads the account lists without changing anything', async () => {
    await expect(connector.checkAccess()).resolves.toBe(
      'The Google credentials work and can read the Customer Match lists of Google Ads account 1234567890',
    );
    expect(apiRequests()).toEqual([
      expect.objectContaining({ method: 'GET', url: '/v1/accountTypes/GOOGLE_ADS/accounts/1234567890/userLists?pageSize=1', loginAccount: undefined }),
    ]);
    expect(google.userLists.size).toBe(1);
  });

  it('names the login account in a header', async () => {
    await connectTo(google, { config: { loginAccount: { accountId: '1112223333' } } }).checkAccess();
    expect(apiRequests()[0]?.loginAccount).toBe('accountTypes/GOOGLE_ADS/accounts/1112223333');
  });

  it('fails on an account the credentials cannot manage', async () => {
    const error = await rejection(connectTo(google, { config: { operatingAccount: { accountId: '999' } } }).checkAccess());
    expect(error.message).toMatch(/Google refused access.*account 999/);
  });
});

describe('ensureAudience', () => {
  it('returns an existing list id without calling Google', async () => {
    await expect(connector.ensureAudience({ platformAudienceId: LIST_ID, name: 'VIPs' })).resolves.toBe(LIST_ID);
    expect(google.requests).toHaveLength(0);
  });

  it('creates a contact-details Customer Match list in the account', async () => {
    const id = await connector.ensureAudience({ platformAudienceId: null, name: 'VIPs' });

    expect(google.userLists.get(id)).toMatchObject({ displayName: 'VIPs', uploadKeyType: 'CONTACT_ID' });
    expect(apiRequests()).toEqual([
      expect.objectContaining({
        method: 'POST',
        url: '/v1/accountTypes/GOOGLE_ADS/accounts/1234567890/userLists',
        body: {
          displayName: 'VIPs',
          description: 'Kept in sync by the audience sync gateway',
          ingestedUserListInfo: { uploadKeyTypes: ['CONTACT_ID'], contactIdInfo: { dataSourceType: 'DATA_SOURCE_TYPE_FIRST_PARTY' } },
        },
      }),
    ]);
  });

  it('says what to do when a list of that name exists', async () => {
    const error = await rejection(connector.ensureAudience({ platformAudienceId: null, name: 'Buyers' }));

    expect(error.message).toMatch(/already exists in Google Ads account 1234567890 — set its id as the sync's platformAudienceId/);
    expect(error.details).toMatchObject({ status: 409, code: 'ALREADY_EXISTS', retryable: false });
  });
});

describe('the fake is as strict as Google', () => {
  async function post(path: string, body: unknown) {
    await connector.checkAccess();
    const authorization = apiRequests()[0]!.authorization!;
    const response = await fetch(`${google.baseUrl}${path}`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as { error: { message: string; details: unknown[] } } };
  }
  const base = {
    destinations: [{ operatingAccount: { accountType: 'GOOGLE_ADS', accountId: ACCOUNT_ID }, productDestinationId: LIST_ID }],
    audienceMembers: [{ userData: { userIdentifiers: [{ emailAddress: sha256('a@example.com') }] } }],
    encoding: 'HEX',
  };

  it('refuses consent and terms on remove as unknown fields', async () => {
    const reply = await post('/v1/audienceMembers:remove', { ...base, consent: CONSENT });
    expect(reply.status).toBe(400);
    expect(reply.body.error.message).toMatch(/Unknown name "consent"/);
  });

  it('refuses an ingest without the accepted terms', async () => {
    const reply = await post('/v1/audienceMembers:ingest', base);
    expect(reply.status).toBe(400);
    expect(JSON.stringify(reply.body)).toContain('TERMS_AND_CONDITIONS_NOT_SIGNED');
  });

  it('refuses more than 10,000 members, and more than 10 identifiers per member', async () => {
    const terms = { termsOfService: { customerMatchTermsOfServiceStatus: 'ACCEPTED' } };
    const tooMany = await post('/v1/audienceMembers:ingest', {
      ...base,
      ...terms,
      audienceMembers: Array.from({ length: 10_001 }, () => base.audienceMembers[0]),
    });
    expect(JSON.stringify(tooMany.body)).toContain('TOO_MANY_AUDIENCE_MEMBERS');

    const identifiers = Array.from({ length: 11 }, (_, i) => ({ emailAddress: sha256(`${i}@example.com`) }));
    const tooWide = await post('/v1/audienceMembers:ingest', { ...base, ...terms, audienceMembers: [{ userData: { userIdentifiers: identifiers } }] });
    expect(JSON.stringify(tooWide.body)).toContain('TOO_MANY_USER_IDENTIFIERS');
    expect(google.userLists.get(LIST_ID)?.members.size).toBe(0);
  });
});

describe('api: ADS_API settings', () => {
  it('serves Google Ads accounts only', () => {
    const result = googleConfigSchema.safeParse({
      api: 'ADS_API',
      operatingAccount: { accountType: 'DISPLAY_VIDEO_ADVERTISER', accountId: '1' },
      consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
      customerMatchTermsAccepted: true,
    });
    expect(result.error?.issues[0]).toMatchObject({ path: ['operatingAccount', 'accountType'], message: expect.stringMatching(/GOOGLE_ADS accounts only/) });
  });

  it('needs a developer token', () => {
    const { developerToken: _, ...withoutDeveloperToken } = ADS_CREDENTIALS;
    expect(() => connectAds({ credentials: withoutDeveloperToken })).toThrow(/needs a developer token: add developerToken/);
  });
});

describe('api: ADS_API checkAccess and ensureAudience', () => {
  it('reads the customer with the developer token and the manager account it signs in through', async () => {
    const message = await connectAds({ config: { loginAccount: { accountId: '111-222-3333' } } }).checkAccess();

    expect(message).toMatch(/can read Google Ads account 1234567890 through the Google Ads API/);
    const [search] = apiRequests();
    expect(search).toMatchObject({
      method: 'POST',
      url: `/v26/customers/${ACCOUNT_ID}/googleAds:search`,
      body: { query: 'SELECT customer.id, customer.descriptive_name FROM customer LIMIT 1' },
    });
    expect(search?.authorization).toMatch(/^Bearer ya29\.fake-/);
    expect(search).toMatchObject({ developerToken: DEVELOPER_TOKEN, loginCustomerId: '1112223333' });
  });

  it('creates a contact-info Customer Match list', async () => {
    const id = await connectAds().ensureAudience({ platformAudienceId: null, name: 'VIPs' });

    expect(google.userLists.get(id)).toMatchObject({ displayName: 'VIPs', uploadKeyType: 'CONTACT_ID' });
    expect(apiRequests()[0]?.body).toEqual({
      operations: [
        {
          create: {
            name: 'VIPs',
            description: 'Kept in sync by the audience sync gateway',
            membershipStatus: 'OPEN',
            crmBasedUserList: { uploadKeyType: 'CONTACT_INFO', dataSourceType: 'FIRST_PARTY' },
          },
        },
      ],
    });
  });

  it('says what to do when the list name is taken', async () => {
    const error = await rejection(connectAds().ensureAudience({ platformAudienceId: null, name: 'Buyers' }));
    expect(error.message).toMatch(/already exists .* set its id as the sync's platformAudienceId/);
  });
});

describe('api: ADS_API uploads as offline user data jobs', () => {
  it('makes a one-batch upload one job: created, fed, run; Google applies it later, and nothing waits for it', async () => {
    const outcome = await connectAds().addMembers(LIST_ID, [emailMember(1n, 'a@example.com'), emailMember(2n, 'b@example.com')], SESSION);

    const job = `customers/${ACCOUNT_ID}/offlineUserDataJobs/700000001`;
    expect(outcome).toEqual({ invalid: 0, invalidSamples: [], platformJob: { resourceName: job, started: true } });
    expect(adsRequestLines()).toEqual([
      `POST /v26/customers/${ACCOUNT_ID}/googleAds:search`,
      `POST /v26/customers/${ACCOUNT_ID}/offlineUserDataJobs:create`,
      `POST /v26/${job}:addOperations`,
      `POST /v26/${job}:run`,
    ]);
    expect(apiRequests()[1]?.body).toEqual({
      job: {
        type: 'CUSTOMER_MATCH_USER_LIST',
        customerMatchUserListMetadata: { userList: USER_LIST, consent: { adUserData: 'GRANTED', adPersonalization: 'DENIED' } },
      },
    });
    expect(apiRequests()[2]?.body).toEqual({
      enablePartialFailure: true,
      operations: [
        { create: { userIdentifiers: [{ hashedEmail: sha256('a@example.com') }] } },
        { create: { userIdentifiers: [{ hashedEmail: sha256('b@example.com') }] } },
      ],
    });
    expect(google.adsJobs.get('700000001')?.status).toBe('RUNNING');
    expect(heldInList().size).toBe(0);
    google.completeAdsJobs();
    expect(heldInList()).toEqual(new Set([`EMAIL:${sha256('a@example.com')}`, `EMAIL:${sha256('b@example.com')}`]));
  });

  it('sends all identifiers of a person in one UserData, and removes in a job of their own', async () => {
    const ada: EncodedMember = {
      contactId: 1n,
      identifiers: { EMAIL: sha256('ada@example.com'), PHONE: sha256('+447700900123'), FIRST_NAME: sha256('ada'), LAST_NAME: sha256('lovelace'), COUNTRY: 'GB', ZIP: 'W1 1AA' },
    };
    const connector = connectAds();
    await connector.addMembers(LIST_ID, [ada], SESSION);
    google.completeAdsJobs();
    await connector.removeMembers(LIST_ID, [ada], SESSION);

    const [addOperations, removeOperations] = apiRequests().filter((request) => request.url.endsWith(':addOperations'));
    const userData = {
      userIdentifiers: [
        { hashedEmail: sha256('ada@example.com') },
        { hashedPhoneNumber: sha256('+447700900123') },
        { addressInfo: { hashedFirstName: sha256('ada'), hashedLastName: sha256('lovelace'), countryCode: 'GB', postalCode: 'W1 1AA' } },
      ],
    };
    expect(addOperations?.body).toEqual({ enablePartialFailure: true, operations: [{ create: userData }] });
    expect(removeOperations?.body).toEqual({ enablePartialFailure: true, operations: [{ remove: userData }] });
    expect(google.adsJobs.size).toBe(2);
    google.completeAdsJobs();
    expect(heldInList().size).toBe(0);
  });

  it('starts no job while another runs on the list: the batch is refused for now, nothing sent', async () => {
    const connector = connectAds();
    await connector.addMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION);
    const before = apiRequests().length;

    const outcome = await connector.removeMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION);

    expect(outcome).toMatchObject({ invalid: 0 });
    expect(outcome.refused).toMatch(/still applying an earlier upload to Customer Match list 9000000001.*removals wait for a later run/);
    expect(adsRequestLines().slice(before)).toEqual([`POST /v26/customers/${ACCOUNT_ID}/googleAds:search`]);
    expect(google.adsJobs.size).toBe(1);
  });

  it('feeds every batch of an upload to one job and runs it with the last batch', async () => {
    const connector = connectAds();
    const session = uploadSession({ id: 'run-2:adds', lastBatch: false, estimatedTotal: 3 });
    const job = `customers/${ACCOUNT_ID}/offlineUserDataJobs/700000001`;
    const first = await connector.addMembers(LIST_ID, [emailMember(1n, 'a@example.com'), emailMember(2n, 'b@example.com')], session);
    expect(first).toEqual({ invalid: 0, invalidSamples: [], platformJob: { resourceName: job, started: false } });
    expect(google.adsJobs.get('700000001')?.status).toBe('PENDING');

    const last = await connector.addMembers(LIST_ID, [emailMember(3n, 'c@example.com')], { ...session, batchSeq: 2, lastBatch: true });
    expect(last.platformJob).toEqual({ resourceName: job, started: true });
    expect(adsRequestLines()).toEqual([
      `POST /v26/customers/${ACCOUNT_ID}/googleAds:search`,
      `POST /v26/customers/${ACCOUNT_ID}/offlineUserDataJobs:create`,
      `POST /v26/${job}:addOperations`,
      `POST /v26/${job}:addOperations`,
      `POST /v26/${job}:run`,
    ]);
    google.completeAdsJobs();
    expect(heldInList().size).toBe(3);
  });

  it('retries a batch whose job failed to start on the same job, without adding its operations twice', async () => {
    const connector = connectAds();
    google.failNext('unavailable', 1, (request) => request.path.endsWith(':run'));
    const members = [emailMember(1n, 'a@example.com')];
    const error = await rejection(connector.addMembers(LIST_ID, members, SESSION));
    expect(error.details.retryable).toBe(true);

    await connector.addMembers(LIST_ID, members, SESSION);
    expect([...google.adsJobs.values()].map((job) => [job.status, job.operations.length])).toEqual([['RUNNING', 1]]);
    google.completeAdsJobs();
    expect(heldInList()).toEqual(new Set([`EMAIL:${sha256('a@example.com')}`]));
  });

  it('counts the operations Google refuses as invalid and keeps the rest', async () => {
    const outcome = await connectAds().addMembers(
      LIST_ID,
      [emailMember(1n, 'a@example.com'), { contactId: 2n, identifiers: { EMAIL: 'not-a-hash' } }],
      SESSION,
    );

    expect(outcome).toMatchObject({ invalid: 1, invalidSamples: ['The identifier is not a lowercase SHA-256 hex digest.'] });
    google.completeAdsJobs();
    expect(heldInList()).toEqual(new Set([`EMAIL:${sha256('a@example.com')}`]));
  });

  it('follows a job through a search on its resource name: running, then succeeded', async () => {
    const connector = connectAds();
    const { platformJob } = await connector.addMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION);
    const job = platformJob!.resourceName;

    await expect(connector.checkJob!(job)).resolves.toEqual({ status: 'RUNNING' });
    expect(apiRequests().at(-1)).toMatchObject({
      url: `/v26/customers/${ACCOUNT_ID}/googleAds:search`,
      body: {
        query:
          'SELECT offline_user_data_job.status, offline_user_data_job.failure_reason FROM offline_user_data_job ' +
          `WHERE offline_user_data_job.resource_name = '${job}'`,
      },
    });
    google.completeAdsJobs();
    await expect(connector.checkJob!(job)).resolves.toEqual({ status: 'SUCCEEDED' });
  });

  it('reports a failed job with its reason, in words, and a job Google does not know as failed', async () => {
    const connector = connectAds();
    google.failNextAdsJob('UNKNOWN');
    const first = await connector.addMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION);
    google.completeAdsJobs();
    google.failNextAdsJob('NEWLY_OBSERVED_CURRENCY_CODE');
    const second = await connector.removeMembers(LIST_ID, [emailMember(1n, 'a@example.com')], SESSION);
    google.completeAdsJobs();

    await expect(connector.checkJob!(first.platformJob!.resourceName)).resolves.toEqual({
      status: 'FAILED',
      reason: 'Google reported the job as failed without giving a reason',
    });
    await expect(connector.checkJob!(second.platformJob!.resourceName)).resolves.toEqual({
      status: 'FAILED',
      reason: 'Google reported the job as failed (newly observed currency code)',
    });
    await expect(connector.checkJob!(`customers/${ACCOUNT_ID}/offlineUserDataJobs/1`)).resolves.toMatchObject({
      status: 'FAILED',
      reason: expect.stringMatching(/no record of the job/),
    });
    expect(heldInList().size).toBe(0);
  });

  it('checks only job resource names, so nothing else reaches the query', async () => {
    const error = await rejection(connectAds().checkJob!(`customers/${ACCOUNT_ID}/offlineUserDataJobs/1' OR '1'='1`));
    expect(error.message).toMatch(/does not understand/);
    expect(google.requests).toHaveLength(0);
  });

  it('refuses more than 10,000 operations in a batch without calling Google', async () => {
    const connector = connectAds();
    const members = Array.from({ length: 10_001 }, (_, i) => emailMember(BigInt(i), `user${i}@example.com`));
    expect(connector.maxBatchSize).toBe(10_000);
    await expect(connector.addMembers(LIST_ID, members, SESSION)).rejects.toThrow(/at most 10000/);
    expect(google.requests).toHaveLength(0);
  });
});

describe('api: ADS_API errors', () => {
  const members = [emailMember(1n, 'a@example.com')];

  it('reports a job someone else started meanwhile as a retryable concurrent change', async () => {
    // Someone else's job starts on the list while ours is being filled.
    google.onRequest((request) => {
      if (request.path.endsWith(':addOperations')) {
        google.adsJobs.set('1', { listId: LIST_ID, status: 'RUNNING', consent: undefined, kind: 'create', operations: [] });
      }
    });
    const error = await rejection(connectAds().addMembers(LIST_ID, members, SESSION));

    expect(error.message).toMatch(/concurrent change to Customer Match list 9000000001; the sync will retry/);
    expect(error.details).toMatchObject({ status: 409, retryable: true });
  });

  it('tells a developer token Google no longer allows here to switch to the Data Manager API', async () => {
    google.adsAllowlisted = false;
    const error = await rejection(connectAds().addMembers(LIST_ID, members, SESSION));
    expect(error.message).toMatch(/no longer lets this developer token use Customer Match .* Data Manager API/);
    expect(error.details.retryable).toBe(false);
  });

  it('reports a wrong developer token as not retryable, without showing it', async () => {
    const error = await rejection(connectAds({ credentials: { ...ADS_CREDENTIALS, developerToken: 'wrong-dev-token' } }).checkAccess());
    expect(error.message).toMatch(/rejected the developer token \(DEVELOPER_TOKEN_INVALID\)/);
    expect(error.details.retryable).toBe(false);
    expect(error.message).not.toContain('wrong-dev-token');
  });

  it('refuses an access token without the Google Ads scope', async () => {
    const dataManagerOnly = await startFakeGoogle({ ...CLIENT, refreshToken: REFRESH_TOKEN, accountId: ACCOUNT_ID, developerToken: DEVELOPER_TOKEN });
    try {
      const error = await rejection(connectAds({ fake: dataManagerOnly }).checkAccess());
      expect(error.message).toMatch(/not granted the scope https:\/\/www\.googleapis\.com\/auth\/adwords/);
    } finally {
      await dataManagerOnly.close();
    }
  });
});

describe('the Google folder', () => {
  it('has no import loop: shared settings and types live in settings.ts, below connector, ads-api and data-manager', () => {
    const folder = new URL('../../src/destinations/google/', import.meta.url);
    const imports = new Map(
      readdirSync(folder)
        .filter((file) => file.endsWith('.ts'))
        .map((file) => {
          const source = readFileSync(new URL(file, folder), 'utf8');
          const local = [...source.matchAll(/from '\.\/([\w-]+)\.js'/g)].map(([, name]) => `${name}.ts`);
          return [file, local] as const;
        }),
    );
    expect(imports.get('connector.ts')).toEqual(expect.arrayContaining(['ads-api.ts', 'data-manager.ts', 'settings.ts']));

    /** The files a file reaches through its imports, itself included only when a loop leads back to it. */
    const reached = (start: string) => {
      const seen = new Set<string>();
      const pending = [...(imports.get(start) ?? [])];
      while (pending.length > 0) {
        const file = pending.pop()!;
        if (seen.has(file)) continue;
        seen.add(file);
        pending.push(...(imports.get(file) ?? []));
      }
      return seen;
    };
    const loops = [...imports.keys()].filter((file) => reached(file).has(file));
    expect(loops).toEqual([]);
  });
});
