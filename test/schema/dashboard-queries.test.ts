import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, test, vi } from 'vitest';
import { db } from '../../src/infra/db.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { dataOf } from '../support/scenario.js';

// A dashboard: a page of syncs with destination, audience, last run and their 5 newest runs. It must
// cost a fixed number of SQL statements whatever the page size, and read only the runs it returns
// however long each sync's history is.
const Dashboard = parse(`query Dashboard($first: Int!) {
  audienceSyncs(first: $first) {
    edges { node {
      id name destination { id name } audience { id name } lastRun { id status }
      runs(first: 5) { edges { node { id status createdAt } } }
    } }
  }
}`) as TypedDocumentNode<
  { audienceSyncs: { edges: { node: { lastRun: { id: string } | null; runs: { edges: { node: { id: string; createdAt: string } }[] } } }[] } },
  { first: number }
>;

const SYNCS = 30;
let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ ROLES: 'gateway', RATE_LIMIT_POINTS: '0' });
  const workspaceId = gateway.workspaceId;
  await db().$executeRaw`
    INSERT INTO destination (id, workspace_id, name, platform, config, updated_at)
    VALUES (gen_random_uuid(), ${workspaceId}::uuid, 'Meta', 'META', '{}', now())`;
  await db().$executeRaw`
    INSERT INTO audience (id, workspace_id, name, created_at, updated_at)
    SELECT gen_random_uuid(), ${workspaceId}::uuid, 'Audience ' || i, now() - make_interval(secs => i), now()
    FROM generate_series(1, ${SYNCS}) AS i`;
  await db().$executeRaw`
    INSERT INTO audience_sync (id, workspace_id, audience_id, destination_id, name, mode, field_mapping, created_at, updated_at)
    SELECT gen_random_uuid(), a.workspace_id, a.id, (SELECT id FROM destination), 'Sync of ' || a.name, 'MIRROR', '[]', a.created_at, now()
    FROM audience a`;
});
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(async () => {
  await gateway.stop();
});

/** Gives every sync `perSync` more runs, older than those it has, and points lastRun at its newest. */
async function addHistory(perSync: number): Promise<void> {
  await db().$executeRaw`
    INSERT INTO sync_run (id, workspace_id, sync_id, status, trigger, created_at)
    SELECT gen_random_uuid(), s.workspace_id, s.id, 'SUCCEEDED', 'SCHEDULE',
           coalesce((SELECT min(created_at) FROM sync_run r WHERE r.sync_id = s.id), now()) - make_interval(mins => i)
    FROM audience_sync s, generate_series(1, ${perSync}) AS i`;
  await db().$executeRaw`
    UPDATE audience_sync s SET last_run_id = (SELECT id FROM sync_run r WHERE r.sync_id = s.id ORDER BY created_at DESC, id DESC LIMIT 1)`;
  await db().$executeRaw`ANALYZE`;
}

interface Statement {
  text: string;
  values: unknown[];
}

/** Runs the dashboard, recording the SQL statements the gateway sent to PostgreSQL meanwhile. */
async function dashboardStatements(first: number) {
  const statements: Statement[] = [];
  const query = pg.Client.prototype.query;
  vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (this: pg.Client, ...args: unknown[]) {
    const [config, values] = args as [string | { text: string; values?: unknown[] }, unknown[] | undefined];
    statements.push(typeof config === 'string' ? { text: config, values: values ?? [] } : { text: config.text, values: config.values ?? [] });
    return (query as (...rest: unknown[]) => unknown).apply(this, args);
  });
  const result = dataOf(await gateway.execute(Dashboard, { first }));
  vi.restoreAllMocks();
  // Reads only; authentication (a key lookup, once in a while) is not the dashboard's cost.
  const reads = statements.filter((statement) => /^\s*SELECT/i.test(statement.text) && !statement.text.includes('"api_key"'));
  return { statements: reads, syncs: result.audienceSyncs.edges };
}

/** Rows of sync_run that a statement's plan reads, as PostgreSQL counts them when running it. */
async function syncRunRowsRead(statement: Statement): Promise<number> {
  const client = new pg.Client({ connectionString: gateway.databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`,
      statement.values,
    );
    const read = (node: PlanNode): number =>
      (node['Relation Name'] === 'sync_run' ? node['Actual Rows'] * node['Actual Loops'] : 0) +
      (node.Plans ?? []).reduce((sum, child) => sum + read(child), 0);
    return read(rows[0]!['QUERY PLAN'][0]!.Plan);
  } finally {
    await client.end();
  }
}

interface PlanNode {
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}

test('the dashboard costs the same few statements for 5 syncs as for 30, and reads only the runs it returns however long the history', async () => {
  await addHistory(6);
  const small = await dashboardStatements(5);
  const short = await dashboardStatements(SYNCS);
  await addHistory(200);
  const long = await dashboardStatements(SYNCS);

  expect(short.syncs).toHaveLength(SYNCS);
  for (const { node } of long.syncs) {
    expect(node.runs.edges).toHaveLength(5);
    expect(node.runs.edges[0]!.node.id).toBe(node.lastRun!.id);
  }
  expect(small.statements.length).toBeLessThanOrEqual(3);
  expect(short.statements.length).toBe(small.statements.length);
  expect(long.statements.length).toBe(small.statements.length);
  // 206 runs per sync are stored; each sync's last run and first page of 5 (plus one, for hasNextPage) are read.
  let read = 0;
  for (const statement of long.statements) read += await syncRunRowsRead(statement);
  expect(read).toBeGreaterThan(0);
  expect(read).toBeLessThanOrEqual(SYNCS * 7);
});
