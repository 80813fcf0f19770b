// `npm run bench -- [--members N] [--repeat 3] [--cpu-prof DIR] [--node-flags="…"]`: a full MIRROR sync of N members
// (1,000,000 by default) to a Meta-shaped sink over HTTP, then runs after 1% churn, against a floor
// measured in this process (read the same identifiers from PostgreSQL, normalize and hash them, POST
// the same bytes to the same sink). The runs happen as in production: in a worker process started
// with `npm run start:worker`'s command, which picks up the queued job; their peak RSS is that
// process's (VmHWM, reset before each run). The full sync, the floor and the churn run are each
// measured `--repeat` times and judged by their median against the targets: full sync ≤ 1.5× the
// floor from 1,000,000 members (≤ 2× below), churn ≤ 5% of the full sync, worker peak RSS ≤ 200 MB.
// Prints each measurement with the load average beside it, the medians and the targets; the last
// line is one JSON object. `--cpu-prof DIR` writes the worker's CPU profile there when it exits;
// `--node-flags="…"` replaces start:worker's node flags.
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connectDatabase, db, disconnectDatabase } from '../src/infra/db.js';
import type { ContactIdentity, EncodedMember } from '../src/destinations/destination.js';
import { connectorFor } from '../src/destinations/registry.js';
import { setAddressPolicy } from '../src/infra/address-policy.js';
import { logger } from '../src/infra/logger.js';
import { applyMigrations } from '../src/infra/migrations.js';
import { closeEventBus, openEventBus } from '../src/infra/pubsub.js';
import { SecretBox, loadSecretBox } from '../src/infra/secrets.js';
import { enqueueSyncRun } from '../src/jobs/audience-sync.js';
import { closeScheduler, openScheduler } from '../src/jobs/scheduler.js';
import { requestSyncRun } from '../src/sync/request-run.js';

const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '1000000' },
    repeat: { type: 'string', default: '3' },
    'cpu-prof': { type: 'string' },
    'node-flags': { type: 'string' },
  },
});
const members = Number(values.members);
if (!Number.isInteger(members) || members < 1) throw new Error('--members must be a positive integer');
const repeat = Number(values.repeat);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error('--repeat must be a positive integer');

/** The 1, 5 and 15 minute load averages, as uptime prints them. */
const loadAverage = () => loadavg().map((load) => load.toFixed(2)).join(', ');

interface Measured {
  seconds: number;
  /** The load average when the measurement ended. */
  load: string;
  peakRssMb?: number;
  membersPerSecond?: number;
  /** The worker's CPU time during the run (the bench process's, for the floor). */
  cpuSeconds?: number;
  databaseCpuSeconds?: number;
  sinkCpuSeconds?: number;
}

/** CPU seconds: `own` (the worker's, or the bench process's for the floor), the database's, the sink's. */
const cpuLine = (measured: Measured, own: string) =>
  `CPU ${own} ${measured.cpuSeconds!.toFixed(1)} s + database ${measured.databaseCpuSeconds!.toFixed(1)} s + ` +
  `sink ${measured.sinkCpuSeconds!.toFixed(1)} s`;

/** The median of the measurements' seconds (of an even count, the mean of the middle two). */
function median(measured: Measured[]): number {
  const seconds = measured.map((one) => one.seconds).sort((a, b) => a - b);
  const middle = Math.floor(seconds.length / 2);
  return seconds.length % 2 === 1 ? seconds[middle]! : (seconds[middle - 1]! + seconds[middle]!) / 2;
}

const serverUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const databaseName = `asg_bench_${process.pid}`;
const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${databaseName}` }).toString();

async function onServer(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  await client.query(sql);
  await client.end();
}

/** Starts scripts/bench-sink.ts in its own process and resolves with its URL. */
async function startSink(): Promise<{ url: string; pid: number; stop: () => void }> {
  const sink = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('bench-sink.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(sink.stdout, 'data')) as [Buffer];
  return { url: line.toString().trim(), pid: sink.pid!, stop: () => sink.kill('SIGTERM') };
}

/** Starts a worker with the command of `npm run start:worker` (its node flags included) and
 * resolves once it says it is up. */
async function startWorker(env: Record<string, string>): Promise<ChildProcess> {
  const root = fileURLToPath(new URL('../', import.meta.url));
  const scripts = JSON.parse(readFileSync(`${root}package.json`, 'utf8')).scripts as Record<string, string>;
  const words = scripts['start:worker']!.split(/\s+/);
  // `NAME=value … exec node <flags> <entry>`: the variables go in the environment, node is this one.
  const settings = Object.fromEntries(words.filter((word) => /^[A-Z_]+=/.test(word)).map((word) => word.split('=', 2)));
  const [command, ...args] = words.filter((word) => !/^[A-Z_]+=/.test(word) && word !== 'exec');
  if (command !== 'node') throw new Error('start:worker is expected to run node');
  // Its pre-script compiles src/ into build/, where its entry point is: done here, as npm would.
  execFileSync(process.execPath, [`${root}scripts/build-server.mjs`]);
  const profile = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
  const flags = values['node-flags'] !== undefined ? values['node-flags'].split(/\s+/).filter(Boolean) : args.slice(0, -1);
  const worker = spawn(process.execPath, [...flags, ...profile, ...args.slice(-1)], {
    cwd: root,
    env: { ...process.env, ...settings, ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  for await (const chunk of worker.stdout!) {
    output += chunk;
    if (output.includes('Worker listening')) break;
  }
  // Its further log lines are not needed; they must still be read, or the worker would block on them.
  worker.stdout!.resume();
  return worker;
}

/** A process's resident memory now, or its peak since the last reset, in MB (Linux). */
function residentMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024);
}

/** The CPU time a process has used (user and system), in seconds (Linux: clock ticks of 10 ms). On a
 * machine shared with other work, a run's CPU time moves less than its duration. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function waitForRunEnd(runId: string) {
  for (;;) {
    const run = await db().syncRun.findUniqueOrThrow({ where: { id: runId } });
    if (run.status !== 'QUEUED' && run.status !== 'RUNNING') return run;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The CPU time so far of the database's server processes for the bench's database, by pid. */
async function databaseCpu(): Promise<Map<number, number>> {
  const backends = await db().$queryRaw<{ pid: number }[]>`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'`;
  const cpu = new Map<number, number>();
  for (const { pid } of backends) {
    try {
      cpu.set(pid, cpuSeconds(pid));
    } catch {
      // Ended meanwhile.
    }
  }
  return cpu;
}

/** The database's and the sink's CPU time since `before` (the database's over the connections open at
 * the end: one closed meanwhile is missed, so it is a lower bound). */
async function sideCpu(before: { database: Map<number, number>; sink: number }) {
  const database = await databaseCpu();
  let used = 0;
  for (const [pid, seconds] of database) used += seconds - (before.database.get(pid) ?? 0);
  return { databaseCpuSeconds: used, sinkCpuSeconds: cpuSeconds(sinkPid) - before.sink };
}

const sidesNow = async () => ({ database: await databaseCpu(), sink: cpuSeconds(sinkPid) });

async function runSync(worker: ChildProcess, syncId: string, expected: number): Promise<Measured> {
  const requested = await requestSyncRun(syncId, 'MANUAL', false);
  // Resets the worker's peak RSS (VmHWM) to what it holds now.
  writeFileSync(`/proc/${worker.pid}/clear_refs`, '5');
  const sides = await sidesNow();
  const cpuBefore = cpuSeconds(worker.pid!);
  const started = performance.now();
  await enqueueSyncRun(requested!.run.id);
  const run = await waitForRunEnd(requested!.run.id);
  const seconds = (performance.now() - started) / 1000;
  if (run.status !== 'SUCCEEDED') throw new Error(`The run ended ${run.status}: ${run.errorMessage}`);
  const changed = run.membersAdded + run.membersRemoved;
  if (changed !== expected) throw new Error(`The run changed ${changed} members, expected ${expected}`);
  return {
    seconds,
    load: loadAverage(),
    peakRssMb: residentMb(worker.pid!, 'VmHWM'),
    cpuSeconds: cpuSeconds(worker.pid!) - cpuBefore,
    ...(await sideCpu(sides)),
    membersPerSecond: Math.round(changed / seconds),
  };
}

async function measure(work: () => Promise<unknown>): Promise<Measured> {
  const sides = await sidesNow();
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await work();
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (performance.now() - started) / 1000;
  return { seconds, load: loadAverage(), cpuSeconds: (cpu.user + cpu.system) / 1e6, ...(await sideCpu(sides)) };
}

/** The floor: what reading, hashing and posting the same members costs with no sync bookkeeping. */
async function floor(audienceId: string, destination: Parameters<typeof connectorFor>[0]) {
  const connector = connectorFor(destination);
  const mapping = [{ sourceField: 'email' as const, destinationField: 'EMAIL' }];
  return measure(async () => {
    let after = 0n;
    let batchSeq = 0;
    for (;;) {
      const rows = await db().$queryRaw<ContactIdentity[]>`
        SELECT c.id, c.email, c.phone, c.first_name AS "firstName", c.last_name AS "lastName", c.country, c.zip,
               c.external_id AS "externalId", c.mobile_ad_id AS "mobileAdId"
        FROM audience_member m JOIN contact c ON c.id = m.contact_id
        WHERE m.audience_id = ${audienceId}::uuid AND m.contact_id > ${after}
        ORDER BY m.contact_id LIMIT ${connector.maxBatchSize}`;
      if (rows.length === 0) return;
      after = rows.at(-1)!.id;
      const encoded: EncodedMember[] = rows.map((row) => ({ contactId: row.id, identifiers: connector.encode(row, mapping)! }));
      await connector.addMembers('1', encoded, { id: 'floor', batchSeq: ++batchSeq, lastBatch: false, estimatedTotal: members });
    }
  });
}

logger.level = 'warn';
await onServer(`CREATE DATABASE ${databaseName}`);
const sink = await startSink();
const sinkPid = sink.pid;
let worker: ChildProcess | undefined;
try {
  await applyMigrations(databaseUrl);
  connectDatabase(databaseUrl);
  await openEventBus(undefined);
  const secretsKey = randomBytes(32).toString('base64');
  const secrets = await loadSecretBox(secretsKey, '/nonexistent');
  const agenda = await openScheduler({ databaseUrl, notifications: true, pollIntervalMs: 1000, lockLifetimeMs: 60_000 });
  await agenda.start();

  const workspace = await db().workspace.create({ data: { name: 'bench' } });
  const audience = await db().audience.create({ data: { workspaceId: workspace.id, name: 'bench' } });
  const destination = await db().destination.create({
    data: {
      workspaceId: workspace.id,
      name: 'sink',
      platform: 'META',
      config: { adAccountId: '1', baseUrl: sink.url },
      credentials: (secrets as SecretBox).seal(JSON.stringify({ accessToken: 'bench-token' })),
    },
  });
  const sync = await db().audienceSync.create({
    data: {
      workspaceId: workspace.id,
      audienceId: audience.id,
      destinationId: destination.id,
      name: 'bench',
      mode: 'MIRROR',
      fieldMapping: [{ sourceField: 'email', destinationField: 'EMAIL' }],
      platformAudienceId: '1',
    },
  });

  const setup = await measure(async () => {
    await db().$executeRaw`
      INSERT INTO contact (workspace_id, key, email)
      SELECT ${workspace.id}::uuid, 'email:member' || i || '@example.com', 'member' || i || '@example.com'
      FROM generate_series(1, ${members}) AS i`;
    await db().$executeRaw`
      INSERT INTO audience_member (audience_id, contact_id) SELECT ${audience.id}::uuid, id FROM contact`;
    // As autovacuum leaves freshly loaded tables soon enough: statistics, and visibility maps that
    // let index-only scans skip the table.
    await db().$executeRaw`VACUUM ANALYZE`;
  });
  console.log(`setup: ${members} members in ${setup.seconds.toFixed(1)} s (load ${setup.load})`);

  // The sink listens on loopback, as the destination's baseUrl: the address policy must let the worker
  // (and the floor, measured in this process) reach it.
  setAddressPolicy({ allowPrivate: true, allowCustomPlatformUrls: true });
  worker = await startWorker({
    DATABASE_URL: databaseUrl,
    SECRETS_KEY: secretsKey,
    PORT: '0',
    ALLOW_PRIVATE_URLS: 'true',
    ALLOW_CUSTOM_PLATFORM_URLS: 'true',
  });
  console.log(`worker RSS before the runs: ${residentMb(worker.pid!, 'VmRSS')} MB`);
    // Each figure is the median of `repeat` measurements, so that one noisy run does not decide. A full
  // sync starts each time from an empty destination record (as the first did); each floor
  // measurement follows a full sync, so that both see the same machine.
  const fulls: Measured[] = [];
  const floors: Measured[] = [];
  for (let i = 1; i <= repeat; i++) {
    if (i > 1) await db().$executeRaw`TRUNCATE synced_member, batch_in_doubt`;
    const full = await runSync(worker, sync.id, members);
    console.log(
      `full sync ${i}/${repeat}: ${full.seconds.toFixed(2)} s, ${full.membersPerSecond} members/s, ` +
        `peak RSS ${full.peakRssMb} MB, ${cpuLine(full, 'worker')} (load ${full.load})`,
    );
    fulls.push(full);
    const floorRun = await floor(audience.id, destination);
    console.log(`floor ${i}/${repeat}: ${floorRun.seconds.toFixed(2)} s (read, hash and post the same members), ${cpuLine(floorRun, 'bench')} (load ${floorRun.load})`);
    floors.push(floorRun);
  }

  // 1% churn, from the state the last full sync left: half of it leaves the audience, half of it is
  // new contacts. Each repeat churns other members. The churn runs stand for the next scheduled runs,
  // hours later in production: autovacuum has passed over the rows the full sync wrote by then.
  await db().$executeRaw`VACUUM ANALYZE synced_member`;
  const churn = Math.max(2, Math.round(members / 100));
  const churns: Measured[] = [];
  for (let i = 1; i <= repeat; i++) {
    await db().$executeRaw`
      DELETE FROM audience_member
      WHERE contact_id IN (SELECT contact_id FROM audience_member ORDER BY contact_id LIMIT ${churn / 2})`;
    await db().$executeRaw`
      WITH added AS (
        INSERT INTO contact (workspace_id, key, email)
        SELECT ${workspace.id}::uuid, 'email:new' || ${i} || '-' || n || '@example.com', 'new' || ${i} || '-' || n || '@example.com'
        FROM generate_series(1, ${churn / 2}) AS n
        RETURNING id)
      INSERT INTO audience_member (audience_id, contact_id) SELECT ${audience.id}::uuid, id FROM added`;
    const churned = await runSync(worker, sync.id, churn);
    console.log(
      `1% churn ${i}/${repeat}: ${churned.seconds.toFixed(2)} s, ${churned.membersPerSecond} members/s, ` +
        `peak RSS ${churned.peakRssMb} MB, ${cpuLine(churned, 'worker')} (load ${churned.load})`,
    );
    churns.push(churned);
  }

  const full = median(fulls);
  const churned = median(churns);
  const floorSeconds = median(floors);
  const ratio = full / floorSeconds;
  const churnShare = churned / full;
  const peakRssMb = Math.max(...fulls.map((run) => run.peakRssMb!), ...churns.map((run) => run.peakRssMb!));
  const floorTarget = members >= 1_000_000 ? 1.5 : 2;
  const verdict = (held: boolean) => (held ? 'met' : 'MISSED');
  console.log(
    `medians of ${repeat}: full ${full.toFixed(2)} s, floor ${floorSeconds.toFixed(2)} s, churn ${churned.toFixed(2)} s ` +
      `(load average now ${loadAverage()})`,
  );
  console.log(
    `targets: full ≤ ${floorTarget}× floor: ${ratio.toFixed(2)}× ${verdict(ratio <= floorTarget)}; ` +
      `churn ≤ 5% of full: ${(100 * churnShare).toFixed(1)}% ${verdict(churnShare <= 0.05)}; ` +
      `worker peak RSS ≤ 200 MB: ${peakRssMb} MB ${verdict(peakRssMb <= 200)}`,
  );

  const figures = (runs: Measured[]) => ({
    seconds: Number(median(runs).toFixed(2)),
    runs: runs.map((run) => Number(run.seconds.toFixed(2))),
    peakRssMb: Math.max(...runs.map((run) => run.peakRssMb!)),
    workerCpuSeconds: runs.map((run) => Number(run.cpuSeconds!.toFixed(2))),
    databaseCpuSeconds: runs.map((run) => Number(run.databaseCpuSeconds!.toFixed(2))),
    sinkCpuSeconds: runs.map((run) => Number(run.sinkCpuSeconds!.toFixed(2))),
    loads: runs.map((run) => run.load),
  });
  console.log(
    JSON.stringify({
      members,
      repeat,
      full: figures(fulls),
      churn: figures(churns),
      floor: {
        seconds: Number(floorSeconds.toFixed(2)),
        runs: floors.map((run) => Number(run.seconds.toFixed(2))),
        cpuSeconds: floors.map((run) => Number(run.cpuSeconds!.toFixed(2))),
        databaseCpuSeconds: floors.map((run) => Number(run.databaseCpuSeconds!.toFixed(2))),
        sinkCpuSeconds: floors.map((run) => Number(run.sinkCpuSeconds!.toFixed(2))),
      },
      ratioToFloor: Number(ratio.toFixed(2)),
      churnShareOfFull: Number(churnShare.toFixed(3)),
      targets: {
        fullToFloor: { target: floorTarget, met: ratio <= floorTarget },
        churnShareOfFull: { target: 0.05, met: churnShare <= 0.05 },
        peakRssMb: { target: 200, met: peakRssMb <= 200 },
      },
      loadAverage: loadAverage(),
    }),
  );
} finally {
  // Waited for: the worker writes its CPU profile as it exits.
  if (worker && worker.exitCode === null) {
    const exited = once(worker, 'exit');
    worker.kill('SIGTERM');
    await exited;
  }
  sink.stop();
  await closeScheduler(1000);
  await closeEventBus();
  await disconnectDatabase();
  await onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
}
