// `npm run bench:fanout -- [--subscribers 1000] [--runs 6] [--cpu-prof DIR]`: how evenly one gateway fans a sync's run
// updates out to many graphql-ws subscribers. Starts a gateway (start:gateway's command, NODE_ENV=production,
// rate limiting off) and a worker, each its own process, sharing a fresh PostgreSQL database (the server
// of DATABASE_URL, postgresql://postgres@127.0.0.1:5432 by default, dropped after) and Redis (REDIS_URL,
// redis://127.0.0.1:6379), so the worker's events reach the gateway as they do in production. A fake Meta
// runs in this process. `--subscribers` graphql-ws clients, each on its own socket, subscribe to
// `syncRunsUpdated(syncId)` of one sync of 20,000 members; then `--runs` runs happen one after the other
// (the first adds everyone, in two batches; the next ones remove or add back 5,000 members).
// For every distinct event (run, status, phase, progress, activity, counts), the spread is the time from
// its first to its last delivery among the subscribers, measured in this process. Prints progress lines,
// then one JSON line: spread p50/p90/p99/max in ms (and the worst of each run), events, deliveries missing, and the gateway's resident
// memory before the sockets, with every socket open, and its peak. `--cpu-prof` writes the gateway's CPU profile. Bounded: each run must end within 120 s.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient, type Client } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { createApiKey } from '../src/identity/api-keys.js';
import { connectDatabase, db, disconnectDatabase } from '../src/infra/db.js';
import { applyMigrations } from '../src/infra/migrations.js';
import { startFakeMeta } from '../test/fakes/meta-server.js';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '6' },
    'cpu-prof': { type: 'string' },
  },
});
const subscriberCount = Number(values.subscribers);
const runCount = Number(values.runs);
if (!Number.isInteger(subscriberCount) || subscriberCount < 1 || !Number.isInteger(runCount) || runCount < 1) {
  throw new Error('--subscribers and --runs must be whole numbers of at least 1');
}
const MEMBERS = 20_000;
const CHANGED_PER_RUN = 5_000;
const RUN_TIMEOUT_MS = 120_000;
const META_TOKEN = 'EAAB-bench-fanout-token';

const serverUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const databaseName = `asg_bench_fanout_${process.pid}`;
const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${databaseName}` }).toString();
const root = fileURLToPath(new URL('../', import.meta.url));

const SUBSCRIPTION = `subscription ($syncId: ID) {
  syncRunsUpdated(syncId: $syncId) { id status phase progress activity membersAdded membersRemoved }
}`;

async function onServer(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  await client.query(sql).finally(() => client.end());
}

/** Starts a process of the project with `command`'s node flags and settings; resolves once `ready` matches. */
async function startProcess(script: string, env: Record<string, string>, ready: RegExp, nodeFlags: string[] = []) {
  const scripts = JSON.parse(readFileSync(`${root}package.json`, 'utf8')).scripts as Record<string, string>;
  const words = scripts[script]!.split(/\s+/);
  const settings = Object.fromEntries(words.filter((word) => /^[A-Z_]+=/.test(word)).map((word) => word.split('=', 2)));
  const args = words.filter((word) => !/^[A-Z_]+=/.test(word) && word !== 'exec').slice(1);
  const child = spawn(process.execPath, [...nodeFlags, ...args], {
    cwd: root,
    env: { ...process.env, ...settings, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  for await (const chunk of child.stdout!) {
    output += chunk;
    const match = ready.exec(output);
    if (match) {
      child.stdout!.resume();
      return { child, match };
    }
  }
  throw new Error(`${script} exited before it was ready:\n${output.slice(-2000)}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

function residentMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024);
}

async function call(url: string, apiKey: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ query, variables }),
  });
  const { data, errors } = (await response.json()) as { data: Record<string, Record<string, unknown>>; errors?: unknown };
  if (errors) throw new Error(`GraphQL errors: ${JSON.stringify(errors)}`);
  return data;
}

const emails = Array.from({ length: MEMBERS }, (_, i) => `fan${i}@example.com`);

async function changeMembers(url: string, apiKey: string, audienceId: string, field: 'add' | 'remove', list: string[]) {
  const mutation =
    field === 'add'
      ? 'mutation ($a: ID!, $m: [AudienceMemberInput!]!) { addAudienceMembers(audienceId: $a, members: $m) { __typename } }'
      : 'mutation ($a: ID!, $m: [AudienceMemberInput!]!) { removeAudienceMembers(audienceId: $a, members: $m) { __typename } }';
  for (let start = 0; start < list.length; start += 5_000) {
    await call(url, apiKey, mutation, { a: audienceId, m: list.slice(start, start + 5_000).map((email) => ({ email })) });
  }
}

interface Subscriber {
  client: Client;
  /** Arrival time (performance.now()) of each result, keyed by its JSON. */
  arrivals: Map<string, number>;
  /** Each run's id once its end arrived. */
  ended: Set<string>;
}

/** A graphql-ws client on its own socket; resolves once the gateway holds its subscription. */
async function subscribe(url: string, apiKey: string, syncId: string, onEnd: () => void): Promise<Subscriber> {
  const client = createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${apiKey}` },
    retryAttempts: 0,
  });
  const subscriber: Subscriber = { client, arrivals: new Map(), ended: new Set() };
  client.subscribe<{ syncRunsUpdated: { id: string; status: string } }>(
    { query: SUBSCRIPTION, variables: { syncId } },
    {
      next: (result) => {
        const at = performance.now();
        subscriber.arrivals.set(JSON.stringify(result.data), at);
        const run = result.data!.syncRunsUpdated;
        if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status)) {
          subscriber.ended.add(run.id);
          onEnd();
        }
      },
      error: (error) => console.error('subscription error', error),
      complete: () => undefined,
    },
  );
  // One socket carries its messages in order: once a later query is answered, the subscription is set up.
  await new Promise<void>((resolve, reject) =>
    client.subscribe({ query: '{ __typename }' }, { next: () => undefined, error: reject, complete: resolve }),
  );
  return subscriber;
}

const percentile = (sorted: number[], share: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))]!;
const round = (value: number) => Math.round(value * 10) / 10;

async function main() {
  await onServer(`CREATE DATABASE ${databaseName}`);
  const dataDir = await mkdtemp(join(tmpdir(), 'asg-bench-fanout-'));
  const fake = await startFakeMeta({ accessToken: META_TOKEN });
  const processes: ChildProcess[] = [];
  const subscribers: Subscriber[] = [];
  try {
    await applyMigrations(databaseUrl);
    const shared = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      SECRETS_KEY: randomBytes(32).toString('base64'),
      DATA_DIR: dataDir,
      PORT: '0',
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      ALLOW_PRIVATE_URLS: 'true',
      ALLOW_CUSTOM_PLATFORM_URLS: 'true',
    };
    const gateway = await startProcess(
      'start:gateway',
      { ...shared, LOG_LEVEL: 'info', RATE_LIMIT_POINTS: '0', MAX_CONCURRENT_REQUESTS: '64' },
      /"url":"(http[^"]+)"/,
      values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [],
    );
    processes.push(gateway.child);
    const worker = await startProcess('start:worker', { ...shared, LOG_LEVEL: 'info', JOB_POLL_INTERVAL_MS: '200' }, /Worker listening/);
    processes.push(worker.child);
    const url = gateway.match[1]!.replace('localhost', '127.0.0.1');

    connectDatabase(databaseUrl);
    const workspace = await db().workspace.create({ data: { name: 'bench-fanout' } });
    const { key: apiKey } = await createApiKey(workspace.id, 'bench-fanout');
    const { createDestination } = await call(url, apiKey, `mutation ($input: CreateDestinationInput!) {
      createDestination(input: $input) { ... on CreateDestinationSuccess { destination { id } } ... on Error { message } } }`, {
      input: { name: 'Meta', config: { meta: { adAccountId: 'act_1', baseUrl: fake.baseUrl } }, credentials: { meta: { accessToken: META_TOKEN } } },
    });
    const destinationId = (createDestination!.destination as { id: string }).id;
    const { createAudience } = await call(url, apiKey, `mutation { createAudience(input: { name: "Fan-out" }) {
      ... on CreateAudienceSuccess { audience { id } } } }`);
    const audienceId = (createAudience!.audience as { id: string }).id;
    await changeMembers(url, apiKey, audienceId, 'add', emails);
    const { createAudienceSync } = await call(url, apiKey, `mutation ($input: CreateAudienceSyncInput!) {
      createAudienceSync(input: $input) { ... on CreateAudienceSyncSuccess { audienceSync { id } } ... on Error { message } } }`, {
      input: { name: 'Fan-out to Meta', audienceId, destinationId, schedule: { cadenceHours: 0 } },
    });
    const syncId = (createAudienceSync!.audienceSync as { id: string }).id;

    let endings = 0;
    let onEnding = () => undefined as void;
    const ended = () => {
      endings++;
      onEnding();
    };
    const rssIdle = residentMb(gateway.child.pid!, 'VmRSS');
    const connectStarted = performance.now();
    // Connected in waves, so the handshakes do not all wait on one another.
    for (let start = 0; start < subscriberCount; start += 100) {
      const wave = Array.from({ length: Math.min(100, subscriberCount - start) }, () => subscribe(url, apiKey, syncId, ended));
      subscribers.push(...(await Promise.all(wave)));
    }
    const rssWithSockets = residentMb(gateway.child.pid!, 'VmRSS');
    console.log(
      `${subscriberCount} subscribers connected in ${Math.round(performance.now() - connectStarted)} ms; gateway RSS ${rssWithSockets} MB`,
    );

    /** Each run's number, by its global id. */
    const runNumbers = new Map<string, number>();
    const trigger = `mutation ($id: ID!) { triggerAudienceSync(id: $id) { ... on TriggerAudienceSyncSuccess { syncRun { id } } ... on Error { message } } }`;
    for (let run = 1; run <= runCount; run++) {
      if (run > 1) {
        const changed = emails.slice(0, CHANGED_PER_RUN);
        await changeMembers(url, apiKey, audienceId, run % 2 === 0 ? 'remove' : 'add', changed);
      }
      const target = endings + subscriberCount;
      const allEnded = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`run ${run} did not reach every subscriber within ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
        onEnding = () => {
          if (endings >= target) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
      const started = performance.now();
      const { triggerAudienceSync } = await call(url, apiKey, trigger, { id: syncId });
      if (!triggerAudienceSync?.syncRun) throw new Error(`triggerAudienceSync failed: ${JSON.stringify(triggerAudienceSync)}`);
      runNumbers.set((triggerAudienceSync.syncRun as { id: string }).id, run);
      await allEnded;
      console.log(`run ${run} of ${runCount} reached every subscriber in ${Math.round(performance.now() - started)} ms`);
    }

    const first = new Map<string, number>();
    const last = new Map<string, number>();
    const deliveries = new Map<string, number>();
    for (const subscriber of subscribers) {
      for (const [key, at] of subscriber.arrivals) {
        first.set(key, Math.min(first.get(key) ?? Infinity, at));
        last.set(key, Math.max(last.get(key) ?? -Infinity, at));
        deliveries.set(key, (deliveries.get(key) ?? 0) + 1);
      }
    }
    const spreadOf = (key: string) => last.get(key)! - first.get(key)!;
    const spreads = [...first.keys()].map(spreadOf).sort((a, b) => a - b);
    // The worst spread of each run's events (the first run's code paths are also the first to be compiled).
    const maxByRun = Array.from({ length: runCount }, () => 0);
    for (const key of first.keys()) {
      const run = runNumbers.get((JSON.parse(key) as { syncRunsUpdated: { id: string } }).syncRunsUpdated.id)!;
      maxByRun[run - 1] = Math.max(maxByRun[run - 1]!, spreadOf(key));
    }
    const missing = [...deliveries.values()].reduce((sum, count) => sum + (subscriberCount - count), 0);
    const result = {
      subscribers: subscriberCount,
      runs: runCount,
      events: spreads.length,
      deliveries: [...deliveries.values()].reduce((sum, count) => sum + count, 0),
      missingDeliveries: missing,
      spreadMsP50: round(percentile(spreads, 0.5)),
      spreadMsP90: round(percentile(spreads, 0.9)),
      spreadMsP99: round(percentile(spreads, 0.99)),
      spreadMsMax: round(spreads.at(-1) ?? 0),
      spreadMsMaxByRun: maxByRun.map(round),
      gatewayRssMbIdle: rssIdle,
      gatewayRssMbWithSockets: rssWithSockets,
      gatewayPeakRssMb: residentMb(gateway.child.pid!, 'VmHWM'),
      loadAverage1m: round(loadavg()[0]!),
    };
    console.log(JSON.stringify(result));
  } finally {
    await Promise.all(subscribers.map((subscriber) => subscriber.client.dispose()));
    for (const child of processes.reverse()) await stopProcess(child);
    await disconnectDatabase();
    await fake.close();
    await onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
