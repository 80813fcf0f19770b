import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { secretBox } from '../../src/infra/secrets.js';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import type { CreateDestinationInput, UpdateDestinationInput } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { answersToForeignAndUnknownId, malformedIds } from '../support/global-ids.js';
import {
  CreateDestination,
  DeleteAudienceSync,
  DeleteDestination,
  ListDestinations,
  NodeById,
  UpdateDestination,
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
});
