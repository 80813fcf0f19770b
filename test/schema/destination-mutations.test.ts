import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { setAddressPolicy } from '../../src/infra/address-policy.js';
import { db } from '../../src/infra/db.js';
import { secretBox } from '../../src/infra/secrets.js';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import type { CreateDestinationInput, UpdateDestinationInput } from '../generated/graphql.js';
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
  platform: 'META',
  config: { adAccountId: 'act_1234567890', baseUrl: fake.baseUrl },
  credentials: { accessToken: META_TOKEN },
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
      config: { adAccountId: 'act_1234567890', baseUrl: fake.baseUrl, apiVersion: 'v27.0' },
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
    ['a Meta config without adAccountId', 'input.config.adAccountId', { config: { baseUrl: 'https://graph.facebook.com' } }],
    ['a Meta baseUrl that is not an http(s) URL', 'input.config.baseUrl', { config: { adAccountId: '1234', baseUrl: 'ftp://meta' } }],
    ['Meta credentials without accessToken', 'input.credentials.accessToken', { credentials: { token: META_TOKEN } }],
    ['a name of 256 characters', 'input.name', { name: 'n'.repeat(256) }],
  ])('%s is a ValidationError on %s and stores nothing', async (_case, field, overrides) => {
    const result = await expectNothingWritten(() => createDestination(metaInput(overrides)));

    expect(expectType(result, 'ValidationError').field).toBe(field);
  });

  test('an unknown platform is refused by GraphQL validation and stores nothing', async () => {
    const result = await expectNothingWritten(() =>
      gateway.execute(CreateDestination, { input: metaInput({ platform: 'TIKTOK' as 'META' }) }),
    );

    expect(result.data).toBeUndefined();
    expect(result.errors?.[0]?.message).toMatch(/"TIKTOK" does not exist in "Platform" enum/);
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

    const result = await updateDestination(created.id, { credentials: { accessToken: rotated } });

    const destination = expectType(result, 'UpdateDestinationSuccess').destination;
    expect(destination).toMatchObject({ credentialsConfigured: true, credentialsHint: '…9876' });
    expect(JSON.stringify(result)).not.toContain(rotated);
    await expectSealedCredentials(created.id, { accessToken: rotated });
  });

  test('an invalid config is a ValidationError on input.config.* and changes nothing', async () => {
    const created = await createMetaDestination(gateway, fake);

    const result = await expectNothingWritten(() =>
      updateDestination(created.id, { config: { adAccountId: 'act_1234567890', baseUrl: 'not a url' } }),
    );

    expect(expectType(result, 'ValidationError').field).toBe('input.config.baseUrl');
  });
});

describe('settings that would reach an object’s prototype', () => {
  test.each(['__proto__', 'constructor', 'prototype'])('a %s key in config or credentials is a ValidationError naming it, nothing stored', async (key) => {
    const created = await createMetaDestination(gateway, fake);
    const config = JSON.parse(`{"adAccountId": "act_1", "${key}": {"polluted": true}}`) as Record<string, unknown>;
    const credentials = JSON.parse(`{"accessToken": "t", "${key}": "x"}`) as Record<string, unknown>;
    const headers = JSON.parse(`{"signingSecret": "${'s'.repeat(40)}", "headers": {"${key}": "x"}}`) as Record<string, unknown>;

    const results = await expectNothingWritten(async () => [
      await createDestination(metaInput({ config })),
      await createDestination(metaInput({ credentials })),
      await createDestination({ name: 'Hook', platform: 'WEBHOOK', config: { url: 'https://hooks.example.com/a' }, credentials: headers }),
      await updateDestination(created.id, { config }),
      await updateDestination(created.id, { credentials }),
    ]);

    expect(results.map((result) => expectType(result, 'ValidationError').field)).toEqual([
      `input.config.${key}`,
      `input.credentials.${key}`,
      `input.credentials.headers.${key}`,
      `input.config.${key}`,
      `input.credentials.${key}`,
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('platform URLs under the default address policy', () => {
  const DEFAULT_POLICY = { allowPrivate: false, allowCustomPlatformUrls: false };
  const LOOPBACK_FAKES = { allowPrivate: true, allowCustomPlatformUrls: true };
  afterEach(() => setAddressPolicy(LOOPBACK_FAKES));

  const configs: [string, CreateDestinationInput['platform'], Record<string, unknown>, Record<string, unknown>][] = [
    ['META baseUrl', 'META', { adAccountId: 'act_1', baseUrl: 'https://graph.example.com' }, { accessToken: 't' }],
    ['LINKEDIN baseUrl', 'LINKEDIN', { adAccountId: '1', baseUrl: 'https://api.example.com' }, { accessToken: 't' }],
    ['X baseUrl', 'X', { accountId: 'abc', baseUrl: 'https://ads.example.com' }, { consumerKey: 'k', consumerSecret: 's', accessToken: 't', accessTokenSecret: 'u' }],
    ...(['baseUrl', 'tokenUrl'] as const).map((setting): [string, 'GOOGLE', Record<string, unknown>, Record<string, unknown>] => [
      `GOOGLE ${setting}`,
      'GOOGLE',
      {
        operatingAccount: { accountId: '123' },
        consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
        customerMatchTermsAccepted: true,
        [setting]: 'https://google.example.com',
      },
      { accessToken: 't' },
    ]),
  ];

  test.each(configs)('a custom %s is refused with a field error saying how the operator allows it', async (label, platform, config, credentials) => {
    setAddressPolicy(DEFAULT_POLICY);
    const setting = label.split(' ')[1]!;

    const result = await expectNothingWritten(() => createDestination({ name: label, platform, config, credentials }));

    const error = expectType(result, 'ValidationError');
    expect(error.field).toBe(`input.config.${setting}`);
    expect(error.message).toMatch(/ALLOW_CUSTOM_PLATFORM_URLS=true/);
  });

  test('the platform’s own URL, or none, is accepted', async () => {
    setAddressPolicy(DEFAULT_POLICY);
    for (const config of [{ adAccountId: 'act_1' }, { adAccountId: 'act_1', baseUrl: 'https://graph.facebook.com/' }]) {
      expectType(await createDestination(metaInput({ config })), 'CreateDestinationSuccess');
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
