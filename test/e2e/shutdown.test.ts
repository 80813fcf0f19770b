import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, expect, test } from 'vitest';
import WebSocket from 'ws';
import { createApiKey } from '../../src/identity/api-keys.js';
import { connectDatabase, db, disconnectDatabase } from '../../src/infra/db.js';
import { createTestDatabase } from '../support/database.js';
import { runEntryPoint } from '../support/process.js';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  database = await createTestDatabase();
  connectDatabase(database.url);
});
afterAll(async () => {
  await disconnectDatabase();
  await database.drop();
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

test('SIGTERM closes open subscriptions with 1001 (going away) and the process exits 0', async () => {
  const port = await freePort();
  const gateway = runEntryPoint('build/server.js', {
    DATABASE_URL: database.url,
    SECRETS_KEY: randomBytes(32).toString('base64'),
    PORT: String(port),
    LOG_LEVEL: 'info',
  });
  await gateway.waitFor(/Gateway listening/);
  const workspace = await db().workspace.create({ data: { name: 'shutdown' } });
  const { key } = await createApiKey(workspace.id, 'shutdown test');

  let closeCode: number | undefined;
  const client = createClient({
    url: `ws://127.0.0.1:${port}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${key}` },
    retryAttempts: 0,
    on: { closed: (event) => (closeCode ??= (event as { code: number }).code) },
  });
  const events = client.iterate({ query: 'subscription { taskUpdated(taskId: "VGFzazowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=") { id } }' });
  const ended = events.next().catch((error: unknown) => error);
  for await (const _ of client.iterate({ query: '{ __typename }' })) break;

  expect(await gateway.stop('SIGTERM')).toBe(0);
  await ended;
  expect(closeCode).toBe(1001);
  expect(gateway.output()).toContain('Shutting down');
  await client.dispose();
}, 90_000);

test('a port already taken stops the process at start with one line saying so, and exit code 1', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, resolve));
  const { port } = taken.address() as { port: number };
  try {
    const gateway = runEntryPoint('build/server.js', {
      DATABASE_URL: database.url,
      SECRETS_KEY: randomBytes(32).toString('base64'),
      PORT: String(port),
      LOG_LEVEL: 'warn',
    });

    expect(await gateway.exited()).toBe(1);
    expect(gateway.output().trim()).toBe(`Port ${port} is already in use: stop what holds it, or set PORT to a free port`);
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
}, 60_000);
