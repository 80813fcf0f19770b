// `npm run bench:api -- [--seconds 10] [--connections 10,50,200] [--node-flags="…"] [--cpu-prof DIR]`:
// the API's per-request cost against its floor. Starts, each in its own process, a bare graphql-yoga
// server of the gateway's version answering a trivial resolver (scripts/bench-floor.ts) and the gateway
// (the command of `npm run start:gateway`, NODE_ENV=production, rate limiting off) on a fresh PostgreSQL
// database (the server of DATABASE_URL, postgresql://postgres@127.0.0.1:5432 by default, dropped after),
// seeded with one workspace of 100 syncs, each with its own audience, one of 5 destinations, a last run
// and 5 runs. autocannon, in this process, drives at each connection count:
//   floor      `{ hello }` on the bare server;
//   viewer     `viewer { workspace { id } role }` with an API key (an authenticated trivial query);
//   dashboard  the first 50 syncs with destination, audience, last run and 5 runs each, answered from the
//              gateway's response cache once it has run (nothing changes meanwhile);
//   executed   the same dashboard on a second gateway whose response cache is off (RESPONSE_CACHE_ENTRIES=0):
//              every request executed.
// Then, at 10 connections, the cached dashboard while a run of the workspace changes every 100 ms (as a
// run in progress does: each change drops the workspace's answers; cache hits and misses printed).
// Then, at 10 connections on the gateway without a cache, the dashboard as the run history grows to
// 100,000 runs (latency should stay flat) and as the page grows from 10 to 100 syncs (no worse than
// linear). Every response's body is checked for GraphQL errors (`mismatches`); shed requests (429/503
// with Retry-After) count as `shed`.
// `--node-flags` replaces start:gateway's node flags (e.g. "" for Node's defaults); `--cpu-prof DIR`
// writes the gateway's CPU profile there when it stops. Prints one line per measurement; the last line
// is one JSON object. Traffic goes to loopback only, and each measurement is bounded in time.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { createApiKey } from '../src/identity/api-keys.js';
import { connectDatabase, db, disconnectDatabase } from '../src/infra/db.js';
import { applyMigrations } from '../src/infra/migrations.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '10,50,200' },
    'node-flags': { type: 'string' },
    'cpu-prof': { type: 'string' },
    only: { type: 'string', default: 'floor,viewer,dashboard,executed,changing,history,pages' },
  },
});
const seconds = Number(values.seconds);
const connectionCounts = values.connections.split(',').map(Number);
if (!(seconds > 0) || connectionCounts.some((count) => !Number.isInteger(count) || count < 1)) {
  throw new Error('--seconds must be positive and --connections a comma-separated list of whole numbers');
}
const parts = new Set(values.only.split(','));
const SYNCS = 100;
const DESTINATIONS = 5;
const RUNS_PER_SYNC = 5;
const DASHBOARD_PAGE = 50;
const HISTORY_STEPS = [10_000, 50_000, 100_000];
const PAGE_SIZES = [10, 25, 50, 100];
const WARM_UP_SECONDS = 2;
const CHANGE_EVERY_MS = 100;

const serverUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const databaseName = `asg_bench_api_${process.pid}`;
const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${databaseName}` }).toString();
const root = fileURLToPath(new URL('../', import.meta.url));

async function onServer(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  await client.query(sql).finally(() => client.end());
}

/** Reads a child's stdout until `ready` matches a line; returns the match. Later output is drained. */
async function waitForLine(child: ChildProcess, ready: RegExp): Promise<RegExpExecArray> {
  let output = '';
  for await (const chunk of child.stdout!) {
    output += chunk;
    const match = ready.exec(output);
    if (match) {
      child.stdout!.resume();
      return match;
    }
  }
  throw new Error(`The process exited before it was ready:\n${output.slice(-2000)}`);
}

async function startFloor(): Promise<{ url: string; process: ChildProcess }> {
  const floor = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('bench-floor.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [url] = await waitForLine(floor, /^http\S+/m);
  return { url, process: floor };
}

/** The gateway with start:gateway's command (its environment settings and node flags, or `nodeFlags`). */
async function startGateway(env: Record<string, string>): Promise<{ url: string; process: ChildProcess }> {
  const scripts = JSON.parse(readFileSync(`${root}package.json`, 'utf8')).scripts as Record<string, string>;
  const words = scripts['start:gateway']!.split(/\s+/);
  const settings = Object.fromEntries(words.filter((word) => /^[A-Z_]+=/.test(word)).map((word) => word.split('=', 2)));
  const [command, ...args] = words.filter((word) => !/^[A-Z_]+=/.test(word) && word !== 'exec');
  if (command !== 'node') throw new Error('start:gateway is expected to run node');
  // Its pre-script compiles src/ into build/, where its entry point is: done here, as npm would.
  execFileSync(process.execPath, [`${root}scripts/build-server.mjs`]);
  const entry = args.slice(-1);
  const flags = values['node-flags'] !== undefined ? values['node-flags'].split(/\s+/).filter(Boolean) : args.slice(0, -1);
  const profile = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
  const gateway = spawn(process.execPath, [...flags, ...profile, ...entry], {
    cwd: root,
    env: { ...process.env, ...settings, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [, url] = await waitForLine(gateway, /"url":"(http[^"]+)"/);
  return { url: url!.replace('localhost', '127.0.0.1'), process: gateway };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/** A process's resident memory now, or its peak, in MB (Linux). */
function residentMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024);
}

/** One workspace: SYNCS syncs, each with its own audience, one of DESTINATIONS destinations, and
 * RUNS_PER_SYNC runs (the newest its last run). Returns a READ key of the workspace. */
async function seed(): Promise<string> {
  const workspace = await db().workspace.create({ data: { name: 'bench-api' } });
  const { key } = await createApiKey(workspace.id, 'bench', 'READ');
  await db().$executeRaw`
    INSERT INTO destination (id, workspace_id, name, platform, config, credentials_hint, created_at, updated_at)
    SELECT gen_random_uuid(), ${workspace.id}::uuid, 'Meta account ' || i, 'META',
           jsonb_build_object('adAccountId', 'act_' || i), 'token …' || i, now(), now()
    FROM generate_series(1, ${DESTINATIONS}) AS i`;
  await db().$executeRaw`
    INSERT INTO audience (id, workspace_id, name, description, created_at, updated_at)
    SELECT gen_random_uuid(), ${workspace.id}::uuid, 'Audience ' || i, 'Customers of segment ' || i,
           now() - make_interval(secs => i), now()
    FROM generate_series(1, ${SYNCS}) AS i`;
  await db().$executeRaw`
    INSERT INTO audience_sync (id, workspace_id, audience_id, destination_id, name, description, mode, field_mapping,
                               cadence_hours, status, platform_audience_id, last_synced_at, last_synced_count, created_at, updated_at)
    SELECT gen_random_uuid(), a.workspace_id, a.id, d.id, 'Sync of ' || a.name, 'Sends ' || a.name || ' to ' || d.name,
           'MIRROR', '[{"sourceField":"email","destinationField":"EMAIL"},{"sourceField":"phone","destinationField":"PHONE"}]',
           24, 'ACTIVE', '2384' || row_number() OVER (), now(), 1000, a.created_at, now()
    FROM audience a
    JOIN LATERAL (SELECT id, name FROM destination ORDER BY random() LIMIT 1 OFFSET 0) d ON true`;
  await addRuns(RUNS_PER_SYNC, 0);
  await db().$executeRaw`
    UPDATE audience_sync s SET last_run_id = (
      SELECT id FROM sync_run r WHERE r.sync_id = s.id ORDER BY created_at DESC, id DESC LIMIT 1)`;
  return key;
}

/** Adds `perSync` finished runs to every sync, older than the runs it has (`ageHours` further back). */
async function addRuns(perSync: number, ageHours: number): Promise<void> {
  await db().$executeRaw`
    INSERT INTO sync_run (id, workspace_id, sync_id, status, trigger, phase, progress, members_added, members_removed,
                          total_members, identifier_counts, started_at, finished_at, created_at)
    SELECT gen_random_uuid(), s.workspace_id, s.id, 'SUCCEEDED', 'SCHEDULE', 'succeeded', 1, 100 + i, i,
           1000, '{"EMAIL": 900, "PHONE": 100}',
           t - interval '1 minute', t, t - interval '2 minutes'
    FROM audience_sync s, generate_series(1, ${perSync}) AS i,
         LATERAL (SELECT now() - make_interval(hours => ${ageHours} + i)) AS at(t)`;
  await db().$executeRaw`ANALYZE sync_run`;
}

const VIEWER = 'query Viewer { viewer { role workspace { id name } } }';
const DASHBOARD = `query Dashboard($first: Int!) {
  audienceSyncs(first: $first) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id name status statusError mode lastSyncedAt lastSyncedCount createdAt
      schedule { cadenceHours }
      destination { id name platform }
      audience { id name }
      lastRun { id status phase progress finishedAt }
      runs(first: 5) { edges { node { id status phase progress membersAdded membersRemoved createdAt finishedAt } } }
    } }
  }
}`;

interface Target {
  url: string;
  body: string;
  headers: Record<string, string>;
  /** Checks one answer's data (before measuring): throws when it is not what the request asks for. */
  check(data: any): void;
}

const graphqlBody = (query: string, variables: Record<string, unknown> = {}) => JSON.stringify({ query, variables });

async function answerOf(target: Target): Promise<{ bytes: number }> {
  const response = await fetch(target.url, { method: 'POST', headers: target.headers, body: target.body });
  const text = await response.text();
  const body = JSON.parse(text) as { data?: unknown; errors?: unknown };
  if (!response.ok || body.errors) throw new Error(`The request failed (${response.status}): ${text.slice(0, 500)}`);
  target.check(body.data);
  return { bytes: Buffer.byteLength(text) };
}

interface Measurement {
  connections: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  requests: number;
  /** Answers 429 or 503 with Retry-After: load shed. */
  shed: number;
  /** Other failures: connection errors, timeouts, other statuses, GraphQL errors in a 2xx body. */
  errors: number;
  load1: number;
}

async function measure(target: Target, connections: number, duration = seconds): Promise<Measurement> {
  await answerOf(target);
  const options = {
    url: target.url,
    method: 'POST' as const,
    headers: target.headers,
    body: target.body,
    connections,
    timeout: 10,
  };
  await autocannon({ ...options, duration: WARM_UP_SECONDS });
  let shed = 0;
  let failed = 0;
  const result = await autocannon({
    ...options,
    duration,
    requests: [
      {
        onResponse: (status, body, _context, headers) => {
          // autocannon hands the header names as the server spelled them.
          const retryAfter = Object.keys(headers ?? {}).some((name) => name.toLowerCase() === 'retry-after');
          if ((status === 429 || status === 503) && retryAfter) shed++;
          // A 2xx answer with GraphQL errors is a failure too.
          else if (status < 200 || status >= 300 || body.includes('"errors":')) failed++;
        },
      },
    ],
  });
  const round = (value: number) => Math.round(value * 10) / 10;
  return {
    connections,
    requestsPerSecond: round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    requests: result.requests.total,
    shed,
    errors: result.errors + failed,
    load1: round(loadavg()[0]!),
  };
}

/** The gateway's response cache reads so far, by outcome, from its /metrics. */
async function cacheReadsOf(graphqlUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(new URL('/metrics', graphqlUrl))).text();
  const reads = [...text.matchAll(/^graphql_response_cache_reads_total\{outcome="(\w+)"\} (\d+)/gm)];
  return Object.fromEntries(reads.map(([, outcome, count]) => [outcome!, Number(count)]));
}

const print = (what: string, measurement: Measurement, extra: Record<string, unknown> = {}) =>
  console.log(`${what}: ${JSON.stringify({ ...measurement, ...extra })}`);

await onServer(`CREATE DATABASE ${databaseName}`);
let floor: Awaited<ReturnType<typeof startFloor>> | undefined;
let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
let executing: Awaited<ReturnType<typeof startGateway>> | undefined;
try {
  await applyMigrations(databaseUrl);
  connectDatabase(databaseUrl, { poolSize: 2 });
  const apiKey = await seed();
  floor = await startFloor();
  const settings = {
    DATABASE_URL: databaseUrl,
    PORT: '0',
    ROLES: 'gateway',
    RATE_LIMIT_POINTS: '0',
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    SECRETS_KEY: randomBytes(32).toString('base64'),
    DATA_DIR: `/tmp/${databaseName}`,
  };
  gateway = await startGateway(settings);
  executing = await startGateway({ ...settings, RESPONSE_CACHE_ENTRIES: '0' });
  const gatewayPid = gateway.process.pid!;
  console.log(
    `floor ${floor.url}, gateway ${gateway.url} (pid ${gatewayPid}, RSS ${residentMb(gatewayPid, 'VmRSS')} MB), ` +
      `without a cache ${executing.url}, load ${loadavg()[0]!.toFixed(2)}`,
  );

  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };
  const floorTarget: Target = {
    url: floor.url,
    body: graphqlBody('{ hello }'),
    headers: { 'content-type': 'application/json' },
    check: (data) => {
      if (data.hello !== 'world') throw new Error('The floor did not answer');
    },
  };
  const viewer: Target = {
    url: gateway.url,
    body: graphqlBody(VIEWER),
    headers,
    check: (data) => {
      if (data.viewer.role !== 'READ' || !data.viewer.workspace) throw new Error('viewer is not the bench key');
    },
  };
  const dashboard = (first: number, on = gateway!): Target => ({
    url: on.url,
    body: graphqlBody(DASHBOARD, { first }),
    headers,
    check: (data) => {
      const edges = data.audienceSyncs.edges as { node: { lastRun: unknown; runs: { edges: unknown[] } } }[];
      if (edges.length !== Math.min(first, SYNCS)) throw new Error(`The dashboard listed ${edges.length} syncs, not ${first}`);
      if (edges.some(({ node }) => !node.lastRun || node.runs.edges.length !== RUNS_PER_SYNC)) {
        throw new Error('A sync of the dashboard lacks its last run or its 5 runs');
      }
    },
  });

  const report: Record<string, unknown> = { seconds, syncs: SYNCS };
  const rows: Record<string, Measurement[]> = { floor: [], viewer: [], dashboard: [], executed: [] };
  for (const connections of connectionCounts) {
    if (parts.has('floor')) {
      rows.floor!.push(await measure(floorTarget, connections));
      print(`floor ${connections}`, rows.floor!.at(-1)!);
    }
    if (parts.has('viewer')) {
      rows.viewer!.push(await measure(viewer, connections));
      print(`viewer ${connections}`, rows.viewer!.at(-1)!);
    }
    if (parts.has('dashboard')) {
      rows.dashboard!.push(await measure(dashboard(DASHBOARD_PAGE), connections));
      print(`dashboard ${connections}`, rows.dashboard!.at(-1)!);
    }
    if (parts.has('executed')) {
      rows.executed!.push(await measure(dashboard(DASHBOARD_PAGE, executing), connections));
      print(`dashboard executed ${connections}`, rows.executed!.at(-1)!);
    }
  }
  const ratio = (row: Measurement | undefined, index: number) => {
    const base = rows.floor![index];
    return row && base ? Math.round((row.requestsPerSecond / base.requestsPerSecond) * 100) / 100 : null;
  };
  report.floor = rows.floor;
  report.viewer = rows.viewer!.map((row, index) => ({ ...row, toFloor: ratio(row, index) }));
  report.dashboard = rows.dashboard!.map((row, index) => ({ ...row, toFloor: ratio(row, index) }));
  report.dashboardExecuted = rows.executed!.map((row, index) => ({ ...row, toFloor: ratio(row, index) }));
  report.cacheReads = await cacheReadsOf(gateway.url);
  report.dashboardBytes = (await answerOf(dashboard(DASHBOARD_PAGE))).bytes;
  report.gatewayRssMb = residentMb(gatewayPid, 'VmRSS');

  if (parts.has('changing')) {
    const before = await cacheReadsOf(gateway.url);
    let changes = 0;
    let failed: unknown;
    const changing = setInterval(() => {
      // A Prisma query runs once awaited.
      db()
        .$executeRaw`UPDATE sync_run SET progress = random() WHERE id = (SELECT last_run_id FROM audience_sync ORDER BY random() LIMIT 1)`.then(
          () => changes++,
          (error: unknown) => (failed = error),
        );
    }, CHANGE_EVERY_MS);
    const row = await measure(dashboard(DASHBOARD_PAGE), 10).finally(() => clearInterval(changing));
    if (failed) throw failed;
    const after = await cacheReadsOf(gateway.url);
    const reads = { changes, hits: (after.hit ?? 0) - (before.hit ?? 0), misses: (after.miss ?? 0) - (before.miss ?? 0) };
    report.dashboardChanging = { ...row, ...reads };
    print(`dashboard while a run changes every ${CHANGE_EVERY_MS} ms`, row, reads);
  }

  if (parts.has('history')) {
    const history: (Measurement & { runs: number })[] = [];
    let runs = SYNCS * RUNS_PER_SYNC;
    history.push({ ...(await measure(dashboard(DASHBOARD_PAGE, executing), 10)), runs });
    print(`history ${runs} runs`, history.at(-1)!);
    for (const total of HISTORY_STEPS) {
      const perSync = Math.round((total - runs) / SYNCS);
      await addRuns(perSync, runs / SYNCS);
      runs += perSync * SYNCS;
      history.push({ ...(await measure(dashboard(DASHBOARD_PAGE, executing), 10)), runs });
      print(`history ${runs} runs`, history.at(-1)!);
    }
    report.history = history;
    report.historyP50Growth = Math.round((history.at(-1)!.p50Ms / Math.max(1, history[0]!.p50Ms)) * 100) / 100;
  }
  if (parts.has('pages')) {
    const pages: (Measurement & { first: number; bytes: number })[] = [];
    for (const first of PAGE_SIZES) {
      const { bytes } = await answerOf(dashboard(first, executing));
      pages.push({ ...(await measure(dashboard(first, executing), 10)), first, bytes });
      print(`page of ${first}`, pages.at(-1)!);
    }
    report.pages = pages;
    // Latency per sync listed, largest page against smallest: ≤ 1 means no worse than linear.
    const perSync = (page: (typeof pages)[number]) => Math.max(1, page.p50Ms) / page.first;
    report.pageGrowthVsLinear = Math.round((perSync(pages.at(-1)!) / perSync(pages[0]!)) * 100) / 100;
  }
  report.gatewayPeakRssMb = residentMb(gatewayPid, 'VmHWM');
  console.log(JSON.stringify(report));
} finally {
  if (gateway) await stopProcess(gateway.process);
  if (executing) await stopProcess(executing.process);
  if (floor) await stopProcess(floor.process);
  await disconnectDatabase();
  await onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
}
