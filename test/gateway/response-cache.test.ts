import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApiKey, revokeApiKey } from '../../src/identity/api-keys.js';
import { db } from '../../src/infra/db.js';
import { responseCacheReads } from '../../src/infra/metrics.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { Random } from '../support/hostile-inputs.js';
import { dataOf } from '../support/scenario.js';
import { waitFor } from '../support/wait.js';

// The gateway keeps query answers until what they read changes. Attacked here the way production
// changes data: from other connections (a worker, another gateway), by mutations, in another
// workspace, while the connection that hears changes is down. Each answer served from the cache is
// compared with a fresh execution of the same query; RESPONSE_CACHE_SEED=<n> replays the sequence.
const SEED = Number(process.env.RESPONSE_CACHE_SEED ?? Date.now() % 1_000_000);
const ROUNDS = 80;

type Overview = {
  audienceSyncs: { edges: { node: { id: string } }[] };
  audiences: {
    edges: { node: { id: string; name: string; memberCount: number } }[];
  };
  viewer: { role: string; workspace: { id: string } };
};
/** What a dashboard shows. Its page sizes exceed what the workspace holds, so that any pair of them
 * asks for the same data: a pair never used before is a fresh execution (the cache is keyed by them). */
const OverviewQuery = parse(`query Overview($syncs: Int!, $audiences: Int!) {
  audienceSyncs(first: $syncs) { edges { node {
    id name status
    destination { id name }
    lastRun { id status membersAdded }
    runs(first: 3) { edges { node { id status membersAdded createdAt } } }
  } } }
  audiences(first: $audiences) { edges { node { id name memberCount } } }
  viewer { role workspace { id name } }
}`) as TypedDocumentNode<Overview, { syncs: number; audiences: number }>;
const CACHED = { syncs: 9, audiences: 9 };
const fresh = (round: number) => ({
  syncs: 10 + (round % 30),
  audiences: 10 + Math.floor(round / 30),
});

const RenameAudience = parse(`mutation Rename($id: ID!, $name: String!) {
  updateAudience(id: $id, input: { name: $name }) { __typename }
}`) as TypedDocumentNode<{ updateAudience: { __typename: string } }, { id: string; name: string }>;

const SegmentCount = parse(`query Segment { audiences(first: 5) { edges { node { memberCount } } } }`) as TypedDocumentNode<
  { audiences: { edges: { node: { memberCount: number } }[] } },
  Record<string, never>
>;

let gateway: TestGateway;
/** Another connection, as a worker's or another gateway's would be. */
let writer: pg.Client;
let other: { workspaceId: string; apiKey: string };

/** The server process of the gateway's connection that hears changes. */
const listener = () =>
  writer.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE application_name = 'asg-change-listener' AND datname = current_database()`,
  );

async function cacheReads(outcome: 'hit' | 'miss'): Promise<number> {
  const { values } = await responseCacheReads.get();
  return values.find((value) => value.labels.outcome === outcome)?.value ?? 0;
}

/** A workspace of 3 audiences of contacts, one destination and 3 syncs with 2 runs each. */
async function seedWorkspace(workspaceId: string): Promise<void> {
  await db().$executeRaw`
    INSERT INTO destination (id, workspace_id, name, platform, config, updated_at)
    VALUES (gen_random_uuid(), ${workspaceId}::uuid, 'Webhook', 'WEBHOOK', '{}', now())`;
  await db().$executeRaw`
    INSERT INTO contact (workspace_id, key, email, updated_at)
    SELECT ${workspaceId}::uuid, 'email:c' || i || '@example.com', 'c' || i || '@example.com', now() FROM generate_series(1, 20) AS i`;
  await db().$executeRaw`
    INSERT INTO audience (id, workspace_id, name, created_at, updated_at)
    SELECT gen_random_uuid(), ${workspaceId}::uuid, 'Audience ' || i, now() - make_interval(secs => i), now() FROM generate_series(1, 3) AS i`;
  await db().$executeRaw`
    INSERT INTO audience_member (audience_id, contact_id)
    SELECT a.id, c.id FROM audience a JOIN contact c USING (workspace_id) WHERE a.workspace_id = ${workspaceId}::uuid AND c.id % 2 = 0`;
  await db().$executeRaw`
    INSERT INTO audience_sync (id, workspace_id, audience_id, destination_id, name, mode, field_mapping, created_at, updated_at)
    SELECT gen_random_uuid(), a.workspace_id, a.id, (SELECT id FROM destination WHERE workspace_id = a.workspace_id), 'Sync of ' || a.name,
           'MIRROR', '[]', a.created_at, now()
    FROM audience a WHERE a.workspace_id = ${workspaceId}::uuid`;
  await db().$executeRaw`
    INSERT INTO sync_run (id, workspace_id, sync_id, status, trigger, created_at)
    SELECT gen_random_uuid(), s.workspace_id, s.id, 'SUCCEEDED', 'SCHEDULE', now() - make_interval(mins => i)
    FROM audience_sync s, generate_series(1, 2) AS i WHERE s.workspace_id = ${workspaceId}::uuid`;
  await db().$executeRaw`
    UPDATE audience_sync s SET last_run_id = (SELECT id FROM sync_run r WHERE r.sync_id = s.id ORDER BY created_at DESC LIMIT 1)
    WHERE s.workspace_id = ${workspaceId}::uuid`;
  // A key writes its lastUsedAt once a minute, which is a change like any other; set ahead here so that
  // the rounds that expect an answer from the cache do not depend on where that minute falls.
  await db().$executeRaw`UPDATE api_key SET last_used_at = now() + interval '1 hour' WHERE workspace_id = ${workspaceId}::uuid`;
}

beforeAll(async () => {
  gateway = await startTestGateway({
    ROLES: 'gateway',
    RATE_LIMIT_POINTS: '0',
  });
  other = await gateway.createWorkspace();
  await seedWorkspace(gateway.workspaceId);
  await seedWorkspace(other.workspaceId);
  writer = new pg.Client({ connectionString: gateway.databaseUrl });
  await writer.connect();
  // The cache serves answers only once the gateway hears changes.
  await waitFor(
    async () => {
      const before = await cacheReads('hit');
      await gateway.execute(OverviewQuery, CACHED);
      await gateway.execute(OverviewQuery, CACHED);
      return (await cacheReads('hit')) > before;
    },
    Boolean,
    { what: 'the gateway to answer a repeated query from its cache' },
  );
});
afterAll(async () => {
  await writer?.end();
  await gateway?.stop();
});

/** A random change to the main workspace, as another process (or a mutation) makes it; null: none
 * (a write that found no row to change is none). */
async function randomChange(random: Random, round: number): Promise<string | null> {
  const change = await randomWrite(random, round);
  return change && change.rows > 0 ? change.what : null;
}

async function randomWrite(random: Random, round: number): Promise<{ what: string; rows: number } | null> {
  const ws = gateway.workspaceId;
  const write = async (sql: string) => (await writer.query(sql.replaceAll(':ws', `'${ws}'`))).rowCount ?? 0;
  switch (random.int(10)) {
    case 0:
      return {
        what: 'a sync renamed',
        rows: await write(
          `UPDATE audience_sync SET name = 'Sync renamed ${round}' WHERE id = (SELECT id FROM audience_sync WHERE workspace_id = :ws ORDER BY random() LIMIT 1)`,
        ),
      };
    case 1:
      return {
        what: 'a run started',
        rows: await write(`
        WITH sync AS (SELECT id FROM audience_sync WHERE workspace_id = :ws ORDER BY random() LIMIT 1),
             run AS (INSERT INTO sync_run (id, workspace_id, sync_id, status, trigger, created_at)
                     SELECT gen_random_uuid(), :ws, id, 'RUNNING', 'MANUAL', now() FROM sync RETURNING id, sync_id)
        UPDATE audience_sync SET last_run_id = run.id FROM run WHERE audience_sync.id = run.sync_id`),
      };
    case 2:
      return {
        what: 'a run progressed',
        rows: await write(`UPDATE sync_run SET members_added = members_added + ${1 + random.int(500)}, status = 'SUCCEEDED'
                   WHERE id = (SELECT last_run_id FROM audience_sync WHERE workspace_id = :ws ORDER BY random() LIMIT 1)`),
      };
    case 3:
      return {
        what: 'a run deleted',
        rows: await write(`DELETE FROM sync_run WHERE id = (SELECT r.id FROM sync_run r WHERE r.workspace_id = :ws
                   AND NOT EXISTS (SELECT 1 FROM audience_sync s WHERE s.last_run_id = r.id) ORDER BY random() LIMIT 1)`),
      };
    case 4:
      return {
        what: 'a member joined',
        rows: await write(`INSERT INTO audience_member (audience_id, contact_id)
                   SELECT a.id, c.id FROM audience a, contact c WHERE a.workspace_id = :ws AND c.workspace_id = :ws
                   AND NOT EXISTS (SELECT 1 FROM audience_member m WHERE m.audience_id = a.id AND m.contact_id = c.id)
                   ORDER BY random() LIMIT 1`),
      };
    case 5:
      return {
        what: 'a member left',
        rows: await write(`DELETE FROM audience_member WHERE (audience_id, contact_id) = (SELECT m.audience_id, m.contact_id
                   FROM audience_member m JOIN audience a ON a.id = m.audience_id WHERE a.workspace_id = :ws ORDER BY random() LIMIT 1)`),
      };
    case 6:
      return {
        what: 'the destination renamed',
        rows: await write(`UPDATE destination SET name = 'Webhook ${round}' WHERE workspace_id = :ws`),
      };
    case 7: {
      const { audiences } = dataOf(await gateway.execute(OverviewQuery, fresh(ROUNDS + round)));
      const { id } = random.pick(audiences.edges).node;
      expect(
        dataOf(
          await gateway.execute(RenameAudience, {
            id,
            name: `Audience renamed ${round}`,
          }),
        ).updateAudience.__typename,
      ).toBe('UpdateAudienceSuccess');
      return { what: 'an audience renamed by a mutation', rows: 1 };
    }
    case 8:
      await writer.query(`UPDATE audience_sync SET name = 'Elsewhere ${round}' WHERE workspace_id = '${other.workspaceId}'`);
      return null;
    default:
      return null;
  }
}

describe(`response cache (RESPONSE_CACHE_SEED=${SEED} replays it)`, () => {
  test('every answer equals a fresh execution, right after any change; unchanged, it comes from the cache', async () => {
    const random = new Random(SEED);
    let hitsExpected = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const change = await randomChange(random, round);
      const hitsBefore = await cacheReads('hit');
      const cached = dataOf(await gateway.execute(OverviewQuery, CACHED));
      const hit = (await cacheReads('hit')) > hitsBefore;
      const truth = dataOf(await gateway.execute(OverviewQuery, fresh(round)));
      expect(cached, `round ${round}, after ${change ?? 'no change to this workspace'}`).toEqual(truth);
      expect(hit, `round ${round}: served from the cache after ${change ?? 'no change to this workspace'}`).toBe(change === null);
      if (change === null) hitsExpected++;
    }
    // The sequence must have tried both sides.
    expect(hitsExpected).toBeGreaterThan(5);
    expect(hitsExpected).toBeLessThan(ROUNDS - 5);
  });

  test('after a change, identical queries arriving together run once and share the answer', async () => {
    await writer.query(`UPDATE audience_sync SET name = 'Shared answer' WHERE workspace_id = '${gateway.workspaceId}'`);
    const [hitsBefore, missesBefore] = [await cacheReads('hit'), await cacheReads('miss')];
    const answers = await Promise.all(Array.from({ length: 8 }, () => gateway.execute(OverviewQuery, CACHED)));
    expect(await cacheReads('miss')).toBe(missesBefore + 1);
    expect(await cacheReads('hit')).toBe(hitsBefore + 7);
    const truth = dataOf(await gateway.execute(OverviewQuery, fresh(3000)));
    for (const answer of answers) expect(dataOf(answer)).toEqual(truth);
  });

  test('a query asked after a change commits sees it, whatever queries were running meanwhile', async () => {
    const names = (answer: Overview) => answer.audienceSyncs.edges.map((edge) => (edge.node as { name?: string }).name);
    for (let attempt = 0; attempt < 20; attempt++) {
      const running = Array.from({ length: 4 }, () => gateway.execute(OverviewQuery, CACHED));
      await writer.query(`UPDATE audience_sync SET name = $1 WHERE workspace_id = $2`, [
        `Concurrent ${attempt}`,
        gateway.workspaceId,
      ]);
      const after = dataOf(await gateway.execute(OverviewQuery, CACHED));
      expect(names(after), `attempt ${attempt}`).toEqual(names(after).map(() => `Concurrent ${attempt}`));
      await Promise.all(running);
    }
  });

  test("every table the API can read notifies its changes; only the engine's own tables do not", async () => {
    const { rows } = await writer.query<{ table: string; triggers: number }>(`
      SELECT c.relname AS table, count(t.tgname)::int AS triggers
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname LIKE 'api\\_change\\_%'
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname NOT LIKE 'agenda%'
      GROUP BY c.relname`);
    // A new table lands here until it is either watched (migration api_change_notifications) or,
    // read by no query, added to this list.
    const unread = [
      '_prisma_migrations',
      'audience_change',
      'audience_change_pruned',
      'batch_in_doubt',
      'diff_basis',
      'platform_job_member',
      'run_diff',
      'synced_member',
      'task_payload',
    ];
    expect(
      rows
        .filter((row) => row.triggers === 0)
        .map((row) => row.table)
        .sort(),
    ).toEqual(unread);
    // Insert, update, delete and truncate on each of the others.
    expect(rows.filter((row) => row.triggers !== 0 && row.triggers !== 4)).toEqual([]);
    expect(rows.length).toBeGreaterThan(unread.length + 10);
  });

  test("another workspace's key, and another key of the same workspace, never get this key's answer", async () => {
    await gateway.execute(OverviewQuery, CACHED);
    const mine = dataOf(await gateway.execute(OverviewQuery, CACHED));
    const theirs = dataOf(await gateway.execute(OverviewQuery, CACHED, { apiKey: other.apiKey }));
    expect(theirs.viewer.workspace.id).not.toBe(mine.viewer.workspace.id);
    const theirSyncs = await db().audienceSync.count({
      where: { workspaceId: other.workspaceId },
    });
    expect(theirs.audienceSyncs.edges).toHaveLength(theirSyncs);
    expect(theirs.audienceSyncs.edges.map((edge) => edge.node.id)).not.toContain(mine.audienceSyncs.edges[0]!.node.id);

    const { key: readKey } = await createApiKey(gateway.workspaceId, 'reader', 'READ');
    const asReader = await gateway.execute(OverviewQuery, CACHED, {
      apiKey: readKey,
    });
    expect(dataOf(asReader).viewer.role).toBe('READ');
  });

  test('a revoked key gets no answer, cached or not', async () => {
    const { key, record } = await createApiKey(gateway.workspaceId, 'soon revoked', 'WRITE');
    await gateway.execute(OverviewQuery, CACHED, { apiKey: key });
    await gateway.execute(OverviewQuery, CACHED, { apiKey: key });
    expect(await revokeApiKey(record.id, gateway.workspaceId)).not.toBeNull();
    const refused = await gateway.execute(OverviewQuery, CACHED, {
      apiKey: key,
    });
    expect(refused.data?.audienceSyncs ?? null).toBeNull();
    expect(refused.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('while the connection that hears changes is down, nothing is served from the cache, and changes made meanwhile are seen', async () => {
    const [{ pid }] = (await listener()).rows as [{ pid: number }];
    await gateway.execute(OverviewQuery, CACHED);
    await writer.query('SELECT pg_terminate_backend($1)', [pid]);
    // Changed while nobody hears: one change right after the kill, one before the reconnection.
    await writer.query(`UPDATE audience_sync SET name = 'Changed unheard' WHERE workspace_id = '${gateway.workspaceId}'`);
    const hitsBefore = await cacheReads('hit');
    const during = dataOf(await gateway.execute(OverviewQuery, CACHED));
    expect(during.audienceSyncs.edges.every((edge) => (edge.node as { name?: string }).name === 'Changed unheard')).toBe(true);
    await waitFor(async () => (await listener()).rows.some((row) => row.pid !== pid), Boolean, {
      what: 'the listener to reconnect',
    });
    const after = dataOf(await gateway.execute(OverviewQuery, CACHED));
    expect(after).toEqual(dataOf(await gateway.execute(OverviewQuery, fresh(1000))));
    expect(await cacheReads('hit')).toBe(hitsBefore);
    // And it serves from the cache again.
    await waitFor(
      async () => {
        const before = await cacheReads('hit');
        await gateway.execute(OverviewQuery, CACHED);
        return (await cacheReads('hit')) > before;
      },
      Boolean,
      { what: 'answers from the cache again' },
    );
  });

  test('while the server process that tells it changes is paused, a query waits 2 s at most, is answered fresh, and the connection is replaced', async () => {
    const [{ pid }] = (await listener()).rows as [{ pid: number }];
    await gateway.execute(OverviewQuery, CACHED);
    await gateway.execute(OverviewQuery, CACHED);
    const hitsBefore = await cacheReads('hit');
    // As a frozen server or a partition would: the connection stays open and nothing comes back.
    process.kill(pid, 'SIGSTOP');
    try {
      await writer.query(`UPDATE audience_sync SET name = 'Changed while paused' WHERE workspace_id = '${gateway.workspaceId}'`);
      const during = dataOf(await gateway.execute(OverviewQuery, CACHED));
      expect(during.audienceSyncs.edges.map((edge) => (edge.node as { name?: string }).name)).toEqual(
        during.audienceSyncs.edges.map(() => 'Changed while paused'),
      );
      expect(await cacheReads('hit')).toBe(hitsBefore);
      await waitFor(async () => (await listener()).rows.some((row) => row.pid !== pid), Boolean, {
        what: 'a new connection to hear changes',
      });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(dataOf(await gateway.execute(OverviewQuery, CACHED))).toEqual(
      dataOf(await gateway.execute(OverviewQuery, fresh(2000))),
    );
  });

  test('an answer that moves with the clock alone (a count over the last N days) is never kept', async () => {
    const created = await gateway.execute(
      parse(
        `mutation { createAudience(input: { name: "Recent", segmentRule: { field: "createdAt", operator: WITHIN_LAST_DAYS, value: 30 } }) { __typename } }`,
      ) as TypedDocumentNode<unknown, Record<string, never>>,
      {},
    );
    expect(created.errors).toBeUndefined();
    const hitsBefore = await cacheReads('hit');
    const first = dataOf(await gateway.execute(SegmentCount, {}));
    const second = dataOf(await gateway.execute(SegmentCount, {}));
    expect(second).toEqual(first);
    expect(await cacheReads('hit')).toBe(hitsBefore);
  });
});
