import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DestinationConnector, EncodedMember, FieldMapping } from '../../src/destinations/destination.js';
import { createMetaConnector, metaConfigSchema } from '../../src/destinations/meta/connector.js';
import { startFakeMeta, THROTTLE_REGAIN_MINUTES, type FakeMeta } from '../fakes/meta-server.js';
import { contact, rejection, sha256, uploadSession, useLoopbackFakes } from '../support/connectors.js';

useLoopbackFakes();

const TOKEN = 'EAAG-secret-test-token';
const AUDIENCE_ID = '23850000000000777';

const ALL_FIELDS_MAPPING: FieldMapping[] = [
  { sourceField: 'email', destinationField: 'EMAIL' },
  { sourceField: 'phone', destinationField: 'PHONE' },
  { sourceField: 'firstName', destinationField: 'FN' },
  { sourceField: 'lastName', destinationField: 'LN' },
  { sourceField: 'zip', destinationField: 'ZIP' },
  { sourceField: 'country', destinationField: 'COUNTRY' },
  { sourceField: 'mobileAdId', destinationField: 'MADID' },
  { sourceField: 'externalId', destinationField: 'EXTERN_ID' },
];

function emailMember(contactId: bigint, email: string): EncodedMember {
  return { contactId, identifiers: { EMAIL: sha256(email) } };
}

let meta: FakeMeta;
let connector: DestinationConnector;

function connectTo(baseUrl: string, accessToken = TOKEN): DestinationConnector {
  return createMetaConnector(metaConfigSchema.parse({ adAccountId: 'act_1234', baseUrl }), { accessToken });
}

beforeEach(async () => {
  meta = await startFakeMeta({ accessToken: TOKEN });
  meta.audiences.set(AUDIENCE_ID, new Set());
  connector = connectTo(meta.baseUrl);
});

afterEach(() => meta.close());

describe('metaConfigSchema', () => {
  it('applies the default API version and base URL', () => {
    expect(metaConfigSchema.parse({ adAccountId: '1234' })).toEqual({
      adAccountId: '1234',
      apiVersion: 'v27.0',
      baseUrl: 'https://graph.facebook.com',
    });
  });

  it.each([
    { adAccountId: 'act_12a' },
    { adAccountId: '1234', apiVersion: '24.0' },
    { adAccountId: '1234', baseUrl: 'ftp://graph.facebook.com' },
  ])('rejects %o', (config) => {
    expect(metaConfigSchema.safeParse(config).success).toBe(false);
  });
});

describe('encode', () => {
  it('normalizes every field by Meta rules, hashes all but MADID and EXTERN_ID, in mapping order', () => {
    const encoded = connector.encode(
      contact({
        email: ' Alice@Example.COM ',
        phone: '+14155550100',
        firstName: "Zoë-Anne",
        lastName: "O'Brien",
        zip: 'SW1A 1AA',
        country: 'GB',
        mobileAdId: 'AB12CD34-0000-4000-8000-00000000ABCD',
        externalId: 'CRM-42',
      }),
      ALL_FIELDS_MAPPING,
    );

    expect(encoded).toEqual({
      EMAIL: sha256('alice@example.com'),
      PHONE: sha256('14155550100'),
      FN: sha256('zoëanne'),
      LN: sha256('obrien'),
      ZIP: sha256('sw1a1aa'),
      COUNTRY: sha256('gb'),
      MADID: 'ab12cd34-0000-4000-8000-00000000abcd',
      EXTERN_ID: 'CRM-42',
    });
    expect(Object.keys(encoded ?? {})).toEqual(['EMAIL', 'PHONE', 'FN', 'LN', 'ZIP', 'COUNTRY', 'MADID', 'EXTERN_ID']);
  });

  it('strips leading zeros from phones and dashes from ZIP codes', () => {
    const mapping: FieldMapping[] = [
      { sourceField: 'zip', destinationField: 'ZIP' },
      { sourceField: 'phone', destinationField: 'PHONE' },
    ];
    const encoded = connector.encode(contact({ phone: '00447700900123', zip: '94105-1234' }), mapping);
    expect(encoded).toEqual({ ZIP: sha256('941051234'), PHONE: sha256('447700900123') });
    expect(Object.keys(encoded ?? {})).toEqual(['ZIP', 'PHONE']);
  });

  it('takes a lowercase SHA-256 value as already hashed', () => {
    const hashed = sha256('bob@example.com');
    expect(connector.encode(contact({ email: hashed }), ALL_FIELDS_MAPPING)).toEqual({ EMAIL: hashed });
  });

  it('skips empty and unusable values and returns null when nothing is left', () => {
    expect(connector.encode(contact({ email: '', country: 'USA' }), ALL_FIELDS_MAPPING)).toBeNull();
    expect(connector.encode(contact({ email: 'a@b.co', country: 'USA' }), ALL_FIELDS_MAPPING)).toEqual({
      EMAIL: sha256('a@b.co'),
    });
  });

  it('refuses a mapping to a field Meta does not have', () => {
    expect(() =>
      connector.encode(contact({ email: 'a@b.co' }), [{ sourceField: 'email', destinationField: 'E_MAIL' }]),
    ).toThrow(/E_MAIL/);
  });
});

describe('ensureAudience', () => {
  it('returns an existing audience id without calling Meta', async () => {
    await expect(connector.ensureAudience({ platformAudienceId: AUDIENCE_ID, name: 'VIPs' })).resolves.toBe(AUDIENCE_ID);
    expect(meta.requests).toHaveLength(0);
  });

  it('creates a customer-list audience on the ad account', async () => {
    const id = await connector.ensureAudience({ platformAudienceId: null, name: 'VIPs' });

    expect(meta.audiences.get(id)).toEqual(new Set());
    expect(meta.requests).toHaveLength(1);
    expect(meta.requests[0]).toMatchObject({
      method: 'POST',
      url: '/v27.0/act_1234/customaudiences',
      authorization: `Bearer ${TOKEN}`,
      body: { name: 'VIPs', subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY' },
    });
  });
});

describe('addMembers and removeMembers', () => {
  it('adds members, then removes some, leaving exactly the rest', async () => {
    const members: EncodedMember[] = [
      { contactId: 1n, identifiers: { EMAIL: sha256('a@example.com'), PHONE: sha256('14155550100') } },
      emailMember(2n, 'b@example.com'),
      { contactId: 3n, identifiers: { MADID: 'ab12cd34-0000-4000-8000-00000000abcd' } },
    ];

    const added = await connector.addMembers(AUDIENCE_ID, members, uploadSession({ estimatedTotal: 3 }));

    expect(added).toEqual({ received: 3, invalid: 0, invalidSamples: [] });
    expect(meta.audiences.get(AUDIENCE_ID)).toEqual(
      new Set([
        `EMAIL:${sha256('a@example.com')}`,
        `PHONE:${sha256('14155550100')}`,
        `EMAIL:${sha256('b@example.com')}`,
        'MADID:ab12cd34-0000-4000-8000-00000000abcd',
      ]),
    );

    const removed = await connector.removeMembers(
      AUDIENCE_ID,
      [members[0]!, members[2]!],
      uploadSession({ id: 'run-1:removes', estimatedTotal: 2 }),
    );

    expect(removed).toEqual({ received: 2, invalid: 0, invalidSamples: [] });
    expect(meta.audiences.get(AUDIENCE_ID)).toEqual(new Set([`EMAIL:${sha256('b@example.com')}`]));
    expect(meta.requests.map((r) => r.method)).toEqual(['POST', 'DELETE']);
  });

  it('sends the union of fields in connector order, with "" for fields a member lacks', async () => {
    await connector.addMembers(
      AUDIENCE_ID,
      [
        { contactId: 1n, identifiers: { EXTERN_ID: 'crm-1', EMAIL: sha256('a@example.com') } },
        { contactId: 2n, identifiers: { PHONE: sha256('14155550100') } },
      ],
      uploadSession(),
    );

    expect(meta.requests[0]?.body).toMatchObject({
      payload: {
        schema: ['EMAIL', 'PHONE', 'EXTERN_ID'],
        data: [
          [sha256('a@example.com'), '', 'crm-1'],
          ['', sha256('14155550100'), ''],
        ],
      },
    });
  });

  it('keeps the access token and the payload out of the URL', async () => {
    await connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession());

    expect(meta.requests[0]?.url).toBe(`/v27.0/${AUDIENCE_ID}/users`);
    expect(meta.requests[0]?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('carries one stable numeric session across the batches of an upload', async () => {
    await connector.addMembers(
      AUDIENCE_ID,
      [emailMember(1n, 'a@example.com')],
      uploadSession({ batchSeq: 1, lastBatch: false, estimatedTotal: 2 }),
    );
    await connector.addMembers(
      AUDIENCE_ID,
      [emailMember(2n, 'b@example.com')],
      uploadSession({ batchSeq: 2, lastBatch: true, estimatedTotal: 2 }),
    );
    await connector.addMembers(AUDIENCE_ID, [emailMember(3n, 'c@example.com')], uploadSession({ id: 'run-2:adds' }));

    const sessions = meta.requests.map((r) => (r.body as { session: Record<string, unknown> }).session);
    expect(sessions[0]).toMatchObject({ batch_seq: 1, last_batch_flag: false, estimated_num_total: 2 });
    expect(sessions[1]).toMatchObject({ batch_seq: 2, last_batch_flag: true, estimated_num_total: 2 });
    expect(Number.isSafeInteger(sessions[0]?.['session_id'])).toBe(true);
    expect(sessions[1]?.['session_id']).toBe(sessions[0]?.['session_id']);
    expect(sessions[2]?.['session_id']).not.toBe(sessions[0]?.['session_id']);
  });

  it('fails when a batch arrives out of order within a session', async () => {
    await connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession({ lastBatch: false }));
    const error = await rejection(
      connector.addMembers(AUDIENCE_ID, [emailMember(2n, 'b@example.com')], uploadSession({ batchSeq: 3 })),
    );

    expect(error.message).toMatch(/batch_seq 3 is out of order/);
    expect(error.details.retryable).toBe(false);
    expect(meta.audiences.get(AUDIENCE_ID)).toEqual(new Set([`EMAIL:${sha256('a@example.com')}`]));
  });

  it('accepts 10,000 members and refuses more without calling Meta', async () => {
    const members = Array.from({ length: 10_001 }, (_, i) => emailMember(BigInt(i), `user${i}@example.com`));

    expect(connector.maxBatchSize).toBe(10_000);
    await expect(connector.addMembers(AUDIENCE_ID, members, uploadSession())).rejects.toThrow(/at most 10000/);
    expect(meta.requests).toHaveLength(0);

    const outcome = await connector.addMembers(AUDIENCE_ID, members.slice(0, 10_000), uploadSession());
    expect(outcome.received).toBe(10_000);
    expect(meta.audiences.get(AUDIENCE_ID)?.size).toBe(10_000);
  });

  it('reports rows Meta counts as invalid and keeps the valid ones', async () => {
    const outcome = await connector.addMembers(
      AUDIENCE_ID,
      [emailMember(1n, 'a@example.com'), { contactId: 2n, identifiers: { EMAIL: 'not-a-hash' } }],
      uploadSession(),
    );

    expect(outcome.received).toBe(2);
    expect(outcome.invalid).toBe(1);
    expect(outcome.invalidSamples).toEqual([expect.stringMatching(/^not-a-hash: /)]);
    expect(meta.audiences.get(AUDIENCE_ID)).toEqual(new Set([`EMAIL:${sha256('a@example.com')}`]));
  });
});

describe('errors', () => {
  const TOKEN_MESSAGE = 'Meta rejected the access token: it has expired or is invalid — reconnect the destination';

  it('reports an expired token as not retryable, in words a marketer understands, without the token', async () => {
    meta.failNext('token-expired');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession()));

    expect(error.message).toBe(TOKEN_MESSAGE);
    expect(error.details).toMatchObject({ platform: 'META', code: 190, retryable: false });
    expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(TOKEN);
  });

  it('reports a token Meta does not recognize the same way', async () => {
    const wrongToken = 'EAAG-revoked-token';
    const error = await rejection(
      connectTo(meta.baseUrl, wrongToken).ensureAudience({ platformAudienceId: null, name: 'VIPs' }),
    );

    expect(error.message).toBe(TOKEN_MESSAGE);
    expect(error.message).not.toContain(wrongToken);
    expect(meta.audiences.size).toBe(1);
  });

  it('reports missing permissions as not retryable', async () => {
    meta.failNext('permission-denied');
    const error = await rejection(connector.ensureAudience({ platformAudienceId: null, name: 'VIPs' }));

    expect(error.message).toMatch(/permission/);
    expect(error.details).toMatchObject({ code: 200, retryable: false });
  });

  it('reports throttling as retryable with the time Meta announces', async () => {
    meta.failNext('throttle');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession()));

    expect(error.details).toMatchObject({ code: 17, retryable: true });
    expect(error.message).toContain(`about ${THROTTLE_REGAIN_MINUTES} minutes`);
  });

  it('treats HTTP 429 as throttling even without a Meta error body', async () => {
    meta.failNext('http-429');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession()));

    expect(error.details).toMatchObject({ status: 429, retryable: true });
    expect(error.message).toMatch(/rate-limiting/);
  });

  it('reports server errors as retryable, and the retried batch then succeeds', async () => {
    meta.failNext('server-error');
    const members = [emailMember(1n, 'a@example.com')];
    const error = await rejection(connector.addMembers(AUDIENCE_ID, members, uploadSession()));

    expect(error.details).toMatchObject({ status: 500, retryable: true });
    await expect(connector.addMembers(AUDIENCE_ID, members, uploadSession())).resolves.toMatchObject({ received: 1 });
  });

  it('reports an unreachable Meta as retryable', async () => {
    const gone = await startFakeMeta({ accessToken: TOKEN });
    await gone.close();
    const error = await rejection(connectTo(gone.baseUrl).addMembers(AUDIENCE_ID, [emailMember(1n, 'a@b.co')], uploadSession()));

    expect(error.details.retryable).toBe(true);
    expect(error.message).toMatch(/Could not reach Meta/);
  });

  it('reports removals refused because the audience would be too small as a refused batch, not a failure', async () => {
    await connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession());
    meta.failNext('audience-too-small');
    const outcome = await connector.removeMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession({ id: 'removal' }));

    expect(outcome.refused).toMatch(/too small/);
    expect(outcome.received).toBe(0);
    expect(meta.audiences.get(AUDIENCE_ID)).toEqual(new Set([`EMAIL:${sha256('a@example.com')}`]));
  });

  it('reads "Audience Size too Low" by its subcode and title, not as the permissions error its code 200 would be', async () => {
    meta.failNext('audience-too-small');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession()));

    expect(error.message).not.toMatch(/permission/);
    expect(error.message).toMatch(/too small/);
  });

  it('reports an audience Meta flagged (health or financial status) plainly, with what Meta expects, not retryable', async () => {
    meta.flagged.add(AUDIENCE_ID);
    const error = await rejection(connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession()));

    expect(error.message).toMatch(/flagged the audience as possibly implying health or financial status/);
    expect(error.message).toMatch(/appeal the restriction in Ads Manager.*or to create a new audience/);
    expect(error.details).toMatchObject({ code: 1713230, retryable: false });
    const removal = await rejection(connector.removeMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], uploadSession({ id: 'r' })));
    expect(removal.message).toBe(error.message);
  });

  it('reports an audience that does not exist as not retryable', async () => {
    const error = await rejection(connector.addMembers('999', [emailMember(1n, 'a@example.com')], uploadSession()));

    expect(error.message).toMatch(/audience does not exist/);
    expect(error.details).toMatchObject({ code: 100, retryable: false });
  });
});
