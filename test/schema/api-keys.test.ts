import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { hashApiKey } from '../../src/identity/api-keys.js';
import { db } from '../../src/infra/db.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { answersToForeignAndUnknownId, answersToMalformedAndUnknownId, malformedIds, unknownId } from '../support/global-ids.js';
import { ListDestinations, NodeById, TaskUpdated } from '../support/operations.js';
import { runEntryPoint } from '../support/process.js';
import { subscribeOverSSE, type EventStream } from '../support/sse.js';
import { dataOf, expectType } from '../support/scenario.js';
import {
  ADMIN_TOKEN,
  CreateApiKey,
  ListApiKeys,
  RevokeApiKey,
  WhoAmI,
  expectNoTenancyChange,
} from '../support/tenancy.js';

/** Revocations reach every gateway through Redis: this file's gateway and the second one it starts. */
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startTestGateway({ ADMIN_TOKEN, REDIS_URL });
});
afterAll(async () => {
  await gateway.stop();
});
beforeEach(() => gateway.reset());

const errorCodes = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
  result.errors?.map((error) => error.extensions?.code);

const workspaceGlobalId = (id: string) => encodeGlobalID('Workspace', id);

/** A key of the test's workspace, with its global id. */
async function createKey(role: 'READ' | 'WRITE' = 'WRITE', name = 'script') {
  const result = await gateway.execute(CreateApiKey, { input: { name, role } });
  return expectType(dataOf(result).createApiKey, 'CreateApiKeySuccess');
}

const revoke = (id: string, apiKey: string | null = gateway.apiKey) => gateway.execute(RevokeApiKey, { id }, { apiKey });

/** Callers refused by every mutation here, each with the code it gets. */
const refusedCallers: [string, string, () => Promise<string | null>][] = [
  ['no key', 'UNAUTHENTICATED', async () => null],
  ['an unknown key', 'UNAUTHENTICATED', async () => 'asg_not-a-key'],
  ['a READ key', 'FORBIDDEN', async () => (await createKey('READ')).key],
];

describe('createApiKey', () => {
  test('a WRITE key creates a key of its own workspace, WRITE unless told; it works at once', async () => {
    const created = await createKey();
    const reader = await createKey('READ', 'dashboard');

    expect(created.apiKey).toMatchObject({
      name: 'script',
      role: 'WRITE',
      prefix: created.key.slice(0, 10),
      lastUsedAt: null,
      revokedAt: null,
      workspace: { id: workspaceGlobalId(gateway.workspaceId) },
    });
    expect(reader.apiKey.role).toBe('READ');
    const { viewer } = dataOf(await gateway.execute(WhoAmI, {}, { apiKey: reader.key }));
    expect(viewer).toMatchObject({ admin: false, role: 'READ', apiKey: { id: reader.apiKey.id } });
    // The workspace comes with the key's verification, as stored.
    const stored = await db().workspace.findUniqueOrThrow({ where: { id: gateway.workspaceId } });
    expect(viewer.workspace).toEqual({ id: workspaceGlobalId(gateway.workspaceId), name: stored.name });
  });

  test('stores only the hash and the prefix; the key is never returned again', async () => {
    const { key, apiKey } = await createKey();

    const row = await db().apiKey.findUniqueOrThrow({ where: { id: decodeGlobalID(apiKey.id).id } });
    expect(row.keyHash).toBe(hashApiKey(key));
    expect(row.prefix).toBe(key.slice(0, 10));
    expect(JSON.stringify(row)).not.toContain(key.slice(10));
    const listed = await gateway.execute(ListApiKeys, {});
    expect(JSON.stringify(listed)).not.toContain(key.slice(10));
    expect(JSON.stringify(listed)).not.toContain(row.keyHash);
  });

  test('with the admin token, in any workspace named by its id', async () => {
    const other = await gateway.createWorkspace();

    const result = await gateway.execute(
      CreateApiKey,
      { input: { workspaceId: workspaceGlobalId(other.workspaceId), name: 'ops', role: 'READ' } },
      { apiKey: ADMIN_TOKEN },
    );

    const created = expectType(dataOf(result).createApiKey, 'CreateApiKeySuccess');
    expect(created.apiKey).toMatchObject({ role: 'READ', workspace: { id: workspaceGlobalId(other.workspaceId) } });
  });

  test('another workspace’s id answers as an unknown id: NotFoundError on input.workspaceId, nothing created', async () => {
    const other = await gateway.createWorkspace();
    const create = (workspaceId: string) =>
      gateway.execute(CreateApiKey, { input: { workspaceId, name: 'intruder' } }).then((result) => dataOf(result).createApiKey);

    const [foreign, unknown] = await expectNoTenancyChange(() =>
      answersToForeignAndUnknownId(create, workspaceGlobalId(other.workspaceId)),
    );

    expect(foreign).toMatchObject({ __typename: 'NotFoundError', field: 'input.workspaceId' });
    expect(foreign).toEqual(unknown);
  });

  test('a workspace id whose inner id is not a UUID answers as an unknown id, for the admin token too', async () => {
    for (const apiKey of [gateway.apiKey, ADMIN_TOKEN]) {
      const create = (workspaceId: string) =>
        gateway.execute(CreateApiKey, { input: { workspaceId, name: 'intruder' } }, { apiKey }).then((result) => dataOf(result).createApiKey);

      const { malformed, unknown } = await expectNoTenancyChange(() => answersToMalformedAndUnknownId(create, 'Workspace'));

      expect(unknown).toMatchObject({ __typename: 'NotFoundError', field: 'input.workspaceId' });
      for (const answer of malformed) expect(answer).toEqual(unknown);
    }
  });

  test.each<[string, string, Record<string, unknown>, string | null]>([
    ['an empty name', 'input.name', { name: ' ' }, null],
    ['a name of 256 characters', 'input.name', { name: 'k'.repeat(256) }, null],
    ['a malformed workspace id', 'input.workspaceId', { name: 'k', workspaceId: malformedIds('Workspace')[0] }, null],
    ['another type’s id as workspace id', 'input.workspaceId', { name: 'k', workspaceId: unknownId('Audience') }, null],
    ['no workspace id with the admin token', 'input.workspaceId', { name: 'k' }, ADMIN_TOKEN],
  ])('%s is a ValidationError on %s, nothing created', async (_case, field, input, apiKey) => {
    const result = await expectNoTenancyChange(() =>
      gateway.execute(CreateApiKey, { input: input as { name: string } }, apiKey ? { apiKey } : {}),
    );

    expect(expectType(dataOf(result).createApiKey, 'ValidationError').field).toBe(field);
  });

  test('an unknown role is refused by GraphQL validation', async () => {
    const result = await expectNoTenancyChange(() =>
      gateway.execute(CreateApiKey, { input: { name: 'k', role: 'ADMIN' as 'READ' } }),
    );

    expect(result.errors?.[0]?.message).toMatch(/"ADMIN" does not exist in "ApiKeyRole" enum/);
  });

  test.each(refusedCallers)('with %s: refused with %s, nothing created', async (_caller, code, apiKey) => {
    const key = await apiKey();

    const result = await expectNoTenancyChange(() => gateway.execute(CreateApiKey, { input: { name: 'k' } }, { apiKey: key }));

    expect(errorCodes(result)).toEqual([code]);
  });
});

describe('revokeApiKey', () => {
  test('revokes the key at once; revoking it again changes nothing', async () => {
    const { key, apiKey } = await createKey();
    expect(errorCodes(await gateway.execute(ListDestinations, {}, { apiKey: key }))).toBeUndefined();

    const revoked = expectType(dataOf(await revoke(apiKey.id)).revokeApiKey, 'RevokeApiKeySuccess').apiKey;
    const again = expectType(dataOf(await revoke(apiKey.id)).revokeApiKey, 'RevokeApiKeySuccess').apiKey;

    expect(revoked).toMatchObject({ id: apiKey.id, prefix: apiKey.prefix, revokedAt: expect.any(String) });
    expect(again).toEqual(revoked);
    expect(errorCodes(await gateway.execute(ListDestinations, {}, { apiKey: key }))).toEqual(['UNAUTHENTICATED']);
  });

  test('with the admin token, a key of any workspace', async () => {
    const other = await gateway.createWorkspace();
    const [otherKey] = await db().apiKey.findMany({ where: { workspaceId: other.workspaceId } });

    const result = await revoke(encodeGlobalID('ApiKey', otherKey!.id), ADMIN_TOKEN);

    expect(expectType(dataOf(result).revokeApiKey, 'RevokeApiKeySuccess').apiKey.revokedAt).not.toBeNull();
    expect(errorCodes(await gateway.execute(ListDestinations, {}, { apiKey: other.apiKey }))).toEqual(['UNAUTHENTICATED']);
  });

  test('another workspace’s key answers as an unknown key: NotFoundError, nothing revoked', async () => {
    const other = await gateway.createWorkspace();
    const [otherKey] = await db().apiKey.findMany({ where: { workspaceId: other.workspaceId } });

    const [foreign, unknown] = await expectNoTenancyChange(() =>
      answersToForeignAndUnknownId(
        (id) => revoke(id).then((result) => dataOf(result).revokeApiKey),
        encodeGlobalID('ApiKey', otherKey!.id),
      ),
    );

    expect(foreign).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    expect(foreign).toEqual(unknown);
  });

  test('an id whose inner id is not a UUID answers as an unknown key, nothing revoked', async () => {
    const { malformed, unknown } = await expectNoTenancyChange(() =>
      answersToMalformedAndUnknownId((id) => revoke(id).then((result) => dataOf(result).revokeApiKey), 'ApiKey'),
    );

    expect(unknown).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    for (const answer of malformed) expect(answer).toEqual(unknown);
  });

  test.each(malformedIds('ApiKey'))('the malformed id %s is a ValidationError on id', async (id) => {
    const result = await expectNoTenancyChange(() => revoke(id));

    expect(expectType(dataOf(result).revokeApiKey, 'ValidationError').field).toBe('id');
  });

  test.each(refusedCallers)('with %s: refused with %s, nothing revoked', async (_caller, code, apiKey) => {
    const { apiKey: target } = await createKey();
    const key = await apiKey();

    const result = await expectNoTenancyChange(() => revoke(target.id, key));

    expect(errorCodes(result)).toEqual([code]);
  });
});

describe('apiKeys', () => {
  test('lists the keys of the caller’s workspace only, revoked ones too, newest first', async () => {
    await gateway.createWorkspace();
    const first = await createKey('READ', 'first');
    const second = await createKey('WRITE', 'second');
    await revoke(first.apiKey.id);

    const { apiKeys } = dataOf(await gateway.execute(ListApiKeys, {}, { apiKey: gateway.apiKey }));

    const listed = apiKeys.edges.map(({ node }) => node);
    expect(listed.map((key) => key.name)).toEqual(['second', 'first', 'test key']);
    expect(listed[0]).toMatchObject({ id: second.apiKey.id, prefix: second.apiKey.prefix, revokedAt: null });
    expect(listed[1]!.revokedAt).not.toBeNull();
    expect(listed[2]!.lastUsedAt).not.toBeNull();
  });

  test('a READ key may list; another workspace’s id lists nothing', async () => {
    const reader = await createKey('READ');
    const other = await gateway.createWorkspace();

    const own = dataOf(await gateway.execute(ListApiKeys, {}, { apiKey: reader.key })).apiKeys;
    const foreign = dataOf(
      await gateway.execute(ListApiKeys, { workspaceId: workspaceGlobalId(other.workspaceId) }, { apiKey: reader.key }),
    ).apiKeys;

    expect(own.edges).toHaveLength(2);
    expect(foreign.edges).toEqual([]);
  });

  test('the admin token lists the keys of the workspace it names', async () => {
    const { apiKeys } = dataOf(
      await gateway.execute(ListApiKeys, { workspaceId: workspaceGlobalId(gateway.workspaceId) }, { apiKey: ADMIN_TOKEN }),
    );

    expect(apiKeys.edges.map(({ node }) => node.name)).toEqual(['test key']);
  });
});

/** What ends a subscription: the socket's close event, or 'an event' / 'completed'. Call it before the close:
 * graphql-ws's iterator only reports a close that happens while a next() is waiting. */
const closeOf = (subscription: AsyncIterator<unknown>) =>
  subscription.next().then(
    (result) => (result.done ? 'completed' : 'an event'),
    (error: unknown) => error,
  );

/** What ends a server-sent event stream: its results until the stream completes. */
async function resultsOf(stream: EventStream<unknown>) {
  const results = [];
  for await (const result of stream) results.push(result);
  return results;
}
const REVOKED_RESULT = [{ errors: [expect.objectContaining({ message: 'This API key was revoked', extensions: expect.objectContaining({ code: 'FORBIDDEN' }) })] }];

describe('a revoked key’s server-sent event streams', () => {
  test('end with one FORBIDDEN error when the key is revoked, and the other keys’ stay open', async () => {
    const doomed = await createKey();
    const stream = await subscribeOverSSE(gateway, TaskUpdated, { taskId: unknownId('Task') }, { apiKey: doomed.key });
    const survivor = await subscribeOverSSE(gateway, TaskUpdated, { taskId: unknownId('Task') });
    const ended = resultsOf(stream);
    const survivorNext = survivor[Symbol.asyncIterator]().next();

    expectType(dataOf(await revoke(doomed.apiKey.id)).revokeApiKey, 'RevokeApiKeySuccess');

    expect(await ended).toEqual(REVOKED_RESULT);
    expect(await Promise.race([survivorNext, new Promise((resolve) => setTimeout(resolve, 300, 'still open'))])).toBe(
      'still open',
    );
    survivor.close();
  });

  test('a stream opened after the revocation arrived is refused', async () => {
    const doomed = await createKey();
    expectType(dataOf(await revoke(doomed.apiKey.id)).revokeApiKey, 'RevokeApiKeySuccess');

    const response = await fetch(gateway.app.url, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${doomed.key}` },
      body: JSON.stringify({ query: 'subscription ($id: ID!) { taskUpdated(taskId: $id) { id } }', variables: { id: unknownId('Task') } }),
    });
    const body = await response.text();
    expect(body).toMatch(/UNAUTHENTICATED/);
    expect(body).not.toMatch(/"data"/);
  });
});

describe('a revoked key’s WebSockets', () => {
  test('are closed with 4403 when the key is revoked, and the other keys’ stay open', async () => {
    const doomed = await createKey();
    const subscription = await gateway.subscribeOverWebSocket(TaskUpdated, { taskId: unknownId('Task') }, doomed.key);
    const survivor = await gateway.subscribeOverWebSocket(TaskUpdated, { taskId: unknownId('Task') });
    const closed = closeOf(subscription);
    const survivorNext = survivor.next();

    expectType(dataOf(await revoke(doomed.apiKey.id)).revokeApiKey, 'RevokeApiKeySuccess');

    expect(await closed).toMatchObject({ code: 4403, reason: expect.stringMatching(/revoked/) });
    expect(await Promise.race([survivorNext, new Promise((resolve) => setTimeout(resolve, 300, 'still open'))])).toBe(
      'still open',
    );
    await survivor.return?.();
  });

  test('are closed, its server-sent event streams ended and the key refused, when it is revoked through another gateway instance', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'asg-second-gateway-'));
    const second = runEntryPoint('build/server.js', {
      DATABASE_URL: gateway.databaseUrl,
      REDIS_URL,
      ADMIN_TOKEN,
      ROLES: 'gateway',
      PORT: '0',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
    });
    try {
      const listening = await second.waitFor(/Gateway listening/);
      const secondUrl = (JSON.parse(listening) as { url: string }).url;
      const doomed = await createKey();
      const subscription = await gateway.subscribeOverWebSocket(TaskUpdated, { taskId: unknownId('Task') }, doomed.key);
      const closed = closeOf(subscription);
      const stream = await subscribeOverSSE(gateway, TaskUpdated, { taskId: unknownId('Task') }, { apiKey: doomed.key });
      const streamEnded = resultsOf(stream);
      // This gateway has verified the key over HTTP too, and remembers it.
      expect(errorCodes(await gateway.execute(ListDestinations, {}, { apiKey: doomed.key }))).toBeUndefined();

      const response = await fetch(secondUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({
          query: 'mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }',
          variables: { id: doomed.apiKey.id },
        }),
      });
      expect(await response.json()).toEqual({ data: { revokeApiKey: { __typename: 'RevokeApiKeySuccess' } } });
      expect(await closed).toMatchObject({ code: 4403 });
      expect(await streamEnded).toEqual(REVOKED_RESULT);
      // The same event made it forget the key: its requests are refused, long before the key would expire.
      expect(errorCodes(await gateway.execute(ListDestinations, {}, { apiKey: doomed.key }))).toEqual(['UNAUTHENTICATED']);
    } finally {
      await second.stop('SIGTERM');
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('npm run api-key', () => {
  const runCommand = async (...args: string[]) => {
    const command = runEntryPoint('scripts/create-api-key.ts', { DATABASE_URL: gateway.databaseUrl }, args);
    const code = await command.exited();
    return { code, output: command.output() };
  };
  /** The key a run printed, alone on its last line. */
  const printedKey = (output: string) => /^(asg_\S+)$/m.exec(output)?.[1];

  test('creates a workspace and its first key with --create-workspace; the key printed works', async () => {
    const { code, output } = await runCommand('--workspace', 'Acme', '--name', 'first key', '--create-workspace');

    expect(code, output).toBe(0);
    const key = printedKey(output)!;
    expect(key).toMatch(/^asg_[\w-]{43}$/);
    const { viewer } = dataOf(await gateway.execute(WhoAmI, {}, { apiKey: key }));
    expect(viewer).toMatchObject({ admin: false, role: 'WRITE', workspace: { name: 'Acme' } });
    const stored = await db().apiKey.findUniqueOrThrow({ where: { keyHash: hashApiKey(key) } });
    expect(stored).toMatchObject({ name: 'first key', prefix: key.slice(0, 10) });
  }, 60_000);

  test('adds a key to an existing workspace named by name or by id, with --role', async () => {
    const { name } = await db().workspace.findUniqueOrThrow({ where: { id: gateway.workspaceId } });
    const byName = await runCommand('--workspace', name, '--name', 'reader', '--role', 'READ');
    const byId = await runCommand('--workspace', gateway.workspaceId, '--name', 'writer');

    expect([byName.code, byId.code]).toEqual([0, 0]);
    const reader = dataOf(await gateway.execute(WhoAmI, {}, { apiKey: printedKey(byName.output)! })).viewer;
    const writer = dataOf(await gateway.execute(WhoAmI, {}, { apiKey: printedKey(byId.output)! })).viewer;
    expect(reader).toMatchObject({ role: 'READ', workspace: { id: workspaceGlobalId(gateway.workspaceId) } });
    expect(writer).toMatchObject({ role: 'WRITE', workspace: { id: workspaceGlobalId(gateway.workspaceId) } });
  }, 60_000);

  test.each([
    ['an unknown workspace without --create-workspace', ['--workspace', 'Nowhere', '--name', 'k'], /add --create-workspace/],
    ['an unknown role', ['--workspace', 'Acme', '--name', 'k', '--role', 'ADMIN', '--create-workspace'], /--role: READ or WRITE/],
    ['no key name', ['--workspace', 'Acme', '--create-workspace'], /--name: /],
  ])('%s: exits 2 with what to fix, creates nothing', async (_case, args, message) => {
    const result = await expectNoTenancyChange(() => runCommand(...args));

    expect(result.code).toBe(2);
    expect(result.output).toMatch(message);
    expect(result.output).not.toContain('asg_');
  }, 60_000);
});

describe('node lookups', () => {
  test('a key or workspace of another workspace answers as an unknown id: null', async () => {
    const other = await gateway.createWorkspace();
    const [otherKey] = await db().apiKey.findMany({ where: { workspaceId: other.workspaceId } });
    const [ownKey] = await db().apiKey.findMany({ where: { workspaceId: gateway.workspaceId } });
    const lookUp = async (id: string) => dataOf(await gateway.execute(NodeById, { id })).node;

    expect(await lookUp(encodeGlobalID('ApiKey', ownKey!.id))).toMatchObject({ __typename: 'ApiKey' });
    expect(await lookUp(workspaceGlobalId(gateway.workspaceId))).toMatchObject({ __typename: 'Workspace' });
    expect(await lookUp(encodeGlobalID('ApiKey', otherKey!.id))).toBeNull();
    expect(await lookUp(workspaceGlobalId(other.workspaceId))).toBeNull();
    expect(await lookUp(unknownId('ApiKey'))).toBeNull();
  });

  test('the admin token must name the workspace whose keys it lists', async () => {
    const result = await gateway.execute(ListApiKeys, {}, { apiKey: ADMIN_TOKEN });

    expect(errorCodes(result)).toEqual(['VALIDATION_FAILED']);
    expect(result.errors?.[0]?.message).toMatch(/workspaceId: is required with the admin token/);
  });
});
