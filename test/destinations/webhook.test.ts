import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DestinationError,
  type DestinationConnector,
  type EncodedMember,
  type FieldMapping,
  type UploadSession,
} from '../../src/destinations/destination.js';
import {
  createWebhookConnector,
  webhookConfigSchema,
  webhookCredentialsSchema,
  type WebhookCredentials,
} from '../../src/destinations/webhook/connector.js';
import { setAddressPolicy } from '../../src/infra/address-policy.js';
import {
  THROTTLE_RETRY_AFTER_SECONDS,
  startFakeWebhookReceiver,
  type FakeWebhookReceiver,
  type ReceivedRequest,
} from '../fakes/webhook-receiver.js';
import { contact, rejection, sha256, uploadSession } from '../support/connectors.js';

const SECRET = 'whsec-0123456789abcdef0123456789abcdef';
const RECEIVER_TOKEN = 'receiver-token-5f3a9c';
const CREDENTIALS: WebhookCredentials = {
  signingSecret: SECRET,
  headers: { Authorization: `Bearer ${RECEIVER_TOKEN}` },
};
// The receiver is a fake on loopback: private addresses are allowed, except where a test says otherwise.
const LOOPBACK_ALLOWED = { allowPrivate: true, allowCustomPlatformUrls: false };
const PRIVATE_REFUSED = { allowPrivate: false, allowCustomPlatformUrls: false };
const AUDIENCE_ID = 'vip-customers';

const ALL_FIELDS_MAPPING: FieldMapping[] = [
  { sourceField: 'email', destinationField: 'EMAIL_SHA256' },
  { sourceField: 'phone', destinationField: 'PHONE_SHA256' },
  { sourceField: 'firstName', destinationField: 'FIRST_NAME_SHA256' },
  { sourceField: 'lastName', destinationField: 'LAST_NAME_SHA256' },
  { sourceField: 'zip', destinationField: 'ZIP' },
  { sourceField: 'country', destinationField: 'COUNTRY' },
  { sourceField: 'externalId', destinationField: 'EXTERNAL_ID' },
  { sourceField: 'mobileAdId', destinationField: 'MOBILE_AD_ID' },
];

function emailMember(contactId: bigint, email: string): EncodedMember {
  return { contactId, identifiers: { EMAIL_SHA256: sha256(email) } };
}

function session(overrides: Partial<UploadSession> = {}): UploadSession {
  return uploadSession({ id: '6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b', ...overrides });
}

let receiver: FakeWebhookReceiver;
let connector: DestinationConnector;

function connectTo(url: string, options: { credentials?: WebhookCredentials; batchSize?: number } = {}): DestinationConnector {
  return createWebhookConnector({ url, batchSize: options.batchSize ?? 1_000 }, options.credentials ?? CREDENTIALS);
}

beforeEach(async () => {
  setAddressPolicy(LOOPBACK_ALLOWED);
  receiver = await startFakeWebhookReceiver({
    signingSecret: SECRET,
    requiredHeaders: { authorization: `Bearer ${RECEIVER_TOKEN}` },
  });
  connector = connectTo(receiver.url);
});

afterEach(() => receiver.close());

/** The signature a receiver computes, independently of the connector's code. */
function expectedSignature(request: ReceivedRequest, secret = SECRET): string {
  const timestamp = String(request.headers['x-timestamp']);
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${request.rawBody}`).digest('hex')}`;
}

describe('webhookConfigSchema', () => {
  it('defaults the batch size to 1,000 and takes up to 10,000', () => {
    expect(webhookConfigSchema.parse({ url: 'https://hooks.example.com/a' })).toEqual({
      url: 'https://hooks.example.com/a',
      batchSize: 1_000,
    });
    expect(webhookConfigSchema.parse({ url: 'https://hooks.example.com/a', batchSize: 10_000 }).batchSize).toBe(10_000);
  });

  it.each([0, 10_001, 1.5, '100'])('refuses batchSize %o', (batchSize) => {
    expect(webhookConfigSchema.safeParse({ url: 'https://hooks.example.com/a', batchSize }).success).toBe(false);
  });

  it('refuses headers in the config, pointing to the credentials', () => {
    const result = webhookConfigSchema.safeParse({ url: 'https://hooks.example.com/a', headers: { Authorization: 'x' } });
    expect(result.error?.issues[0]?.message).toMatch(/headers go in the credentials/);
  });

  it('applies the process policy: loopback only once the operator allows private URLs', () => {
    const config = { url: 'http://127.0.0.1:8080/hook' };
    setAddressPolicy(PRIVATE_REFUSED);
    expect(webhookConfigSchema.safeParse(config).error?.issues[0]).toMatchObject({
      path: ['url'],
      message: expect.stringMatching(/must use https/),
    });
    setAddressPolicy(LOOPBACK_ALLOWED);
    expect(webhookConfigSchema.safeParse(config).success).toBe(true);
  });
});

describe('webhookCredentialsSchema', () => {
  it('takes a signing secret of at least 32 characters and optional headers', () => {
    expect(webhookCredentialsSchema.parse({ signingSecret: 'a'.repeat(32) })).toEqual({
      signingSecret: 'a'.repeat(32),
      headers: {},
    });
    expect(webhookCredentialsSchema.safeParse({ signingSecret: 'a'.repeat(31) }).error?.issues[0]?.message).toMatch(
      /at least 32 characters/,
    );
  });

  it.each([
    [{ 'X-Signature': 'forged' }, /set by the gateway/],
    [{ 'content-type': 'text/plain' }, /set by the gateway/],
    [{ 'Bad Header': 'value' }, /valid HTTP header name/],
    [{ 'X-Api-Key': 'secret-value\r\nX-Injected: 1' }, /line breaks/],
    [{ Authorization: 'Bearer …' }, /printable ASCII/],
  ])('refuses the headers %o without repeating their values', (headers, problem) => {
    const result = webhookCredentialsSchema.safeParse({ signingSecret: SECRET, headers });
    expect(result.success).toBe(false);
    const messages = result.error!.issues.map((issue) => issue.message).join('; ');
    expect(messages).toMatch(problem);
    for (const value of Object.values(headers)) expect(messages).not.toContain(value);
  });
});

describe('encode', () => {
  it('normalizes every field as documented, hashing the *_SHA256 fields only', () => {
    const encoded = connector.encode(
      contact({
        email: ' Alice@Example.COM ',
        phone: '+14155550100',
        firstName: '  Zoë   Anne ',
        lastName: "O'Brien",
        zip: 'sw1a 1aa',
        country: 'gb',
        externalId: ' CRM-42 ',
        mobileAdId: 'AB12CD34-0000-4000-8000-00000000ABCD',
      }),
      ALL_FIELDS_MAPPING,
    );

    expect(encoded).toEqual({
      EMAIL_SHA256: sha256('alice@example.com'),
      PHONE_SHA256: sha256('+14155550100'),
      FIRST_NAME_SHA256: sha256('zoë anne'),
      LAST_NAME_SHA256: sha256("o'brien"),
      ZIP: 'SW1A1AA',
      COUNTRY: 'GB',
      EXTERNAL_ID: 'CRM-42',
      MOBILE_AD_ID: 'ab12cd34-0000-4000-8000-00000000abcd',
    });
  });

  it('keeps the + of E.164 phones and drops formatting', () => {
    const mapping: FieldMapping[] = [{ sourceField: 'phone', destinationField: 'PHONE_SHA256' }];
    expect(connector.encode(contact({ phone: '+44 7700 900123' }), mapping)).toEqual({
      PHONE_SHA256: sha256('+447700900123'),
    });
  });

  it('passes pre-hashed emails and phones through', () => {
    const email = sha256('bob@example.com');
    const phone = sha256('+14155550100');
    expect(connector.encode(contact({ email, phone }), ALL_FIELDS_MAPPING)).toEqual({
      EMAIL_SHA256: email,
      PHONE_SHA256: phone,
    });
  });

  it('skips empty and unusable values and returns null when nothing is left', () => {
    expect(connector.encode(contact({ email: '', country: 'USA', phone: '()' }), ALL_FIELDS_MAPPING)).toBeNull();
    expect(connector.encode(contact({ email: 'a@b.co', country: 'USA' }), ALL_FIELDS_MAPPING)).toEqual({
      EMAIL_SHA256: sha256('a@b.co'),
    });
  });

  it('refuses a mapping to a field webhooks do not have', () => {
    expect(() =>
      connector.encode(contact({ email: 'a@b.co' }), [{ sourceField: 'email', destinationField: 'EMAIL' }]),
    ).toThrow(/no field "EMAIL"/);
  });
});

describe('ensureAudience', () => {
  it('returns the given id, or a stable slug of the name, without calling the receiver', async () => {
    await expect(connector.ensureAudience({ platformAudienceId: 'crm-list-7', name: 'VIPs' })).resolves.toBe('crm-list-7');
    await expect(connector.ensureAudience({ platformAudienceId: null, name: 'Récent buyers (FR)!' })).resolves.toBe(
      'recent-buyers-fr',
    );
    const symbolsOnly = await connector.ensureAudience({ platformAudienceId: null, name: '★★★' });
    expect(symbolsOnly).toMatch(/^audience-[0-9a-f]{12}$/);
    await expect(connector.ensureAudience({ platformAudienceId: null, name: '★★★' })).resolves.toBe(symbolsOnly);
    expect(receiver.requests).toEqual([]);
  });
});

describe('addMembers and removeMembers', () => {
  it('POSTs signed JSON events; the receiver ends up holding exactly the members left', async () => {
    await connector.ensureAudience({ platformAudienceId: AUDIENCE_ID, name: 'VIP customers' });
    const members: EncodedMember[] = [
      { contactId: 1n, identifiers: { EMAIL_SHA256: sha256('a@example.com'), PHONE_SHA256: sha256('+14155550100') } },
      emailMember(2n, 'b@example.com'),
      { contactId: 3n, identifiers: { EXTERNAL_ID: 'crm-3' } },
    ];
    const addSession = session({ estimatedTotal: 3 });

    const added = await connector.addMembers(AUDIENCE_ID, members, addSession);

    expect(added).toEqual({ invalid: 0, invalidSamples: [] });
    const [request] = receiver.requests;
    expect(request).toMatchObject({ method: 'POST', url: '/hooks/audiences', status: 204 });
    const deliveryId = request!.headers['x-delivery-id'];
    expect(deliveryId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(request!.body).toEqual({
      type: 'audience.members.added',
      id: deliveryId,
      audience: { id: AUDIENCE_ID, name: 'VIP customers' },
      batch: { session: addSession.id, sequence: 1, last: true, estimatedTotal: 3, size: 3 },
      members: [
        { identifiers: { EMAIL_SHA256: sha256('a@example.com'), PHONE_SHA256: sha256('+14155550100') } },
        { identifiers: { EMAIL_SHA256: sha256('b@example.com') } },
        { identifiers: { EXTERNAL_ID: 'crm-3' } },
      ],
    });
    expect(request!.headers).toMatchObject({
      'content-type': 'application/json',
      authorization: `Bearer ${RECEIVER_TOKEN}`,
      'x-signature': expectedSignature(request!),
    });
    expect(Math.abs(Number(request!.headers['x-timestamp']) - Date.now() / 1000)).toBeLessThan(5);

    const removed = await connector.removeMembers(
      AUDIENCE_ID,
      [members[0]!, members[2]!],
      session({ id: '0a9b8c7d-6e5f-4a3b-9c1d-2e3f4a5b6c7d', estimatedTotal: 2 }),
    );

    expect(removed).toEqual({ invalid: 0, invalidSamples: [] });
    expect(receiver.deliveries.map((delivery) => delivery.type)).toEqual([
      'audience.members.added',
      'audience.members.removed',
    ]);
    expect(receiver.audiences.get(AUDIENCE_ID)).toEqual([{ EMAIL_SHA256: sha256('b@example.com') }]);
  });

  it('gives every attempt at one batch the same delivery id, and other batches other ids', async () => {
    const members = [emailMember(1n, 'a@example.com')];
    receiver.failNext('server-error');
    await rejection(connector.addMembers(AUDIENCE_ID, members, session({ lastBatch: false })));
    await connector.addMembers(AUDIENCE_ID, members, session({ lastBatch: false }));
    await connector.addMembers(AUDIENCE_ID, [emailMember(2n, 'b@example.com')], session({ batchSeq: 2 }));

    const ids = receiver.requests.map((request) => request.headers['x-delivery-id']);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(receiver.deliveries.map((delivery) => delivery.sequence)).toEqual([1, 2]);
  });

  it('applies a batch once when its reply was lost and it is sent again', async () => {
    const members = [emailMember(1n, 'a@example.com'), emailMember(2n, 'b@example.com')];
    receiver.failNext('lost-reply');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, members, session()));
    expect(error.details).toMatchObject({ status: 502, retryable: true });

    await expect(connector.addMembers(AUDIENCE_ID, members, session())).resolves.toEqual({ invalid: 0, invalidSamples: [] });
    expect(receiver.deliveries).toHaveLength(1);
    expect(receiver.duplicates).toEqual([receiver.deliveries[0]!.id]);
    expect(receiver.held('EMAIL_SHA256')).toEqual([sha256('a@example.com'), sha256('b@example.com')].sort());
  });

  it('sends at most the configured batch size and refuses more without a request', async () => {
    const small = connectTo(receiver.url, { batchSize: 2 });
    const members = ['a', 'b', 'c'].map((name, i) => emailMember(BigInt(i), `${name}@example.com`));

    expect(small.maxBatchSize).toBe(2);
    await expect(small.addMembers(AUDIENCE_ID, members, session())).rejects.toThrow(/at most 2 members/);
    expect(receiver.requests).toEqual([]);
    await expect(small.addMembers(AUDIENCE_ID, members.slice(0, 2), session())).resolves.toEqual({ invalid: 0, invalidSamples: [] });
  });

  it('carries 10,000 members in one request at the largest batch size', async () => {
    const large = connectTo(receiver.url, { batchSize: 10_000 });
    const members = Array.from({ length: 10_000 }, (_, i) => emailMember(BigInt(i), `user${i}@example.com`));

    expect(large.maxBatchSize).toBe(10_000);
    await expect(large.addMembers(AUDIENCE_ID, members, session())).resolves.toEqual({ invalid: 0, invalidSamples: [] });
    expect(receiver.audiences.get(AUDIENCE_ID)).toHaveLength(10_000);
  });

  it('counts the members the receiver rejects as invalid, with their reasons', async () => {
    const unknown = sha256('ghost@example.com');
    receiver.rejectMembers((identifiers) => (identifiers['EMAIL_SHA256'] === unknown ? 'no such customer in the CRM' : null));

    const outcome = await connector.addMembers(
      AUDIENCE_ID,
      [emailMember(1n, 'a@example.com'), { contactId: 2n, identifiers: { EMAIL_SHA256: unknown } }],
      session(),
    );

    expect(outcome).toEqual({ invalid: 1, invalidSamples: ['member 1: no such customer in the CRM'] });
    expect(receiver.held('EMAIL_SHA256')).toEqual([sha256('a@example.com')]);
  });

  it('fails the batch when the receiver’s rejected list names members the batch does not have', async () => {
    receiver.failNext('bad-rejections');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, [emailMember(1n, 'a@example.com')], session()));

    expect(error.message).toMatch(/invalid "rejected" list/);
    expect(error.details.retryable).toBe(false);
  });
});

describe('errors', () => {
  const members = [emailMember(1n, 'a@example.com')];
  const secretsIn = (error: DestinationError) => JSON.stringify({ message: error.message, details: error.details });

  it('reports a signature the receiver refuses as not retryable, pointing at the signing secret', async () => {
    receiver.signingSecret = 'another-secret-of-at-least-32-characters';
    const error = await rejection(connector.addMembers(AUDIENCE_ID, members, session()));

    expect(error.message).toMatch(/refused our signature or credentials \(HTTP 401\) — check the signing secret/);
    expect(error.details).toEqual({ platform: 'WEBHOOK', status: 401, retryable: false });
    expect(secretsIn(error)).not.toContain(SECRET);
    expect(receiver.deliveries).toEqual([]);
  });

  it('reports a 403, or a missing receiver header, the same way', async () => {
    receiver.failNext('forbidden');
    expect((await rejection(connector.addMembers(AUDIENCE_ID, members, session()))).details).toMatchObject({
      status: 403,
      retryable: false,
    });
    const withoutHeader = connectTo(receiver.url, { credentials: { signingSecret: SECRET, headers: {} } });
    const error = await rejection(withoutHeader.addMembers(AUDIENCE_ID, members, session()));
    expect(error.message).toMatch(/check the signing secret/);
  });

  it('reports throttling as retryable, waiting as long as Retry-After says', async () => {
    receiver.failNext('throttle');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, members, session()));

    expect(error.details).toEqual({
      platform: 'WEBHOOK',
      status: 429,
      retryable: true,
      retryAfterMs: THROTTLE_RETRY_AFTER_SECONDS * 1000,
    });
    expect(error.message).toMatch(/rate-limiting.*retry in about 1 s/);
  });

  it('reports 5xx as retryable', async () => {
    receiver.failNext('server-error');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, members, session()));

    expect(error.details).toEqual({ platform: 'WEBHOOK', status: 503, retryable: true });
    expect(error.message).toMatch(/temporary problem \(HTTP 503\)/);
  });

  it('reports another 4xx as not retryable with a short excerpt of the reply, secrets hidden', async () => {
    receiver.failNext('bad-request');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, members, session()));

    const prefix = 'The webhook rejected the request (HTTP 422): ';
    expect(error.message.startsWith(prefix)).toBe(true);
    expect(error.message.length - prefix.length).toBeLessThanOrEqual(200);
    expect(error.message).toContain('The audience payload failed validation');
    expect(error.details).toEqual({ platform: 'WEBHOOK', status: 422, retryable: false });
    // The receiver echoed the Authorization header; the excerpt hides it.
    expect(error.message).toContain('"authorization":"[redacted]"');
    expect(secretsIn(error)).not.toContain(RECEIVER_TOKEN);
  });

  it('does not follow redirects', async () => {
    receiver.failNext('redirect');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, members, session()));

    expect(error.message).toMatch(/redirect \(HTTP 302\)/);
    expect(error.details.retryable).toBe(false);
    expect(receiver.requests).toHaveLength(1);
  });

  it('refuses a reply of more than 1 MB', async () => {
    receiver.failNext('huge-reply');
    const error = await rejection(connector.addMembers(AUDIENCE_ID, members, session()));

    expect(error.message).toMatch(/more than 1 MB/);
    expect(error.details.retryable).toBe(false);
  });

  it('reports an unreachable receiver as retryable', async () => {
    const gone = await startFakeWebhookReceiver({ signingSecret: SECRET });
    await gone.close();
    const error = await rejection(connectTo(gone.url).addMembers(AUDIENCE_ID, members, session()));

    expect(error.details.retryable).toBe(true);
    expect(error.message).toMatch(/Could not reach the webhook at 127\.0\.0\.1:\d+/);
  });

  it('refuses to send to a private address unless the operator allows it', async () => {
    const saved = connectTo(receiver.url);
    setAddressPolicy(PRIVATE_REFUSED);
    const error = await rejection(saved.addMembers(AUDIENCE_ID, members, session()));

    expect(error.message).toMatch(/private, loopback or link-local address/);
    expect(error.details.retryable).toBe(false);
    expect(receiver.requests).toEqual([]);
  });
});

describe('checkAccess', () => {
  it('POSTs a signed ping and changes nothing', async () => {
    await expect(connector.checkAccess()).resolves.toMatch(/^The webhook at 127\.0\.0\.1:\d+ accepted a signed ping$/);

    const [ping] = receiver.requests;
    expect(ping).toMatchObject({ status: 204, body: { type: 'ping', id: ping!.headers['x-delivery-id'] } });
    expect(ping!.headers['x-signature']).toBe(expectedSignature(ping!));
    expect(receiver.deliveries).toEqual([]);
  });

  it('fails when the receiver refuses the signature', async () => {
    receiver.signingSecret = 'another-secret-of-at-least-32-characters';
    const error = await rejection(connector.checkAccess());
    expect(error.details).toMatchObject({ status: 401, retryable: false });
  });
});

describe('the receiver recipe in the README', () => {
  it('refuses a correctly signed request whose timestamp is more than 5 minutes old', async () => {
    const timestamp = String(Math.floor(Date.now() / 1000) - 301);
    const body = JSON.stringify({ type: 'ping', id: '1b4e28ba-2fa1-41d2-883f-0016d3cca427' });
    const signature = createHmac('sha256', SECRET).update(`${timestamp}.${body}`).digest('hex');
    const response = await fetch(receiver.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${RECEIVER_TOKEN}`,
        'x-timestamp': timestamp,
        'x-signature': `sha256=${signature}`,
        'x-delivery-id': '1b4e28ba-2fa1-41d2-883f-0016d3cca427',
      },
      body,
    });
    expect(response.status).toBe(401);
    expect(await response.text()).toMatch(/too old/);
  });
});
