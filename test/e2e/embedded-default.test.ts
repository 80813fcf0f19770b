import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type ExecutionResult } from 'graphql';
import pg from 'pg';
import { startFakeWebhookReceiver } from '../fakes/webhook-receiver.js';
import {
  AddAudienceMembers,
  CreateAudience,
  CreateAudienceSync,
  CreateDestination,
  SyncRuns,
  TriggerAudienceSync,
} from '../support/operations.js';
import { runEntryPoint } from '../support/process.js';
import { expectType } from '../support/scenario.js';
import { waitFor } from '../support/wait.js';

const dataDir = await mkdtemp(join(tmpdir(), 'asg-embedded-'));
afterAll(() => rm(dataDir, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The number `sql` counts (as `n`) on the embedded database listening on `port`. */
async function queryEmbedded(port: number, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres` });
  await client.connect();
  try {
    return (await client.query<{ n: number }>(sql)).rows[0]!.n;
  } finally {
    await client.end();
  }
}

async function queryDestinations(port: number, apiKey: string) {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ query: '{ destinations { edges { node { id } } } }' }),
  });
  return response.json();
}

test('with no DATABASE_URL the gateway runs on an embedded PostgreSQL, makes a first API key once, and stops cleanly', async () => {
  const [port, databasePort, jobsPort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    DATA_DIR: dataDir,
    PORT: String(port),
    JOB_POLL_INTERVAL_MS: '500',
    EMBEDDED_DATABASE_PORT: String(databasePort),
    EMBEDDED_JOBS_DATABASE_PORT: String(jobsPort),
  };

  const first = runEntryPoint('build/server.js', env);
  await first.waitFor(/Gateway listening/);
  // The embedded databases listen on the ports chosen: the data, migrated, and Agenda's jobs.
  expect(await queryEmbedded(databasePort, 'SELECT count(*)::int AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL')).toBeGreaterThan(0);
  expect(await queryEmbedded(jobsPort, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE 'agenda%'")).toBeGreaterThan(0);
  const apiKey = (await readFile(join(dataDir, 'api-key'), 'utf8')).trim();
  expect(apiKey).toMatch(/^asg_[\w-]{43}$/);
  expect(first.output()).toContain(apiKey);

  expect(await queryDestinations(port, apiKey)).toEqual({ data: { destinations: { edges: [] } } });
  const graphiql = await fetch(`http://127.0.0.1:${port}/graphql`, { headers: { accept: 'text/html' } });
  expect(graphiql.status).toBe(200);
  expect((await graphiql.text()).toLowerCase()).toContain('graphiql');
  expect(await first.stop('SIGTERM')).toBe(0);

  // A restart keeps the data folder's database: no second key, and the first still works.
  const second = runEntryPoint('build/server.js', env);
  await second.waitFor(/Gateway listening/);
  expect(second.output()).not.toContain('asg_');
  expect(await queryDestinations(port, apiKey)).toEqual({ data: { destinations: { edges: [] } } });
  expect(await second.stop('SIGTERM')).toBe(0);
}, 120_000);

// build/ is what npm start's pre-script compiled, at the start of the test run (test/support/global-setup.ts).
test('npm start’s command runs the JavaScript its pre-script compiles into build/, with no TypeScript loader', async () => {
  const startDataDir = await mkdtemp(join(tmpdir(), 'asg-embedded-start-'));
  const port = await freePort();
  const gateway = runEntryPoint('build/server.js', { DATA_DIR: startDataDir, PORT: String(port) });
  try {
    await gateway.waitFor(/Gateway listening/);
    const apiKey = (await readFile(join(startDataDir, 'api-key'), 'utf8')).trim();
    expect(await queryDestinations(port, apiKey)).toEqual({ data: { destinations: { edges: [] } } });
    // GraphiQL's built page, with the options the gateway writes in.
    const graphiql = await (await fetch(`http://127.0.0.1:${port}/graphql`, { headers: { accept: 'text/html' } })).text();
    expect(graphiql).toContain('<title>Audience sync gateway · GraphiQL</title>');
    expect(graphiql).toContain('id="graphiql-options"');
    expect(await gateway.stop('SIGTERM')).toBe(0);
  } finally {
    await gateway.stop('SIGKILL');
    await rm(startDataDir, { recursive: true, force: true });
  }
}, 120_000);

test('on the embedded default a scheduled sync can be created and runs to its webhook', async () => {
  const signingSecret = 'embedded-default-signing-secret-0123456789';
  const receiver = await startFakeWebhookReceiver({ signingSecret });
  const syncDataDir = await mkdtemp(join(tmpdir(), 'asg-embedded-sync-'));
  const port = await freePort();
  const gateway = runEntryPoint('build/server.js', {
    DATA_DIR: syncDataDir,
    PORT: String(port),
    JOB_POLL_INTERVAL_MS: '200',
    ALLOW_PRIVATE_WEBHOOK_URLS: 'true',
  });
  try {
    await gateway.waitFor(/Gateway listening/);
    const apiKey = (await readFile(join(syncDataDir, 'api-key'), 'utf8')).trim();
    const execute = async <R, V>(document: TypedDocumentNode<R, V>, variables: V): Promise<R> => {
      const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ query: print(document), variables }),
      });
      const result = (await response.json()) as ExecutionResult<R>;
      // An error is logged by the gateway under its request id: show the log with the failure.
      expect(result.errors, `the gateway printed:\n${gateway.output()}`).toBeUndefined();
      return result.data!;
    };
    const { createDestination } = await execute(CreateDestination, {
      input: { name: 'CRM', config: { webhook: { url: receiver.url } }, credentials: { webhook: { signingSecret } } },
    });
    const { createAudience } = await execute(CreateAudience, { input: { name: 'Buyers' } });
    const audienceId = expectType(createAudience, 'CreateAudienceSuccess').audience.id;
    await execute(AddAudienceMembers, {
      audienceId,
      members: [{ email: 'ada@example.com' }, { email: 'grace@example.com' }],
    });
    // Saving the schedule writes to Agenda's store inside the sync's transaction (deadlocked on one PGlite).
    const { createAudienceSync } = await execute(CreateAudienceSync, {
      input: {
        name: 'Buyers to CRM',
        audienceId,
        destinationId: expectType(createDestination, 'CreateDestinationSuccess').destination.id,
        schedule: { frequency: 'DAILY', timezone: 'Europe/Paris' },
      },
    });
    const sync = expectType(createAudienceSync, 'CreateAudienceSyncSuccess').audienceSync;
    expect(sync.schedule).toMatchObject({ cron: null, timezone: 'Europe/Paris' });
    await execute(TriggerAudienceSync, { id: sync.id });
    const status = await waitFor(
      async () => {
        const { node } = await execute(SyncRuns, { id: sync.id });
        return node && 'lastRun' in node ? node.lastRun?.status : undefined;
      },
      (current) => current === 'SUCCEEDED' || current === 'FAILED',
      { what: 'the run to end', timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(status).toBe('SUCCEEDED');
    expect(receiver.held('EMAIL_SHA256')).toHaveLength(2);
    expect(await gateway.stop('SIGTERM')).toBe(0);
  } finally {
    await gateway.stop('SIGKILL');
    await receiver.close();
    await rm(syncDataDir, { recursive: true, force: true });
  }
}, 120_000);

test('a bad setting stops the process at start with a message naming the variable', async () => {
  const bad = runEntryPoint('build/server.js', { DATA_DIR: dataDir, PORT: 'eighty' });
  expect(await bad.exited()).toBe(1);
  expect(bad.output()).toMatch(/Invalid configuration — PORT: /);
  expect(bad.output()).not.toMatch(/\n\s+at /);
});
