import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { setAddressPolicy } from '../../src/infra/address-policy.js';
import { db } from '../../src/infra/db.js';
import { secretBox } from '../../src/infra/secrets.js';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import type {
  CreateDestinationInput,
  DestinationConfigInput,
  DestinationCredentialsInput,
  UpdateDestinationInput,
} from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { answersToForeignAndUnknownId, answersToMalformedAndUnknownId, malformedIds } from '../support/global-ids.js';
import {
  CreateDestination,
  DeleteAudienceSync,
  DeleteDestination,
  ListDestinations,
  NodeById,
  UpdateDestination,
  TestDestination,
} from '../support/operations.js';
import { META_TOKEN, createAudienceWith, createMetaDestination, createSync, dataOf, expectType } from '../support/scenario.js';
import { expectNothingWritten } from '../support/tables.js';

let gateway: TestGateway;
let fake: FakeMeta;
beforeAll(async () => {
  gateway = await startTestGateway();
  fake = await startFakeMeta({ accessToken: META_TOKEN });
});
afterAll(async () => {
  await fake.close();
  await gateway.stop();
});
beforeEach(() => gateway.reset());

const metaInput = (overrides: Partial<CreateDestinationInput> = {}): CreateDestinationInput => ({
  name: 'Meta ads',
  config: { meta: { adAccountId: 'act_1234567890', baseUrl: fake.baseUrl } },
  credentials: { meta: { accessToken: META_TOKEN } },
  ...overrides,
});

async function createDestination(input: CreateDestinationInput) {
  return dataOf(await gateway.execute(CreateDestination, { input })).createDestination;
}

async function updateDestination(id: string, input: UpdateDestinationInput) {
  return dataOf(await gateway.execute(UpdateDestination, { id, input })).updateDestination;
}

async function deleteDestination(id: string) {
  return dataOf(await gateway.execute(DeleteDestination, { id })).deleteDestination;
}

/** The destination's row as stored. */
const storedDestination = (id: string) => db().destination.findUniqueOrThrow({ where: { id: decodeGlobalID(id).id } });

/** Checks the stored credentials are AES-GCM sealed (they open with the app's key to `credentials`),
 * not the plain token. */
async function expectSealedCredentials(id: string, credentials: { accessToken: string }) {
  const { credentials: stored } = await storedDestination(id);
  expect(stored).not.toContain(credentials.accessToken);
  expect(stored).not.toContain(Buffer.from(credentials.accessToken).toString('base64'));
  expect(JSON.parse(secretBox().open(stored!))).toEqual(credentials);
}

describe('createDestination', () => {
  test('stores the credentials sealed and never returns them, only a hint of their last 4 characters', async () => {
    const result = await createDestination(metaInput());

    const destination = expectType(result, 'CreateDestinationSuccess').destination;
    expect(destination).toMatchObject({
      name: 'Meta ads',
      platform: 'META',
      config: { __typename: 'MetaConfig', adAccountId: 'act_1234567890', baseUrl: fake.baseUrl, apiVersion: 'V27_0' },
      credentialsConfigured: true,
      credentialsHint: `…${META_TOKEN.slice(-4)}`,
    });
    expect(JSON.stringify(result)).not.toContain(META_TOKEN);
    await expectSealedCredentials(destination.id, { accessToken: META_TOKEN });
  });

  test('a destination without credentials says so', async () => {
    const destination = expectType(await createDestination(metaInput({ credentials: null })), 'CreateDestinationSuccess')
      .destination;

    expect(destination).toMatchObject({ credentialsConfigured: false, credentialsHint: null });
  });

  test.each<[string, string, Partial<CreateDestinationInput>]>([
    ['a Meta adAccountId that is not an account number', 'input.config.meta.adAccountId', { config: { meta: { adAccountId: 'my account' } } }],
    ['a Meta baseUrl that is not an http(s) URL', 'input.config.meta.baseUrl', { config: { meta: { adAccountId: '1234', baseUrl: 'ftp://meta' } } }],
    ['an empty Meta accessToken', 'input.credentials.meta.accessToken', { credentials: { meta: { accessToken: '' } } }],
    ['credentials of another platform than the config', 'input.credentials.webhook', { credentials: { webhook: { signingSecret: 's'.repeat(40) } } }],
    ['a name of 256 characters', 'input.name', { name: 'n'.repeat(256) }],
  ])('%s is a ValidationError on %s and stores nothing', async (_case, field, overrides) => {
    const result = await expectNothingWritten(() => createDestination(metaInput(overrides)));

    expect(expectType(result, 'ValidationError').field).toBe(field);
  });

  test.each<[string, DestinationConfigInput, RegExp]>([
    ['an unknown platform', { tiktok: { adAccountId: '1' } } as unknown as DestinationConfigInput, /Field "tiktok" is not defined by type "DestinationConfigInput"/],
    ['two platforms at once', { meta: { adAccountId: '1' }, x: { accountId: 'abc' } } as unknown as DestinationConfigInput, /Exactly one key must be specified for OneOf type "DestinationConfigInput"/],
    ['no platform', {} as DestinationConfigInput, /Exactly one key must be specified for OneOf type "DestinationConfigInput"/],
  ])('a config with %s is refused by GraphQL validation (@oneOf) and stores nothing', async (_case, config, message) => {
    const result = await expectNothingWritten(() => gateway.execute(CreateDestination, { input: metaInput({ config }) }));

    expect(result.data).toBeUndefined();
    expect(result.errors?.[0]?.message).toMatch(message);
  });

  test('LinkedIn and X settings read back as their own config types, with the defaults applied and no secret', async () => {
    const linkedIn = await createDestination({
      name: 'LinkedIn',
      config: { linkedin: { adAccountId: '5070' } },
      credentials: { linkedin: { accessToken: 'AQV-linkedin-token' } },
    });
    const x = await createDestination({
      name: 'X',
      config: { x: { accountId: '18ce54d4x5t' } },
      credentials: { x: { consumerKey: 'ck', consumerSecret: 'cs-secret', accessToken: 'at', accessTokenSecret: 'ats-secret-of-the-user' } },
    });

    expect(expectType(linkedIn, 'CreateDestinationSuccess').destination).toMatchObject({
      platform: 'LINKEDIN',
      config: {
        __typename: 'LinkedInConfig',
        adAccountId: '5070',
        linkedInApiVersion: 'V202603',
        baseUrl: 'https://api.linkedin.com',
        sourcePlatform: null,
        segmentReadyDelayMs: 5_000,
      },
    });
    expect(expectType(x, 'CreateDestinationSuccess').destination).toMatchObject({
      platform: 'X',
      config: { __typename: 'XConfig', accountId: '18ce54d4x5t', baseUrl: 'https://ads-api.x.com' },
      credentialsHint: '…user',
    });
    expect(JSON.stringify([linkedIn, x])).not.toMatch(/AQV-linkedin-token|cs-secret|ats-secret-of-the-user/);
  });

  test('the platform is the member of config given: a webhook is a WEBHOOK destination', async () => {
    const result = await createDestination({
      name: 'Hook',
      config: { webhook: { url: 'https://hooks.example.com/a' } },
      credentials: { webhook: { signingSecret: 's'.repeat(40) } },
    });

    expect(expectType(result, 'CreateDestinationSuccess').destination).toMatchObject({
      platform: 'WEBHOOK',
      config: { __typename: 'WebhookConfig', url: 'https://hooks.example.com/a', batchSize: 1_000 },
    });
  });
});

describe('updateDestination', () => {
  test('changes only the fields given: a new name keeps the config and the sealed credentials', async () => {
    const created = await createMetaDestination(gateway, fake);
    const before = await storedDestination(created.id);

    const result = await updateDestination(created.id, { name: 'Meta (EU)' });

    expect(expectType(result, 'UpdateDestinationSuccess').destination).toEqual({ ...created, name: 'Meta (EU)' });
    expect(await storedDestination(created.id)).toMatchObject({ config: before.config, credentials: before.credentials });
  });

  test('new credentials replace the stored ones, sealed, and are not returned', async () => {
    const created = await createMetaDestination(gateway, fake);
    const rotated = 'EAAB-rotated-token-9876';

    const result = await updateDestination(created.id, { credentials: { meta: { accessToken: rotated } } });

    const destination = expectType(result, 'UpdateDestinationSuccess').destination;
    expect(destination).toMatchObject({ credentialsConfigured: true, credentialsHint: '…9876' });
    expect(JSON.stringify(result)).not.toContain(rotated);
    await expectSealedCredentials(created.id, { accessToken: rotated });
  });

  test('an invalid config is a ValidationError on input.config.meta.* and changes nothing', async () => {
    const created = await createMetaDestination(gateway, fake);

    const result = await expectNothingWritten(() =>
      updateDestination(created.id, { config: { meta: { adAccountId: 'act_1234567890', baseUrl: 'not a url' } } }),
    );

    expect(expectType(result, 'ValidationError').field).toBe('input.config.meta.baseUrl');
  });

  test('a new config replaces the stored one: settings left out take their defaults', async () => {
    const created = await createMetaDestination(gateway, fake);

    const result = await updateDestination(created.id, { config: { meta: { adAccountId: '42', apiVersion: 'V26_0' } } });

    expect(expectType(result, 'UpdateDestinationSuccess').destination.config).toEqual({
      __typename: 'MetaConfig',
      adAccountId: '42',
      apiVersion: 'V26_0',
      baseUrl: 'https://graph.facebook.com',
    });
  });

  test.each<[string, UpdateDestinationInput, string, RegExp]>([
    ['a LinkedIn config', { config: { linkedin: { adAccountId: '123' } } }, 'input.config.linkedin', /Meta destination: give config\.meta, not config\.linkedin/],
    [
      'X credentials',
      { credentials: { x: { consumerKey: 'k', consumerSecret: 's', accessToken: 't', accessTokenSecret: 'u' } } },
      'input.credentials.x',
      /Meta destination: give credentials\.meta, not credentials\.x/,
    ],
  ])('%s for a Meta destination is a ValidationError naming the member, and changes nothing', async (_case, input, field, message) => {
    const created = await createMetaDestination(gateway, fake);

    const result = await expectNothingWritten(() => updateDestination(created.id, input));

    expect(expectType(result, 'ValidationError').issues).toEqual([{ field, message: expect.stringMatching(message) }]);
  });
});

describe('webhook headers', () => {
  const hook = (headers: { name: string; value: string }[]): CreateDestinationInput => ({
    name: 'Hook',
    config: { webhook: { url: 'https://hooks.example.com/a' } },
    credentials: { webhook: { signingSecret: 's'.repeat(40), headers } },
  });

  test.each(['__proto__', 'constructor', 'prototype'])('a header named %s is a ValidationError at its place in the list, nothing stored', async (name) => {
    const result = await expectNothingWritten(() =>
      createDestination(hook([{ name: 'Authorization', value: 'Bearer t' }, { name, value: 'x' }])),
    );

    expect(expectType(result, 'ValidationError').issues).toEqual([
      { field: 'input.credentials.webhook.headers.1.name', message: expect.stringContaining(`"${name}" is refused`) },
    ]);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  test('a header given twice (in any case) is refused instead of one value replacing the other', async () => {
    const result = await expectNothingWritten(() =>
      createDestination(hook([{ name: 'Authorization', value: 'Bearer a' }, { name: 'authorization', value: 'Bearer b' }])),
    );

    expect(expectType(result, 'ValidationError').issues).toEqual([
      { field: 'input.credentials.webhook.headers.1.name', message: 'authorization is already given (headers.0): give each header once' },
    ]);
  });

  test('the connector’s header rules point at the header in the list', async () => {
    const result = await expectNothingWritten(() =>
      createDestination(hook([{ name: 'X-Tenant', value: 'a' }, { name: 'Content-Type', value: 'text/plain' }])),
    );

    expect(expectType(result, 'ValidationError').issues).toEqual([
      { field: 'input.credentials.webhook.headers.1', message: 'Content-Type is set by the gateway and cannot be replaced' },
    ]);
  });
});

describe('platform URLs under the default address policy', () => {
  const DEFAULT_POLICY = { allowPrivate: false, allowCustomPlatformUrls: false };
  const LOOPBACK_FAKES = { allowPrivate: true, allowCustomPlatformUrls: true };
  afterEach(() => setAddressPolicy(LOOPBACK_FAKES));

  const configs: [string, DestinationConfigInput, DestinationCredentialsInput][] = [
    ['meta baseUrl', { meta: { adAccountId: 'act_1', baseUrl: 'https://graph.example.com' } }, { meta: { accessToken: 't' } }],
    ['linkedin baseUrl', { linkedin: { adAccountId: '1', baseUrl: 'https://api.example.com' } }, { linkedin: { accessToken: 't' } }],
    [
      'x baseUrl',
      { x: { accountId: 'abc', baseUrl: 'https://ads.example.com' } },
      { x: { consumerKey: 'k', consumerSecret: 's', accessToken: 't', accessTokenSecret: 'u' } },
    ],
    ...(['baseUrl', 'tokenUrl'] as const).map((setting): [string, DestinationConfigInput, DestinationCredentialsInput] => [
      `google ${setting}`,
      {
        google: {
          operatingAccount: { accountId: '123' },
          consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
          customerMatchTermsAccepted: true,
          [setting]: 'https://google.example.com',
        },
      },
      { google: { accessToken: 't' } },
    ]),
  ];

  test.each(configs)('a custom %s is refused with a field error saying how the operator allows it', async (label, config, credentials) => {
    setAddressPolicy(DEFAULT_POLICY);
    const [member, setting] = label.split(' ');

    const result = await expectNothingWritten(() => createDestination({ name: label, config, credentials }));

    const error = expectType(result, 'ValidationError');
    expect(error.field).toBe(`input.config.${member}.${setting}`);
    expect(error.message).toMatch(/ALLOW_CUSTOM_PLATFORM_URLS=true/);
  });

  test('the platform’s own URL, or none, is accepted', async () => {
    setAddressPolicy(DEFAULT_POLICY);
    for (const meta of [{ adAccountId: 'act_1' }, { adAccountId: 'act_1', baseUrl: 'https://graph.facebook.com/' }]) {
      expectType(await createDestination(metaInput({ config: { meta } })), 'CreateDestinationSuccess');
    }
  });

  test('a destination saved when custom URLs were allowed calls nothing once they are not: testDestination says why', async () => {
    const created = await createMetaDestination(gateway, fake);
    fake.requests.length = 0;

    setAddressPolicy(DEFAULT_POLICY);
    const refused = dataOf(await gateway.execute(TestDestination, { id: created.id })).testDestination;
    expect(expectType(refused, 'TestDestinationSuccess')).toMatchObject({ ok: false, retryable: false });
    expect(expectType(refused, 'TestDestinationSuccess').message).toMatch(/baseUrl.*not allowed on this gateway|not allowed on this gateway.*baseUrl/);

    // Custom URLs allowed, private addresses not: the fake on loopback is still out of reach.
    setAddressPolicy({ allowPrivate: false, allowCustomPlatformUrls: true });
    const stillRefused = dataOf(await gateway.execute(TestDestination, { id: created.id })).testDestination;
    expect(expectType(stillRefused, 'TestDestinationSuccess')).toMatchObject({ ok: false });
    expect(fake.requests).toEqual([]);
  });
});

describe('deleteDestination', () => {
  test('is refused while a sync sends to the destination, and allowed once the sync is deleted', async () => {
    const destination = await createMetaDestination(gateway, fake);
    const audience = await createAudienceWith(gateway, []);
    const sync = await createSync(gateway, { audienceId: audience.id, destinationId: destination.id });

    const refused = await expectNothingWritten(() => deleteDestination(destination.id));
    expect(expectType(refused, 'ConflictError').message).toMatch(/1 sync\(s\) still send to this destination/);

    expectType(dataOf(await gateway.execute(DeleteAudienceSync, { id: sync.id })).deleteAudienceSync, 'DeleteAudienceSyncSuccess');
    expect(expectType(await deleteDestination(destination.id), 'DeleteDestinationSuccess').deletedId).toBe(destination.id);
  });

  test('a deleted destination is no longer listed nor found, and cannot be changed or deleted again', async () => {
    const kept = await createMetaDestination(gateway, fake);
    const deleted = await createMetaDestination(gateway, fake);

    expectType(await deleteDestination(deleted.id), 'DeleteDestinationSuccess');

    expect(dataOf(await gateway.execute(ListDestinations, {})).destinations.edges).toEqual([
      { node: { id: kept.id, name: kept.name } },
    ]);
    expect(dataOf(await gateway.execute(NodeById, { id: deleted.id })).node).toBeNull();
    expect(expectType(await updateDestination(deleted.id, { name: 'Back' }), 'NotFoundError').field).toBe('id');
    expect(expectType(await deleteDestination(deleted.id), 'NotFoundError').field).toBe('id');
  });
});

describe('ids that name nothing of the caller', () => {
  const mutations = {
    updateDestination: (id: string) => updateDestination(id, { name: 'Taken over' }),
    deleteDestination,
  };

  test.each(Object.entries(mutations))('%s with another workspace’s destination is the same NotFoundError as an unknown id', async (_name, mutate) => {
    const other = await gateway.createWorkspace();
    const theirs = await createMetaDestination(gateway, fake, other.apiKey);

    const [ofOtherWorkspace, unknown] = await answersToForeignAndUnknownId(mutate, theirs.id);

    expect(ofOtherWorkspace).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    expect(ofOtherWorkspace).toEqual(unknown);
    expect(dataOf(await gateway.execute(NodeById, { id: theirs.id })).node).toBeNull();
  });

  test.each(Object.entries(mutations))('%s with a malformed id is a ValidationError on id', async (_name, mutate) => {
    const results = await expectNothingWritten(() => Promise.all(malformedIds('Destination').map((id) => mutate(id))));

    for (const result of results) expect(expectType(result, 'ValidationError').field).toBe('id');
  });

  test.each(Object.entries(mutations))('%s with an id whose inner id is not a UUID answers as an unknown id', async (_name, mutate) => {
    const { malformed, unknown } = await answersToMalformedAndUnknownId(mutate, 'Destination');

    expect(unknown).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    for (const answer of malformed) expect(answer).toEqual(unknown);
  });
});
