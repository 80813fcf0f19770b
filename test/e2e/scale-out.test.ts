import { randomBytes } from 'node:crypto';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, expect, test } from 'vitest';
import WebSocket from 'ws';
import { createApiKey } from '../../src/identity/api-keys.js';
import { connectDatabase, db, disconnectDatabase } from '../../src/infra/db.js';
import { startFakeMeta } from '../fakes/meta-server.js';
import { createTestDatabase } from '../support/database.js';
import { AddAudienceMembers, AudienceSyncRunUpdated, CreateAudience, CreateAudienceSync, CreateDestination } from '../support/operations.js';
import { LOOPBACK_FAKES } from '../support/gateway.js';
import { runEntryPoint, type RunningProcess } from '../support/process.js';
import { META_TOKEN, hashedEmails, heldEmails } from '../support/scenario.js';

// Two gateways and one worker, each a real process, sharing PostgreSQL and Redis.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECRETS_KEY = randomBytes(32).toString('base64');

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let dataDir: string;
let processes: { gatewayA: RunningProcess; gatewayB: RunningProcess; worker: RunningProcess };
let urls: { a: string; b: string };
let apiKey: string;

beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), 'asg-scale-out-'));
  const shared = { DATABASE_URL: database.url, REDIS_URL, SECRETS_KEY, PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...LOOPBACK_FAKES };
  processes = {
    gatewayA: runEntryPoint('build/server.js', { ...shared, ROLES: 'gateway' }),
    gatewayB: runEntryPoint('build/server.js', { ...shared, ROLES: 'gateway' }),
    worker: runEntryPoint('build/worker.js', { ...shared, JOB_POLL_INTERVAL_MS: '200' }),
  };
  const urlOf = async (gateway: RunningProcess) =>
    (JSON.parse(await gateway.waitFor(/Gateway listening/)) as { url: string }).url;
  urls = { a: await urlOf(processes.gatewayA), b: await urlOf(processes.gatewayB) };
  await processes.worker.waitFor(/Worker listening/);
  connectDatabase(database.url);
  const workspace = await db().workspace.create({ data: { name: 'scale-out' } });
  apiKey = (await createApiKey(workspace.id, 'scale-out test')).key;
}, 120_000);

afterAll(async () => {
  for (const running of Object.values(processes)) expect(await running.stop('SIGTERM')).toBe(0);
  await disconnectDatabase();
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Runs an operation on a gateway process over HTTP; returns its data. */
async function call<Result, Variables>(url: string, document: TypedDocumentNode<Result, Variables>, variables: Variables) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const { data, errors } = (await response.json()) as { data: Result; errors?: unknown };
  expect(errors).toBeUndefined();
  return data;
}

test('a subscriber on gateway A follows, live, a run triggered through gateway B and executed by the worker', async () => {
  const fake = await startFakeMeta({ accessToken: META_TOKEN });
  const emails = Array.from({ length: 12_000 }, (_, i) => `reader${i}@example.com`);
  const { createDestination } = await call(urls.a, CreateDestination, {
    input: {
      name: 'Meta',
      config: { meta: { adAccountId: '1', baseUrl: fake.baseUrl } },
      credentials: { meta: { accessToken: META_TOKEN } },
    },
  });
  const { createAudience } = await call(urls.a, CreateAudience, { input: { name: 'Readers' } });
  const audienceId = (createAudience as { audience: { id: string } }).audience.id;
  for (let start = 0; start < emails.length; start += 6_000) {
    const members = emails.slice(start, start + 6_000).map((email) => ({ email }));
    await call(urls.b, AddAudienceMembers, { audienceId, members });
  }
  const { createAudienceSync } = await call(urls.a, CreateAudienceSync, {
    input: {
      name: 'Readers to Meta',
      audienceId,
      destinationId: (createDestination as { destination: { id: string } }).destination.id,
      schedule: { cadenceHours: 0 },
    },
  });
  const syncId = (createAudienceSync as { audienceSync: { id: string } }).audienceSync.id;

  const client = createClient({
    url: urls.a.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${apiKey}` },
    retryAttempts: 0,
  });
  const events = client.iterate({ query: print(AudienceSyncRunUpdated), variables: { syncId } });
  type SeenRun = { id: string; status: string; progress: number; membersAdded: number };
  const nextEvent = async (): Promise<SeenRun> => {
    const { value, done } = await events.next();
    expect(done).toBe(false);
    expect(value.errors).toBeUndefined();
    return (value.data as { audienceSyncRunUpdated: SeenRun }).audienceSyncRunUpdated;
  };
  const triggerThroughB = async (dryRun: boolean): Promise<string> => {
    const trigger =
      'mutation ($id: ID!, $dryRun: Boolean) { triggerAudienceSync(id: $id, dryRun: $dryRun) { ... on TriggerAudienceSyncSuccess { syncRun { id } } } }';
    const response = await fetch(urls.b, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ query: trigger, variables: { id: syncId, dryRun } }),
    });
    const { data } = (await response.json()) as { data: { triggerAudienceSync: { syncRun: { id: string } } } };
    return data.triggerAudienceSync.syncRun.id;
  };

  // The subscription is surely live on gateway A once it has carried a run: a dry run proves it first.
  const probe = await triggerThroughB(true);
  for (let event = await nextEvent(); event.id !== probe || event.status !== 'SUCCEEDED'; event = await nextEvent());

  // The second batch (after the audience's creation and the first batch) waits until the subscriber has
  // seen the run part-way, so a fast run cannot skip the intermediate state this test is about.
  const secondBatch = fake.hold({ after: 2 });
  const runId = await triggerThroughB(false);

  const seen: SeenRun[] = [];
  for (;;) {
    const run = await nextEvent();
    if (run.id !== runId) continue;
    seen.push(run);
    if (run.status === 'RUNNING' && run.progress > 0 && run.progress < 1) secondBatch.release();
    if (['SUCCEEDED', 'FAILED'].includes(run.status)) break;
  }
  await client.dispose();
  expect(seen[0]!.status).toBe('QUEUED');
  expect(seen.some((run) => run.status === 'RUNNING' && run.progress > 0 && run.progress < 1)).toBe(true);
  expect(seen.at(-1)).toMatchObject({ status: 'SUCCEEDED', progress: 1, membersAdded: 12_000 });
  expect(heldEmails(fake)).toEqual(hashedEmails(emails));

  // The logs are JSON lines; the run is logged with its id; no secret and no raw identifier appears.
  const workerLines = processes.worker.output().split('\n').filter((line) => line.startsWith('{'));
  expect(workerLines.map((line) => JSON.parse(line) as { msg: string; runId?: string })).toContainEqual(
    expect.objectContaining({ msg: 'Sync run finished', runId: expect.any(String) }),
  );
  for (const running of Object.values(processes)) {
    const output = running.output();
    for (const secret of [META_TOKEN, apiKey, SECRETS_KEY, 'reader0@example.com', 'reader11999@example.com']) {
      expect(output).not.toContain(secret);
    }
  }
  await fake.close();
}, 120_000);
