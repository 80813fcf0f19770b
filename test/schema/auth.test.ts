import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import {
  getIntrospectionQuery,
  parse,
  type ExecutionResult,
  type FormattedExecutionResult,
  type IntrospectionQuery,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApiKey } from '../../src/identity/api-keys.js';
import { db } from '../../src/infra/db.js';
import { schema } from '../../src/schema/index.js';
import type { FakeMeta } from '../fakes/meta-server.js';
import { graphql } from '../generated/gql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { unknownId } from '../support/global-ids.js';
import { uploadMembers } from '../support/member-tasks.js';
import {
  AddAudienceMembers,
  AudienceSyncRunUpdated,
  CreateAudience,
  CreateAudienceSync,
  CreateDestination,
  DeleteAudience,
  DeleteAudienceSync,
  DeleteDestination,
  TestDestination,
  ListAudienceSyncs,
  ListDestinations,
  NodeById,
  RemoveAudienceMembers,
  SyncAudiences,
  SyncRunUpdated,
  TaskUpdated,
  TriggerAudienceSync,
  UpdateAudienceSync,
  UpdateDestination,
} from '../support/operations.js';
import { createAudienceWith, createMetaDestination, dataOf, expectType, metaSyncScenario } from '../support/scenario.js';
import { subscribeOverSSE } from '../support/sse.js';
import { runSync } from '../support/sync-runs.js';
import { expectNothingWritten } from '../support/tables.js';
import {
  ADMIN_TOKEN,
  CreateApiKey,
  CreateWorkspace,
  ListApiKeys,
  RevokeApiKey,
  WhoAmI,
  expectNoTenancyChange,
} from '../support/tenancy.js';

const ListAudiences = graphql(`
  query ListAudiences {
    audiences(first: 10) { edges { node { id } } }
  }
`);

const NodesByIds = graphql(`
  query NodesByIds($ids: [ID!]!) {
    nodes(ids: $ids) { id }
  }
`);

const TaskById = graphql(`
  query TaskById($id: ID!) {
    task(id: $id) { id }
  }
`);

const AuthUpdateAudience = graphql(`
  mutation AuthUpdateAudience($id: ID!, $input: UpdateAudienceInput!) {
    updateAudience(id: $id, input: $input) { __typename }
  }
`);

const AuthRefreshPlatformAudience = graphql(`
  mutation AuthRefreshPlatformAudience($id: ID!) {
    refreshPlatformAudience(id: $id) { __typename }
  }
`);

const AuthCancelSyncRun = graphql(`
  mutation AuthCancelSyncRun($id: ID!) {
    cancelSyncRun(id: $id) { __typename }
  }
`);

const AuthSyncRunsUpdated = graphql(`
  subscription AuthSyncRunsUpdated {
    syncRunsUpdated { id }
  }
`);

const AuthAudienceSyncUpdated = graphql(`
  subscription AuthAudienceSyncUpdated {
    audienceSyncUpdated { id }
  }
`);

const AuthUpsertContacts = graphql(`
  mutation AuthUpsertContacts($contacts: [AudienceMemberInput!]!) {
    upsertContacts(contacts: $contacts) { __typename }
  }
`);

const AuthContacts = graphql(`
  query AuthContacts {
    contacts(first: 5) { edges { node { id } } }
  }
`);

const AuthSegmentTemplates = graphql(`
  query AuthSegmentTemplates {
    segmentTemplates { key }
  }
`);

const AuthPreviewSegment = graphql(`
  query AuthPreviewSegment($rule: SegmentRuleInput!) {
    previewSegment(rule: $rule)
  }
`);

let gateway: TestGateway;
let fake: FakeMeta;
let scenario: Awaited<ReturnType<typeof setUpWorkspace>>;
let readKey: string;
let revokedKey: string;
/** A key of the workspace for revokeApiKey to revoke. */
let spareKeyId: string;

/** A workspace with a sync, plus an audience and a destination that nothing uses, so that every
 * mutation below would change something if it were let through. */
async function setUpWorkspace() {
  const { fake, destination, audience, sync } = await metaSyncScenario(gateway, ['ada@example.com']);
  const unusedAudience = await createAudienceWith(gateway, []);
  const unusedDestination = await createMetaDestination(gateway, fake);
  return { fake, destination, audience, sync, unusedAudience, unusedDestination };
}

async function revokedApiKey(): Promise<string> {
  const { key, record } = await createApiKey(gateway.workspaceId, 'revoked', 'WRITE');
  await db().apiKey.update({ where: { id: record.id }, data: { revokedAt: new Date() } });
  return key;
}

beforeAll(async () => {
  gateway = await startTestGateway({ ADMIN_TOKEN });
  scenario = await setUpWorkspace();
  fake = scenario.fake;
  readKey = (await createApiKey(gateway.workspaceId, 'reader', 'READ')).key;
  revokedKey = await revokedApiKey();
  spareKeyId = encodeGlobalID('ApiKey', (await createApiKey(gateway.workspaceId, 'spare', 'READ')).record.id);
});
afterAll(async () => {
  await fake.close();
  await gateway.stop();
});

/** Every mutation of the schema, each with input that succeeds with a WRITE key when they run in
 * this order (the last test checks it). */
const mutations: Record<string, (apiKey: string | null) => Promise<ExecutionResult<unknown>>> = {
  createDestination: (apiKey) =>
    gateway.execute(
      CreateDestination,
      { input: { name: 'Meta', config: { meta: { adAccountId: '1' } }, credentials: { meta: { accessToken: 'token' } } } },
      { apiKey },
    ),
  updateDestination: (apiKey) =>
    gateway.execute(UpdateDestination, { id: scenario.destination.id, input: { name: 'Renamed' } }, { apiKey }),
  testDestination: (apiKey) => gateway.execute(TestDestination, { id: scenario.destination.id }, { apiKey }),
  deleteDestination: (apiKey) => gateway.execute(DeleteDestination, { id: scenario.unusedDestination.id }, { apiKey }),
  createAudience: (apiKey) => gateway.execute(CreateAudience, { input: { name: 'Leads' } }, { apiKey }),
  addAudienceMembers: (apiKey) =>
    gateway.execute(AddAudienceMembers, { audienceId: scenario.audience.id, members: [{ email: 'grace@example.com' }] }, { apiKey }),
  removeAudienceMembers: (apiKey) =>
    gateway.execute(RemoveAudienceMembers, { audienceId: scenario.audience.id, members: [{ email: 'ada@example.com' }] }, { apiKey }),
  updateAudience: (apiKey) =>
    gateway.execute(AuthUpdateAudience, { id: scenario.audience.id, input: { name: 'Renamed leads' } }, { apiKey }),
  upsertContacts: (apiKey) => gateway.execute(AuthUpsertContacts, { contacts: [{ email: 'edsger@example.com' }] }, { apiKey }),
  createAudienceSync: (apiKey) =>
    gateway.execute(
      CreateAudienceSync,
      { input: { name: 'Leads to Meta', audienceId: scenario.unusedAudience.id, destinationId: scenario.destination.id } },
      { apiKey },
    ),
  updateAudienceSync: (apiKey) =>
    gateway.execute(UpdateAudienceSync, { id: scenario.sync.id, input: { name: 'Renamed' } }, { apiKey }),
  refreshPlatformAudience: (apiKey) => gateway.execute(AuthRefreshPlatformAudience, { id: scenario.sync.id }, { apiKey }),
  triggerAudienceSync: (apiKey) => gateway.execute(TriggerAudienceSync, { id: scenario.sync.id }, { apiKey }),
  cancelSyncRun: async (apiKey) => {
    const run = await db().syncRun.findFirst({ where: { syncId: decodeGlobalID(scenario.sync.id).id }, orderBy: { createdAt: 'desc' } });
    return gateway.execute(AuthCancelSyncRun, { id: run ? encodeGlobalID('SyncRun', run.id) : unknownId('SyncRun') }, { apiKey });
  },
  deleteAudienceSync: (apiKey) => gateway.execute(DeleteAudienceSync, { id: scenario.sync.id }, { apiKey }),
  syncAudiences: (apiKey) => gateway.execute(SyncAudiences, { input: { audiences: [{ audienceId: 'crm-auth' }] } }, { apiKey }),
  importAudienceMembers: async (apiKey) =>
    (await uploadMembers(gateway, scenario.audience.id, 'email\nlinus@example.org\n', { apiKey, selection: '__typename' })).body,
  deleteAudience: (apiKey) => gateway.execute(DeleteAudience, { id: scenario.unusedAudience.id }, { apiKey }),
  createApiKey: (apiKey) => gateway.execute(CreateApiKey, { input: { name: 'ci', role: 'READ' } }, { apiKey }),
  revokeApiKey: (apiKey) => gateway.execute(RevokeApiKey, { id: spareKeyId }, { apiKey }),
};

/** The mutations only the admin token may run (it may also run createApiKey and revokeApiKey), with input
 * that succeeds with it. */
const adminMutations: Record<string, (apiKey: string | null) => Promise<ExecutionResult<unknown>>> = {
  createWorkspace: (apiKey) => gateway.execute(CreateWorkspace, { input: { name: 'Globex' } }, { apiKey }),
};

const allMutations = { ...mutations, ...adminMutations };

/** Callers that are nobody: their key, if any. */
const anonymousCallers: [string, () => string | null][] = [
  ['no API key', () => null],
  ['an unknown API key', () => 'asg_not-a-key'],
  ['a revoked API key', () => revokedKey],
];

/** Callers that may not write, and the error code each gets. */
const refusedWriters: [string, () => string | null, string][] = [
  ...anonymousCallers.map(([caller, apiKey]) => [caller, apiKey, 'UNAUTHENTICATED'] as [string, () => string | null, string]),
  ['a READ API key', () => readKey, 'FORBIDDEN'],
];

const errorCodes = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
  result.errors?.map((error) => error.extensions?.code);

test('the mutations checked here are all the mutations of the schema', () => {
  expect(Object.keys(allMutations).sort()).toEqual(Object.keys(schema.getMutationType()!.getFields()).sort());
});

describe.each(refusedWriters)('with %s', (_caller, apiKey, code) => {
  test.each(Object.keys(allMutations))(`%s is refused with ${code} and writes nothing`, async (name) => {
    const result = await expectNoTenancyChange(() => expectNothingWritten(() => allMutations[name]!(apiKey())));

    expect(errorCodes(result)).toEqual([code]);
    expect(result.data).toBeNull();
  });
});

test.each(Object.keys(adminMutations))('with a WRITE key, the admin-only %s is refused with FORBIDDEN', async (name) => {
  const result = await expectNoTenancyChange(() => expectNothingWritten(() => adminMutations[name]!(gateway.apiKey)));

  expect(errorCodes(result)).toEqual(['FORBIDDEN']);
  expect(result.errors?.[0]?.message).toMatch(/Only the admin token/);
});

/** Key management is the admin token's: every other mutation is refused to it. */
const workspaceMutations = Object.keys(mutations).filter((name) => !['createApiKey', 'revokeApiKey'].includes(name));

test.each(workspaceMutations)('with the admin token, %s is refused with FORBIDDEN and writes nothing', async (name) => {
  const result = await expectNoTenancyChange(() => expectNothingWritten(() => mutations[name]!(ADMIN_TOKEN)));

  expect(errorCodes(result)).toEqual(['FORBIDDEN']);
});

describe('queries', () => {
  /** Every root query field, with arguments naming this workspace's data. */
  const queries: Record<string, (apiKey: string | null) => Promise<ExecutionResult<unknown>>> = {
    audienceSyncs: (apiKey) => gateway.execute(ListAudienceSyncs, {}, { apiKey }),
    audiences: (apiKey) => gateway.execute(ListAudiences, {}, { apiKey }),
    destinations: (apiKey) => gateway.execute(ListDestinations, {}, { apiKey }),
    node: (apiKey) => gateway.execute(NodeById, { id: scenario.sync.id }, { apiKey }),
    nodes: (apiKey) => gateway.execute(NodesByIds, { ids: [scenario.sync.id] }, { apiKey }),
    task: (apiKey) => gateway.execute(TaskById, { id: unknownId('Task') }, { apiKey }),
    contacts: (apiKey) => gateway.execute(AuthContacts, {}, { apiKey }),
    segmentTemplates: (apiKey) => gateway.execute(AuthSegmentTemplates, {}, { apiKey }),
    previewSegment: (apiKey) =>
      gateway.execute(AuthPreviewSegment, { rule: { field: 'email', operator: 'EXISTS' } }, { apiKey }),
    apiKeys: (apiKey) => gateway.execute(ListApiKeys, {}, { apiKey }),
    viewer: (apiKey) => gateway.execute(WhoAmI, {}, { apiKey }),
  };

  test('the queries checked here are all the query fields of the schema', () => {
    expect(Object.keys(queries).sort()).toEqual(Object.keys(schema.getQueryType()!.getFields()).sort());
  });

  describe.each(anonymousCallers)('with %s', (_caller, apiKey) => {
    test.each(Object.keys(queries))('%s is refused with UNAUTHENTICATED', async (name) => {
      const result = await queries[name]!(apiKey());

      expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
    });
  });

  test.each(Object.keys(queries))('a READ key may run %s', async (name) => {
    const result = await queries[name]!(readKey);

    expect(result.errors).toBeUndefined();
  });

  test.each(['audienceSyncs', 'audiences', 'destinations', 'node', 'nodes', 'task', 'contacts', 'previewSegment'])(
    'the admin token is refused %s with FORBIDDEN',
    async (name) => {
      expect(errorCodes(await queries[name]!(ADMIN_TOKEN))).toEqual(['FORBIDDEN']);
    },
  );

  test('the admin token may run viewer', async () => {
    expect(dataOf(await queries.viewer!(ADMIN_TOKEN))).toEqual({
      viewer: { admin: true, role: null, workspace: null, apiKey: null },
    });
  });

  test('a READ key reads its own workspace', async () => {
    const { audienceSyncs } = dataOf(await gateway.execute(ListAudienceSyncs, {}, { apiKey: readKey }));

    expect(audienceSyncs.edges.map((edge) => edge.node.id)).toEqual([scenario.sync.id]);
  });

  test('a key is refused from the moment it is revoked, though the gateway had just verified it', async () => {
    const { key, record } = await createApiKey(gateway.workspaceId, 'soon revoked', 'WRITE');
    expect(errorCodes(await gateway.execute(ListAudienceSyncs, {}, { apiKey: key }))).toBeUndefined();

    const revoked = await gateway.execute(RevokeApiKey, { id: encodeGlobalID('ApiKey', record.id) });

    expect(expectType(dataOf(revoked).revokeApiKey, 'RevokeApiKeySuccess').apiKey.revokedAt).not.toBeNull();
    expect(errorCodes(await gateway.execute(ListAudienceSyncs, {}, { apiKey: key }))).toEqual(['UNAUTHENTICATED']);
  });

  test('introspection needs no key, so that GraphiQL can load the schema', async () => {
    const introspection = parse(getIntrospectionQuery()) as TypedDocumentNode<IntrospectionQuery, Record<string, never>>;

    const result = dataOf(await gateway.execute(introspection, {}, { apiKey: null }));

    expect(result.__schema.types.map((type) => type.name)).toEqual(
      expect.arrayContaining(['Query', 'Mutation', 'Subscription', 'AudienceSync']),
    );
  });
});

describe('subscriptions', () => {
  /** Every subscription, over server-sent events. */
  const subscriptions: Record<string, (apiKey: string | null) => Promise<AsyncIterable<FormattedExecutionResult<unknown>>>> = {
    audienceSyncRunUpdated: (apiKey) =>
      subscribeOverSSE(gateway, AudienceSyncRunUpdated, { syncId: scenario.sync.id }, { apiKey }),
    syncRunUpdated: (apiKey) => subscribeOverSSE(gateway, SyncRunUpdated, { runId: unknownId('SyncRun') }, { apiKey }),
    taskUpdated: (apiKey) => subscribeOverSSE(gateway, TaskUpdated, { taskId: unknownId('Task') }, { apiKey }),
    syncRunsUpdated: (apiKey) => subscribeOverSSE(gateway, AuthSyncRunsUpdated, {}, { apiKey }),
    audienceSyncUpdated: (apiKey) => subscribeOverSSE(gateway, AuthAudienceSyncUpdated, {}, { apiKey }),
  };

  test('the subscriptions checked here are all the subscriptions of the schema', () => {
    expect(Object.keys(subscriptions).sort()).toEqual(Object.keys(schema.getSubscriptionType()!.getFields()).sort());
  });

  describe.each(anonymousCallers)('over SSE with %s', (_caller, apiKey) => {
    test.each(Object.keys(subscriptions))('%s is refused with UNAUTHENTICATED', async (name) => {
      const results = [];
      for await (const result of await subscriptions[name]!(apiKey())) results.push(result);

      expect(results.map(errorCodes)).toEqual([['UNAUTHENTICATED']]);
    });
  });

  test.each(Object.keys(subscriptions))('over SSE, the admin token is refused %s with FORBIDDEN', async (name) => {
    const results = [];
    for await (const result of await subscriptions[name]!(ADMIN_TOKEN)) results.push(result);

    expect(results.map(errorCodes)).toEqual([['FORBIDDEN']]);
  });

  test('a WebSocket with the admin token is refused: subscriptions belong to workspaces', async () => {
    const client = gateway.webSocketClient(ADMIN_TOKEN);

    const closed = await new Promise<unknown>((resolve) =>
      client.subscribe({ query: '{ __typename }' }, { next: () => undefined, error: resolve, complete: () => resolve('completed') }),
    );

    expect((closed as { code?: number }).code).toBe(4403);
  });

  test('a WebSocket with a revoked key is refused', async () => {
    const client = gateway.webSocketClient(revokedKey);

    const closed = await new Promise<unknown>((resolve) =>
      client.subscribe({ query: '{ __typename }' }, { next: () => undefined, error: resolve, complete: () => resolve('completed') }),
    );

    expect((closed as { code?: number }).code).toBe(4403);
  });

  // Runs a sync: after the tests that check nothing is written, so that none of them sees its writes.
  test('a READ key follows its workspace’s runs; a subscriber of another workspace never receives their events', async () => {
    const other = await gateway.createWorkspace();
    const own = await gateway.subscribeOverWebSocket(AudienceSyncRunUpdated, { syncId: scenario.sync.id }, readKey);
    const foreign = await gateway.subscribeOverWebSocket(AudienceSyncRunUpdated, { syncId: scenario.sync.id }, other.apiKey);
    const foreignEvent = foreign.next();

    expectType(dataOf(await gateway.execute(TriggerAudienceSync, { id: scenario.sync.id })).triggerAudienceSync, 'TriggerAudienceSyncSuccess');
    const statuses: string[] = [];
    for await (const { data } of own) {
      statuses.push(data!.audienceSyncRunUpdated.status);
      if (data!.audienceSyncRunUpdated.status === 'SUCCEEDED') break;
    }
    const quietAfterRun = new Promise((resolve) => setTimeout(resolve, 500, 'no event'));

    expect(statuses).toEqual(expect.arrayContaining(['QUEUED', 'RUNNING', 'SUCCEEDED']));
    expect(await Promise.race([foreignEvent, quietAfterRun])).toBe('no event');
    await foreign.return?.();
  });
});

// Changes the workspace: last in the file.
test('with a WRITE key the same mutations succeed, and with the admin token the admin-only ones', async () => {
  const callers: [Record<string, (apiKey: string | null) => Promise<ExecutionResult<unknown>>>, string][] = [
    [mutations, gateway.apiKey],
    [adminMutations, ADMIN_TOKEN],
  ];
  // refreshPlatformAudience reads an audience the platform has: one run creates it.
  expect((await runSync(gateway, scenario.sync.id)).run.status).toBe('SUCCEEDED');
  let held: ReturnType<FakeMeta['hold']> | undefined;
  try {
    for (const [group, apiKey] of callers) {
      for (const [name, mutate] of Object.entries(group)) {
        // Meta holds the run triggerAudienceSync starts, so that cancelSyncRun finds it going.
        if (name === 'triggerAudienceSync') held = fake.hold();
        const result = dataOf(await mutate(apiKey)) as Record<string, { __typename: string }>;

        expect(result[name]!.__typename, name).toMatch(/Success$/);
        if (name === 'cancelSyncRun') held?.release();
      }
    }
  } finally {
    held?.release();
  }
});
