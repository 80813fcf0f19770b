import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase } from '../support/database.js';
import { SyncRunUpdated } from '../support/operations.js';
import { runEntryPoint } from '../support/process.js';
import { runSync } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

const suite = useGatewaySuite();
const base = () => suite.gateway.app.url.replace(/\/graphql$/, '');

/** The value of a metric line whose labels include all of `labels` (in any order); 0 when absent. */
async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${base()}/metrics`)).text();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  const line = text
    .split('\n')
    .find((row) => (row.startsWith(`${name} `) || row.startsWith(`${name}{`)) && wanted.every((label) => row.includes(label)));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

test('/healthz says the process is up and /readyz that the database and the job backend answer', async () => {
  const health = await fetch(`${base()}/healthz`);
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ status: 'ok' });

  const ready = await fetch(`${base()}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready', checks: { database: true, jobs: true } });
});

test('/metrics counts finished runs and members sent by platform, and HTTP durations', async () => {
  const { sync } = await suite.metaSyncScenario(['ada@example.com', 'grace@example.com']);
  const before = await metricValue('audience_sync_members_sent_total', { action: 'add', platform: 'META' });
  expect((await runSync(suite.gateway, sync.id)).run.status).toBe('SUCCEEDED');

  expect(await metricValue('audience_sync_members_sent_total', { action: 'add', platform: 'META' })).toBe(before + 2);
  expect(await metricValue('audience_sync_runs_finished_total', { status: 'SUCCEEDED', platform: 'META' })).toBeGreaterThanOrEqual(1);
  const text = await (await fetch(`${base()}/metrics`)).text();
  expect(text).toContain('graphql_yoga_http_duration_bucket');
  expect(text).toContain('audience_sync_job_queue_lag_seconds');
});

test('active subscriptions are counted while open', async () => {
  const { sync } = await suite.metaSyncScenario(['ada@example.com']);
  const { run } = await runSync(suite.gateway, sync.id);
  const idle = await metricValue('graphql_active_subscriptions');
  const events = await suite.gateway.subscribeOverWebSocket(SyncRunUpdated, { runId: run.id });
  expect(await metricValue('graphql_active_subscriptions')).toBe(idle + 1);
  await events.return?.();
  const deadline = Date.now() + 5_000;
  while ((await metricValue('graphql_active_subscriptions')) !== idle && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(await metricValue('graphql_active_subscriptions')).toBe(idle);
});

let database: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

test('a worker-only process serves the ops endpoints but no GraphQL, and exits 0 on SIGTERM', async () => {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as { port: number };
      probe.close(() => resolve(free));
    });
  });
  const worker = runEntryPoint('build/worker.js', {
    DATABASE_URL: database.url,
    PORT: String(port),
    SECRETS_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'info',
  });
  await worker.waitFor(/Worker listening/);
  expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  expect(await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()).toMatchObject({ status: 'ready' });
  expect((await fetch(`http://127.0.0.1:${port}/graphql`)).status).toBe(404);
  expect(await worker.stop('SIGTERM')).toBe(0);
}, 90_000);
