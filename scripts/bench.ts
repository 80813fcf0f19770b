// `npm run bench -- --members N`: a full MIRROR sync of N members to a Meta-shaped sink over HTTP,
// then a run after 1% churn, against a floor measured in the same process (read the same
// identifiers from PostgreSQL, normalize and hash them, POST the same bytes to the same sink).
// Prints seconds, members per second and peak RSS per run; the last line is one JSON object.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connectDatabase, db, disconnectDatabase } from '../src/db.js';
import type { ContactIdentity, EncodedMember } from '../src/destinations/destination.js';
import { connectorFor } from '../src/destinations/registry.js';
import { logger } from '../src/logger.js';
import { applyMigrations } from '../src/migrations.js';
import { closeEventBus, openEventBus } from '../src/pubsub.js';
import { SecretBox, loadSecretBox } from '../src/secrets.js';
import { executeSyncRun } from '../src/sync/execute-run.js';
import { DEFAULT_RETRY_POLICY } from '../src/sync/platform-retry.js';
import { requestSyncRun } from '../src/sync/request-run.js';

const { values } = parseArgs({ options: { members: { type: 'string', default: '1000000' } } });
const members = Number(values.members);
if (!Number.isInteger(members) || members < 1) throw new Error('--members must be a positive integer');

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
async function startSink(): Promise<{ url: string; stop: () => void }> {
  const sink = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('bench-sink.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(sink.stdout, 'data')) as [Buffer];
  return { url: line.toString().trim(), stop: () => sink.kill('SIGTERM') };
}

/** Samples RSS while `work` runs; returns its duration and the highest RSS seen. */
async function measure(work: () => Promise<unknown>): Promise<{ seconds: number; peakRssMb: number }> {
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  const started = performance.now();
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  return { seconds: (performance.now() - started) / 1000, peakRssMb: Math.round(peak / 1024 / 1024) };
}

async function runSync(syncId: string, expected: number) {
  const requested = await requestSyncRun(syncId, 'MANUAL', false);
  const result = await measure(() =>
    executeSyncRun(requested!.run.id, {
      heartbeat: async () => undefined,
      retryPolicy: DEFAULT_RETRY_POLICY,
      leaseSeconds: 60,
    }),
  );
  const run = await db().syncRun.findUniqueOrThrow({ where: { id: requested!.run.id } });
  if (run.status !== 'SUCCEEDED') throw new Error(`The run ended ${run.status}: ${run.errorMessage}`);
  const changed = run.membersAdded + run.membersRemoved;
  if (changed !== expected) throw new Error(`The run changed ${changed} members, expected ${expected}`);
  return { ...result, membersPerSecond: Math.round(changed / result.seconds), changed };
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
try {
  await applyMigrations(databaseUrl);
  connectDatabase(databaseUrl);
  openEventBus(undefined);
  const secrets = await loadSecretBox(randomBytes(32).toString('base64'), '/nonexistent');

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
    await db().$executeRaw`ANALYZE`;
  });
  console.log(`setup: ${members} members in ${setup.seconds.toFixed(1)} s`);

  console.log(`RSS before the runs: ${Math.round(process.memoryUsage.rss() / 1024 / 1024)} MB`);
  const full = await runSync(sync.id, members);
  console.log(`full sync: ${full.seconds.toFixed(2)} s, ${full.membersPerSecond} members/s, peak RSS ${full.peakRssMb} MB`);

  // 1% churn: half of it leaves the audience, half of it is new contacts.
  const churn = Math.max(2, Math.round(members / 100));
  await db().$executeRaw`
    DELETE FROM audience_member WHERE contact_id IN (SELECT id FROM contact ORDER BY id LIMIT ${churn / 2})`;
  await db().$executeRaw`
    WITH added AS (
      INSERT INTO contact (workspace_id, key, email)
      SELECT ${workspace.id}::uuid, 'email:new' || i || '@example.com', 'new' || i || '@example.com'
      FROM generate_series(1, ${churn / 2}) AS i
      RETURNING id)
    INSERT INTO audience_member (audience_id, contact_id) SELECT ${audience.id}::uuid, id FROM added`;
  const churned = await runSync(sync.id, churn);
  console.log(`1% churn: ${churned.seconds.toFixed(2)} s, ${churned.membersPerSecond} members/s, peak RSS ${churned.peakRssMb} MB`);

  const floorRun = await floor(audience.id, destination);
  console.log(`floor: ${floorRun.seconds.toFixed(2)} s (read, hash and post the same members, no bookkeeping)`);
  console.log(
    `targets: full ≤ 2× floor: ${full.seconds <= 2 * floorRun.seconds ? 'met' : 'MISSED'}; ` +
      `churn < 10% of full: ${churned.seconds < full.seconds / 10 ? 'met' : 'MISSED'}; ` +
      `peak RSS < 300 MB: ${Math.max(full.peakRssMb, churned.peakRssMb) < 300 ? 'met' : 'MISSED'}`,
  );

  const figures = (run: typeof full) => ({
    seconds: Number(run.seconds.toFixed(2)),
    membersPerSecond: run.membersPerSecond,
    peakRssMb: run.peakRssMb,
  });
  console.log(
    JSON.stringify({ members, full: figures(full), churn: figures(churned), floor: { seconds: Number(floorRun.seconds.toFixed(2)) } }),
  );
} finally {
  sink.stop();
  await closeEventBus();
  await disconnectDatabase();
  await onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
}
