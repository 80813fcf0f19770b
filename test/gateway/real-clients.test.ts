import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { encodeGlobalID } from '@pothos/plugin-relay';
import type { FormattedExecutionResult } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getComplexity } from 'graphql-query-complexity';
import { fieldCost } from '../../src/gateway/operation-cost.js';
import { loadConfig } from '../../src/infra/config.js';
import { schema } from '../../src/schema/index.js';
import { db } from '../../src/infra/db.js';
import { DashboardAudiencesDocument as DashboardAudiences, DashboardSyncRunsDocument as DashboardSyncRuns } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { dataOf } from '../support/scenario.js';

// Documents written the way frontends write them run within the default operation limits: the
// queries relay-compiler generates from the small Relay app in test/relay/app (colocated fragments,
// @connection, @refetchable, `node` refetch, pagination), and a dashboard's queries
// (test/operations/dashboard.graphql). The hostile documents of test/schema/limits.test.ts and the
// fuzz corpus stay refused under the same defaults.

const RELAY_DIR = new URL('../relay/', import.meta.url);
const relayDocuments = JSON.parse(readFileSync(new URL('persisted-queries.json', RELAY_DIR), 'utf8')) as Record<string, string>;
const relayQuery = (name: string) => {
  const text = Object.values(relayDocuments).find((document) => document.startsWith(`query ${name}`));
  if (!text) throw new Error(`relay-compiler generated no ${name}`);
  return text;
};

const AUDIENCES = 25;
const DESTINATIONS = 12;
const RUNS_PER_SYNC = 6;

let gateway: TestGateway;
let audienceIds: string[];
let syncIds: string[];

/** A workspace as a dashboard sees it: 25 audiences, each synced to 12 destinations, every sync with
 * 6 runs (the newest its last run). Written straight to the database: the API is what is tested. */
async function seedDashboard(workspaceId: string) {
  const destinations = await db().destination.createManyAndReturn({
    data: Array.from({ length: DESTINATIONS }, (_, index) => ({
      workspaceId,
      name: `Hook ${index}`,
      platform: 'WEBHOOK' as const,
      config: { url: `https://hooks.example.com/${index}`, batchSize: 1000 },
    })),
  });
  const audiences = await db().audience.createManyAndReturn({
    data: Array.from({ length: AUDIENCES }, (_, index) => ({ workspaceId, name: `Audience ${index}` })),
  });
  const syncs = await db().audienceSync.createManyAndReturn({
    data: audiences.flatMap((audience) =>
      destinations.map((destination) => ({
        workspaceId,
        audienceId: audience.id,
        destinationId: destination.id,
        name: `${audience.name} to ${destination.name}`,
        mode: 'MIRROR' as const,
        fieldMapping: [{ sourceField: 'email', destinationField: 'EMAIL_SHA256' }],
      })),
    ),
  });
  const runs = await db().syncRun.createManyAndReturn({
    data: syncs.flatMap((sync) =>
      Array.from({ length: RUNS_PER_SYNC }, (_, index) => ({
        workspaceId,
        syncId: sync.id,
        trigger: 'SCHEDULE' as const,
        status: 'SUCCEEDED' as const,
        phase: 'succeeded',
        progress: 1,
        membersAdded: index,
        createdAt: new Date(Date.UTC(2026, 0, 1, index)),
      })),
    ),
  });
  await db().$executeRaw`
    UPDATE audience_sync s SET last_run_id = (
      SELECT id FROM sync_run r WHERE r.sync_id = s.id ORDER BY created_at DESC LIMIT 1)
    WHERE s.workspace_id = ${workspaceId}::uuid`;
  expect(runs).toHaveLength(AUDIENCES * DESTINATIONS * RUNS_PER_SYNC);
  return {
    audienceIds: audiences.map((audience) => encodeGlobalID('Audience', audience.id)),
    syncIds: syncs.map((sync) => encodeGlobalID('AudienceSync', sync.id)),
  };
}

beforeAll(async () => {
  // The default limits, as a deployment gets them.
  gateway = await startTestGateway();
  ({ audienceIds, syncIds } = await seedDashboard(gateway.workspaceId));
});
afterAll(async () => {
  await gateway?.stop();
});

async function post(query: string, variables: Record<string, unknown> = {}) {
  const response = await gateway.app.yoga!.fetch('http://gateway/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${gateway.apiKey}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as FormattedExecutionResult<Record<string, any>>;
}

describe('the defaults admit what real clients send', () => {
  test('the checked-in Relay documents are what relay-compiler 21 generates from test/relay/app', async () => {
    const compiler = new URL('../../node_modules/.bin/relay-compiler', import.meta.url).pathname;
    // --validate exits non-zero, naming the files, when the generated documents are not current.
    await expect(promisify(execFile)(compiler, ['--validate'], { cwd: RELAY_DIR.pathname })).resolves.toBeDefined();
    expect(Object.keys(relayDocuments).length).toBeGreaterThanOrEqual(5);
  });

  test('the Relay app loads its audience list, 20 audiences with 10 syncs each, then pages on', async () => {
    const first = await post(relayQuery('AudienceListQuery'));
    expect(first.errors).toBeUndefined();
    const audiences = first.data!.audiences;
    expect(audiences.edges).toHaveLength(20);
    expect(audiences.edges[0].node.syncs.edges).toHaveLength(10);
    expect(audiences.edges[0].node.syncs.edges[0].node).toMatchObject({
      destination: { platform: 'WEBHOOK' },
      lastRun: { status: 'SUCCEEDED', membersAdded: RUNS_PER_SYNC - 1 },
    });
    expect(audiences.pageInfo.hasNextPage).toBe(true);

    const next = await post(relayQuery('AudienceListPaginationQuery'), { count: 20, cursor: audiences.pageInfo.endCursor });
    expect(next.errors).toBeUndefined();
    expect(next.data!.audiences.edges).toHaveLength(AUDIENCES - 20);
    expect(next.data!.audiences.pageInfo.hasNextPage).toBe(false);
  });

  test("a Relay refetch by `node` pages through one audience's syncs", async () => {
    const query = relayQuery('AudienceRowSyncsPaginationQuery');
    const page = await post(query, { id: audienceIds[0], count: 10 });
    expect(page.errors).toBeUndefined();
    expect(page.data!.node.syncs.edges).toHaveLength(10);
    const rest = await post(query, { id: audienceIds[0], count: 10, cursor: page.data!.node.syncs.pageInfo.endCursor });
    expect(rest.errors).toBeUndefined();
    expect(rest.data!.node.syncs.edges).toHaveLength(DESTINATIONS - 10);
  });

  test("a Relay sync page loads the sync and its runs by `node`, and pages through the history", async () => {
    const history = await post(relayQuery('SyncHistoryQuery'), { id: syncIds[0] });
    expect(history.errors).toBeUndefined();
    expect(history.data!.node.runs.edges).toHaveLength(5);
    const older = await post(relayQuery('SyncHistoryRunsPaginationQuery'), {
      id: syncIds[0],
      count: 5,
      cursor: history.data!.node.runs.pageInfo.endCursor,
    });
    expect(older.errors).toBeUndefined();
    expect(older.data!.node.runs.edges).toHaveLength(RUNS_PER_SYNC - 5);
  });

  test('every document relay-compiler generated runs within the default limits', async () => {
    for (const [hash, document] of Object.entries(relayDocuments)) {
      const name = /^query (\w+)/.exec(document)![1]!;
      const answer = await post(document, { id: name.startsWith('Audience') ? audienceIds[1] : syncIds[1] });
      expect(answer.errors, `${hash}: ${document.split('\n')[0]}`).toBeUndefined();
    }
  });

  test('the dashboard: 20 audiences × 10 syncs with destination and last run, and 50 syncs × 5 runs', async () => {
    const audiences = dataOf(await gateway.execute(DashboardAudiences, {})).audiences;
    expect(audiences.edges).toHaveLength(20);
    expect(audiences.edges.every((edge) => edge.node.syncs.edges.length === 10)).toBe(true);
    expect(audiences.edges[3]!.node.syncs.edges[4]!.node.lastRun).toMatchObject({ status: 'SUCCEEDED' });

    const syncs = dataOf(await gateway.execute(DashboardSyncRuns, {})).audienceSyncs;
    expect(syncs.edges).toHaveLength(50);
    expect(syncs.edges.every((edge) => edge.node.runs.edges.length === 5)).toBe(true);
  });
});

describe('what the limits count', () => {
  const defaults = loadConfig({});
  const limitOf = (answer: FormattedExecutionResult) => answer.errors?.map((error) => error.extensions?.limit);

  /** A selection 9 levels deep, written inline or split into three fragments. */
  const inline = '{ audiences(first: 1) { edges { node { syncs(first: 1) { edges { node { lastRun { sync { id } } } } } } } } }';
  const fragments = `
    { audiences(first: 1) { ...A } }
    fragment A on QueryAudiencesConnection { edges { node { ...B } } }
    fragment B on Audience { syncs(first: 1) { edges { node { ...C } } } }
    fragment C on AudienceSync { lastRun { ... on SyncRun { sync { id } } } }`;

  test('depth is the depth of the selection: fragments and inline fragments add no level', async () => {
    expect(defaults.MAX_QUERY_DEPTH).toBe(10);
    expect((await post(inline)).errors).toBeUndefined();
    expect((await post(fragments)).errors).toBeUndefined();
    const tooDeep = inline.replace('sync { id }', 'sync { audience { syncs { edges { node { id } } } } }');
    expect(limitOf(await post(tooDeep))).toEqual(['depth']);
  });

  test("the dashboard's cost is the objects it can return", () => {
    const cost = (query: Parameters<typeof getComplexity>[0]['query']) =>
      getComplexity({ estimators: [fieldCost], schema, query, variables: {} });
    // 1 + 20 × (edge + audience + syncs: 1 + 10 × (edge + sync + destination + last run)).
    expect(cost(DashboardAudiences)).toBe(861);
    // 1 + 50 × (edge + sync + audience + runs: 1 + 5 × (edge + run)).
    expect(cost(DashboardSyncRuns)).toBe(701);
    expect(defaults.MAX_QUERY_COST).toBe(5000);
  });

  test('cost counts page sizes given as variables, and refuses what could return too much', async () => {
    const nested = `query ($a: Int, $s: Int, $r: Int) {
      audiences(first: $a) { edges { node { syncs(first: $s) { edges { node { runs(first: $r) { edges { node { id } } } } } } } } } }`;
    // 1 + 5 × (2 + 1 + 5 × (2 + 1 + 5 × 2)): well within the limit.
    expect((await post(nested, { a: 5, s: 5, r: 5 })).errors).toBeUndefined();
    // 1 + 100 × (2 + 1 + 100 × (2 + 1 + 100 × 2)) = 2,030,301 objects.
    const refused = await post(nested, { a: 1000, s: 100, r: 100 });
    expect(limitOf(refused)).toEqual(['cost']);
    expect(refused.errors![0]!.message).toContain('found 2030301');
    // Unset, a page is 20 items: 1 + 20 × (2 + 1 + 20 × (2 + 1 + 20 × 2)) = 17,261.
    expect(limitOf(await post(nested))).toEqual(['cost']);
    // Costs are remembered per document and variables: each set is judged as itself, however often
    // the document comes back.
    expect((await post(nested, { a: 5, s: 5, r: 5 })).errors).toBeUndefined();
    expect(limitOf(await post(nested, { a: 1000, s: 100, r: 100 }))).toEqual(['cost']);
    expect((await post(nested, { r: 5, s: 5, a: 5 })).errors).toBeUndefined();
  });

  test('`@skip` and `@include` count as their variables say', async () => {
    const query = `query ($full: Boolean!) { audienceSyncs(first: 100) { edges { node { id
      runs(first: 100) @include(if: $full) { edges { node { id } } } } } } }`;
    expect((await post(query, { full: false })).errors).toBeUndefined();
    expect(limitOf(await post(query, { full: true }))).toEqual(['cost']);
  });
});
