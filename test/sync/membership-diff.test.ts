import { randomUUID } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { desiredBoundsSql, desiredSide, loadDesiredMembersSource } from '../../src/sync/desired-members.js';
import {
  countSyncedMembers,
  diffRanges,
  materializeRunDiff,
  readContactsPage,
  readRemovesPage,
} from '../../src/sync/membership-diff.js';
import { Random } from '../support/hostile-inputs.js';
import { createAudienceWith, createMetaDestination, createSync } from '../support/scenario.js';
import { useGatewaySuite } from '../support/suite.js';

// The diff of a large sync is taken in two contact ranges at once, and its pages are read with a join
// plan chosen from its counts. Both are optimizations: a split diff must equal the unsplit one, and
// both page plans must read the same rows. Checked on a seeded random state of members synced,
// desired, in doubt and changed; DIFF_SEED=<n> replays it.
const suite = useGatewaySuite({ reset: true });
const SEED = Number(process.env.DIFF_SEED ?? Date.now() % 1_000_000);
const MODES = ['MIRROR', 'ADD', 'REMOVE', 'UPSERT'] as const;
const CONTACTS = 3_000;

/** A sync with a random state; the suite empties the database before each test. */
async function seedSync(): Promise<{ syncId: string }> {
  const random = new Random(SEED);
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, []);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
  const audienceId = decodeGlobalID(audience.id).id;
  const syncId = decodeGlobalID(sync.id).id;
  const { workspaceId } = await db().audience.findUniqueOrThrow({ where: { id: audienceId } });
  const contacts = await db().$queryRaw<{ id: bigint }[]>`
    INSERT INTO contact (workspace_id, key, email, updated_at)
    SELECT ${workspaceId}::uuid, 'email:diff' || i || '@example.com', 'diff' || i || '@example.com', now() - interval '1 hour'
    FROM generate_series(1, ${CONTACTS}) AS i
    RETURNING id`;
  // Each contact is desired or not, synced or not (confirmed, or in doubt in one of a few batches),
  // and changed since it was synced or not.
  const batches = await db().$queryRaw<{ id: bigint }[]>`
    INSERT INTO batch_in_doubt (sync_id, action, first_contact_id, last_contact_id)
    SELECT ${syncId}::uuid, action, ${contacts[0]!.id}, ${contacts.at(-1)!.id}
    FROM unnest(ARRAY['add', 'remove', 'add']) AS action
    RETURNING id`;
  const desired: bigint[] = [];
  const synced: { id: bigint; batch: bigint | null; syncedAt: string }[] = [];
  const changed: bigint[] = [];
  for (const { id } of contacts) {
    if (random.chance(0.6)) desired.push(id);
    if (random.chance(0.5)) {
      const batch = random.chance(0.1) ? random.pick(batches).id : null;
      synced.push({ id, batch, syncedAt: '2026-01-01 00:00:00' });
      if (random.chance(0.2)) changed.push(id);
    }
  }
  await db().$executeRaw`
    INSERT INTO audience_member (audience_id, contact_id) SELECT ${audienceId}::uuid, unnest(${desired}::bigint[])`;
  await db().$executeRaw`
    INSERT INTO synced_member (sync_id, contact_id, identifiers, synced_at, batch_id)
    SELECT ${syncId}::uuid, t.id, '{"EMAIL":"x"}'::jsonb, '2026-01-01'::timestamp, t.batch
    FROM unnest(${synced.map((row) => row.id)}::bigint[], ${synced.map((row) => row.batch)}::bigint[]) AS t(id, batch)`;
  await db().$executeRaw`UPDATE contact SET updated_at = now() WHERE id = ANY(${changed}::bigint[])`;
  return { syncId };
}

async function diffRows(runId: string) {
  return db().$queryRaw<{ action: string; contact_id: bigint }[]>`
    SELECT action, contact_id FROM run_diff WHERE run_id = ${runId}::uuid ORDER BY action, contact_id`;
}

describe(`diff of a sync split in two contact ranges (DIFF_SEED=${SEED} replays it)`, () => {
  test('a large sync is split at the middle of its synced span, one never synced at that of its desired side; a small one is not', async () => {
    const state = await seedSync();
    const source = await loadDesiredMembersSource(state.syncId);
    const [bounds] = await db().$queryRaw<{ first: bigint; last: bigint }[]>`
      SELECT min(contact_id) AS first, max(contact_id) AS last FROM synced_member WHERE sync_id = ${state.syncId}::uuid`;
    const middle = (bounds!.first + bounds!.last) / 2n;
    expect(await diffRanges(state.syncId, 1n, desiredBoundsSql(source))).toEqual([{ below: middle }, { from: middle }]);
    expect(await diffRanges(state.syncId, bounds!.last - bounds!.first + 1n)).toEqual([{}]);

    const [desired] = await db().$queryRaw<{ first: bigint; last: bigint }[]>`
      SELECT min(contact_id) AS first, max(contact_id) AS last FROM audience_member WHERE audience_id = ${source.audienceId}::uuid`;
    const desiredMiddle = (desired!.first + desired!.last) / 2n;
    await db().$executeRaw`DELETE FROM synced_member WHERE sync_id = ${state.syncId}::uuid`;
    expect(await diffRanges(state.syncId, 1n, desiredBoundsSql(source))).toEqual([
      { below: desiredMiddle },
      { from: desiredMiddle },
    ]);
    expect(await diffRanges(state.syncId, desired!.last - desired!.first + 1n, desiredBoundsSql(source))).toEqual([{}]);
    expect(await diffRanges(state.syncId, 1n)).toEqual([{}]);
  });

  test.each(MODES)('%s: the split diff equals the whole one, row for row and in its counts', async (mode) => {
    const state = await seedSync();
    const source = await loadDesiredMembersSource(state.syncId);
    const whole = { id: randomUUID(), syncId: state.syncId, mode };
    const split = { id: randomUUID(), syncId: state.syncId, mode };
    const wholeDiff = await materializeRunDiff(whole, desiredSide(source), 10n ** 18n, null);
    const splitDiff = await materializeRunDiff(split, desiredSide(source), 1n, null);
    const { takenAt: _whole, ...wholeCounts } = wholeDiff;
    const { takenAt: _split, ...splitCounts } = splitDiff;
    expect(splitCounts).toEqual(wholeCounts);
    expect(wholeCounts.toAdd + wholeCounts.toRemove + wholeCounts.toUpdate).toBeGreaterThan(0);
    expect(await diffRows(split.id)).toEqual(await diffRows(whole.id));
  });

  test.each(['MIRROR', 'ADD', 'UPSERT'] as const)(
    "%s: a sync never synced, split at its audience's middle, has the whole diff: every member an add",
    async (mode) => {
      const state = await seedSync();
      await db().$executeRaw`DELETE FROM synced_member WHERE sync_id = ${state.syncId}::uuid`;
      await db().$executeRaw`DELETE FROM batch_in_doubt WHERE sync_id = ${state.syncId}::uuid`;
      const source = await loadDesiredMembersSource(state.syncId);
      expect(await diffRanges(state.syncId, 1n, desiredBoundsSql(source))).toHaveLength(2);
      const whole = { id: randomUUID(), syncId: state.syncId, mode };
      const split = { id: randomUUID(), syncId: state.syncId, mode };
      const { takenAt: _whole, ...wholeCounts } = await materializeRunDiff(whole, desiredSide(source), 10n ** 18n, null);
      const { takenAt: _split, ...splitCounts } = await materializeRunDiff(split, desiredSide(source), 1n, null);
      expect(splitCounts).toEqual(wholeCounts);
      expect(wholeCounts).toMatchObject({ toAdd: wholeCounts.desired, toRemove: 0, toUpdate: 0 });
      expect(wholeCounts.desired).toBeGreaterThan(0);
      expect(await diffRows(split.id)).toEqual(await diffRows(whole.id));
    },
  );

  test('the synced count, taken in halves, is that of the whole record without its members in doubt', async () => {
    const state = await seedSync();
    const [expected] = await db().$queryRaw<{ count: bigint }[]>`
      SELECT count(*) AS count FROM synced_member WHERE sync_id = ${state.syncId}::uuid AND batch_id IS NULL`;
    expect(await countSyncedMembers(state.syncId, 1n)).toBe(Number(expected!.count));
    expect(await countSyncedMembers(state.syncId, 10n ** 18n)).toBe(Number(expected!.count));
  });
});

describe(`pages of a diff read with either join plan (DIFF_SEED=${SEED} replays it)`, () => {
  test.each(MODES)('%s: dense and sparse plans read the same pages, page after page', async (mode) => {
    const state = await seedSync();
    const source = await loadDesiredMembersSource(state.syncId);
    const run = { id: randomUUID(), syncId: state.syncId, mode };
    await materializeRunDiff(run, desiredSide(source), 1n, null);
    const random = new Random(SEED + 1);
    const sides = mode === 'UPSERT' ? (['add', 'update'] as const) : mode === 'REMOVE' ? ([] as const) : (['add'] as const);
    for (const action of [...sides, 'remove' as const]) {
      let after = 0n;
      let pages = 0;
      for (;;) {
        const limit = 50 + random.int(400);
        const [dense, sparse] =
          action === 'remove'
            ? await Promise.all([readRemovesPage(run, after, limit, 'dense'), readRemovesPage(run, after, limit, 'sparse')])
            : await Promise.all([
                readContactsPage(run, action, after, limit, 'dense'),
                readContactsPage(run, action, after, limit, 'sparse'),
              ]);
        expect(dense).toEqual(sparse);
        if (dense.length === 0) break;
        const last = dense.at(-1)!;
        after = 'contactId' in last ? last.contactId : last.id;
        pages++;
      }
      if (action !== 'remove' || mode === 'MIRROR' || mode === 'REMOVE') expect(pages).toBeGreaterThan(0);
    }
  });
});
