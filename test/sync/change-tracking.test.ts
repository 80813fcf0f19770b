import { randomUUID } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, test } from 'vitest';
import type { Prisma } from '../../src/generated/prisma/client.js';
import type { FakeMeta } from '../fakes/meta-server.js';
import { db } from '../../src/infra/db.js';
import { DIFF_BASIS_DAYS, completeDiffBasis, diffTrackingOf } from '../../src/sync/change-tracking.js';
import { cleanUpStaleState } from '../../src/sync/cleanup.js';
import { desiredSide, loadDesiredMembersSource } from '../../src/sync/desired-members.js';
import { materializeRunDiff, type BasisUse, type RunDiff } from '../../src/sync/membership-diff.js';
import { Random } from '../support/hostile-inputs.js';
import { DeleteAudienceSync, UpdateAudienceSync } from '../support/operations.js';
import {
  changeMembers,
  createAudienceWith,
  createMetaDestination,
  createSync,
  dataOf,
  expectType,
  hashedEmails,
  heldEmails,
} from '../support/scenario.js';
import { readSync, runSync, triggerSync, waitForRunEnd } from '../support/sync-runs.js';
import { confirmedCount } from '../support/synced-state.js';
import { useGatewaySuite } from '../support/suite.js';
import { waitFor } from '../support/wait.js';

// A sync whose last run applied all of its diff diffs only the contacts changed since (see
// src/sync/change-tracking.ts). That is an optimization of the whole diff, so it must equal it: checked
// round after round on seeded random changes (members joining, leaving, rejoining, contacts deleted, a
// suppression list changing, and changes still uncommitted while the diff is taken); TRACKING_SEED=<n>
// replays it. Then each way the record can stop following the diffs, tried on real runs: the next run
// must still leave the destination exact.
const suite = useGatewaySuite({ reset: true });
const SEED = Number(process.env.TRACKING_SEED ?? Date.now() % 1_000_000);
const CONTACTS = 1_500;
const ROUNDS = 6;

interface TrackedSync {
  syncId: string;
  globalSyncId: string;
  audienceId: string;
  suppressionId: string;
  workspaceId: string;
  contacts: bigint[];
}

async function seedSync(mode: 'MIRROR' | 'ADD' | 'REMOVE', random: Random): Promise<TrackedSync> {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, []);
  const suppression = await createAudienceWith(suite.gateway, []);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, mode });
  const audienceId = decodeGlobalID(audience.id).id;
  const suppressionId = decodeGlobalID(suppression.id).id;
  const syncId = decodeGlobalID(sync.id).id;
  await db()
    .$executeRaw`INSERT INTO audience_sync_suppression (sync_id, audience_id) VALUES (${syncId}::uuid, ${suppressionId}::uuid)`;
  const { workspaceId } = await db().audience.findUniqueOrThrow({ where: { id: audienceId } });
  const contacts = (
    await db().$queryRaw<{ id: bigint }[]>`
      INSERT INTO contact (workspace_id, key, email)
      SELECT ${workspaceId}::uuid, 'email:tracked' || i || '@example.com', 'tracked' || i || '@example.com'
      FROM generate_series(1, ${CONTACTS}) AS i
      RETURNING id`
  ).map((row) => row.id);
  const members = contacts.filter(() => random.chance(0.6));
  const suppressed = contacts.filter(() => random.chance(0.1));
  // A record from before tracking began: anything, since the first diff is whole.
  const synced = contacts.filter(() => random.chance(0.5));
  await db()
    .$executeRaw`INSERT INTO audience_member (audience_id, contact_id) SELECT ${audienceId}::uuid, unnest(${members}::bigint[])`;
  await db()
    .$executeRaw`INSERT INTO audience_member (audience_id, contact_id) SELECT ${suppressionId}::uuid, unnest(${suppressed}::bigint[])`;
  await db().$executeRaw`
    INSERT INTO synced_member (sync_id, contact_id, identifiers) SELECT ${syncId}::uuid, unnest(${synced}::bigint[]), '{}'`;
  return { syncId, globalSyncId: sync.id, audienceId, suppressionId, workspaceId, contacts };
}

/** What a run that applied the whole diff leaves: the record moved by it, and the basis complete. */
async function applyDiff(sync: TrackedSync, runId: string, diff: RunDiff, mode: string) {
  await db().$executeRaw`
    INSERT INTO synced_member (sync_id, contact_id, identifiers)
    SELECT ${sync.syncId}::uuid, contact_id, '{}' FROM run_diff WHERE run_id = ${runId}::uuid AND action = 'add'`;
  await db().$executeRaw`
    DELETE FROM synced_member s USING run_diff r
    WHERE r.run_id = ${runId}::uuid AND r.action = 'remove' AND s.sync_id = ${sync.syncId}::uuid AND s.contact_id = r.contact_id`;
  const [{ count }] = (await db().$queryRaw<{ count: bigint }[]>`
    SELECT count(*) AS count FROM synced_member WHERE sync_id = ${sync.syncId}::uuid`) as [{ count: bigint }];
  // A MIRROR record, once complete, holds exactly the desired members counted by the diff.
  if (mode === 'MIRROR') expect(Number(count)).toBe(diff.desired);
  await db().$executeRaw(completeDiffBasis(sync.syncId, diff.basis!, mode === 'MIRROR' ? Number(count) : null));
}

/** Random membership changes, committed; each contact changes at most once per statement. */
async function changeAtRandom(sync: TrackedSync, random: Random, client: Pick<Prisma.TransactionClient, '$executeRaw'>) {
  const some = (share: number) => sync.contacts.filter(() => random.chance(share));
  const joining = some(0.03);
  const leaving = some(0.03);
  const suppressedNow = some(0.01);
  const unsuppressed = some(0.01);
  await client.$executeRaw`
    INSERT INTO audience_member (audience_id, contact_id) SELECT ${sync.audienceId}::uuid, unnest(${joining}::bigint[])
    ON CONFLICT DO NOTHING`;
  await client.$executeRaw`
    DELETE FROM audience_member WHERE audience_id = ${sync.audienceId}::uuid AND contact_id = ANY(${leaving}::bigint[])`;
  await client.$executeRaw`
    INSERT INTO audience_member (audience_id, contact_id) SELECT ${sync.suppressionId}::uuid, unnest(${suppressedNow}::bigint[])
    ON CONFLICT DO NOTHING`;
  await client.$executeRaw`
    DELETE FROM audience_member WHERE audience_id = ${sync.suppressionId}::uuid AND contact_id = ANY(${unsuppressed}::bigint[])`;
  // Left and back in one transaction: the member is checked, and nothing changes for it.
  const rejoining = some(0.005);
  await client.$executeRaw`
    DELETE FROM audience_member WHERE audience_id = ${sync.audienceId}::uuid AND contact_id = ANY(${rejoining}::bigint[])`;
  await client.$executeRaw`
    INSERT INTO audience_member (audience_id, contact_id) SELECT ${sync.audienceId}::uuid, unnest(${rejoining}::bigint[])
    ON CONFLICT DO NOTHING`;
}

async function diffRows(runId: string) {
  return db().$queryRaw<{ action: string; contact_id: bigint }[]>`
    SELECT action, contact_id FROM run_diff WHERE run_id = ${runId}::uuid ORDER BY action, contact_id`;
}

async function diffOf(sync: TrackedSync, mode: 'MIRROR' | 'ADD' | 'REMOVE', basisUse: BasisUse) {
  const source = await loadDesiredMembersSource(sync.syncId);
  const run = { id: randomUUID(), syncId: sync.syncId, mode };
  // A split span of 1: the whole diff is taken in two halves, as a large sync's.
  const diff = await materializeRunDiff(run, desiredSide(source), 1n, basisUse);
  return { run, diff, rows: await diffRows(run.id) };
}

async function trackingOf(sync: TrackedSync) {
  const source = await loadDesiredMembersSource(sync.syncId);
  const settings = await db().audienceSync.findUniqueOrThrow({ where: { id: sync.syncId } });
  return diffTrackingOf(settings, source)!;
}

/**
 * Waits until every transaction running now on the server has ended. A snapshot's oldest running
 * transaction is the whole server's, other test files' included: until theirs end, cleanup keeps what
 * was committed since they began.
 */
async function untilRunningTransactionsEnd() {
  const [{ now }] = (await db().$queryRaw<{ now: string }[]>`SELECT pg_current_xact_id()::text AS now`) as [{ now: string }];
  await waitFor(
    async () => (await db().$queryRaw<{ xmin: string }[]>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`)[0]!.xmin,
    (xmin) => BigInt(xmin) > BigInt(now),
    { what: 'the transactions running elsewhere to end', timeoutMs: 60_000 },
  );
}

/** How many changes of the audience's members are recorded. */
async function changesOfAudience(audienceId: string): Promise<number> {
  const [row] = await db().$queryRaw<{ count: bigint }[]>`
    SELECT count(*) AS count FROM audience_change WHERE audience_id = ${audienceId}::uuid`;
  return Number(row!.count);
}

describe(`a diff that follows changes (TRACKING_SEED=${SEED} replays it)`, () => {
  test.each(['MIRROR', 'ADD', 'REMOVE'] as const)(
    '%s: round after round it equals the whole diff, with changes committed while it is taken',
    async (mode) => {
      const random = new Random(SEED);
      const sync = await seedSync(mode, random);
      const tracking = await trackingOf(sync);
      expect(tracking.audienceIds).toEqual([sync.audienceId, sync.suppressionId]);

      const first = await diffOf(sync, mode, tracking);
      expect(first.diff.followedChanges).toBe(false);
      await applyDiff(sync, first.run.id, first.diff, mode);

      for (let round = 1; round <= ROUNDS; round++) {
        await changeAtRandom(sync, random, db());
        // Changes in a transaction still open while both diffs are taken: neither sees them, and the
        // next round's must.
        let commitLate: () => void = () => undefined;
        let lateChangesMade: () => void = () => undefined;
        const lateChanges = new Promise<void>((resolve) => (lateChangesMade = resolve));
        const late = random.chance(0.7)
          ? db().$transaction(
              async (tx) => {
                await changeAtRandom(sync, random, tx);
                lateChangesMade();
                await new Promise<void>((resolve) => (commitLate = resolve));
              },
              { timeout: 60_000 },
            )
          : Promise.resolve(lateChangesMade());
        await lateChanges;
        const whole = await diffOf(sync, mode, 'keep');
        const followed = await diffOf(sync, mode, tracking);
        commitLate();
        await late;

        expect(followed.diff.followedChanges, `round ${round}`).toBe(true);
        expect(whole.diff.followedChanges).toBe(false);
        const counts = ({ desired, toAdd, toRemove, toUpdate }: RunDiff) => ({ desired, toAdd, toRemove, toUpdate });
        expect(counts(followed.diff), `round ${round}`).toEqual(counts(whole.diff));
        expect(followed.rows, `round ${round}`).toEqual(whole.rows);
        await applyDiff(sync, followed.run.id, followed.diff, mode);
      }
      // After the last round's late changes are applied, nothing is left to do.
      const last = await diffOf(sync, mode, tracking);
      await applyDiff(sync, last.run.id, last.diff, mode);
      const settled = await diffOf(sync, mode, tracking);
      expect(settled.diff.followedChanges).toBe(true);
      expect(settled.rows).toEqual([]);
    },
  );

  test('cleanup keeps the changes a basis needs, drops the rest, and a basis older than what it dropped is not followed', async () => {
    const random = new Random(SEED + 1);
    const mode = 'MIRROR';
    const sync = await seedSync(mode, random);
    const tracking = await trackingOf(sync);
    const changesOf = () => changesOfAudience(sync.audienceId);
    expect(await changesOf()).toBeGreaterThan(0);
    // The basis then sees the seeding's changes, and no transaction older than them runs.
    await untilRunningTransactionsEnd();
    const first = await diffOf(sync, mode, tracking);
    await applyDiff(sync, first.run.id, first.diff, mode);
    // The seeding's changes are all seen by the basis: cleanup drops them.
    await cleanUpStaleState();
    expect(await changesOf()).toBe(0);

    await changeAtRandom(sync, random, db());
    const changed = await changesOf();
    expect(changed).toBeGreaterThan(0);
    await cleanUpStaleState();
    expect(await changesOf()).toBe(changed);
    const whole = await diffOf(sync, mode, 'keep');
    const followed = await diffOf(sync, mode, tracking);
    expect(followed.diff.followedChanges).toBe(true);
    expect(followed.rows).toEqual(whole.rows);
    expect(followed.rows.length).toBeGreaterThan(0);
    await applyDiff(sync, followed.run.id, followed.diff, mode);

    // Pruned past the basis (as when cleanup ran while a basis it did not see yet was being taken):
    // the next diff is whole, and still exact.
    await changeAtRandom(sync, random, db());
    await db().$executeRaw`
      INSERT INTO audience_change_pruned (audience_id, below) VALUES (${sync.audienceId}::uuid, pg_current_xact_id())
      ON CONFLICT (audience_id) DO UPDATE SET below = EXCLUDED.below`;
    const again = await diffOf(sync, mode, 'keep');
    const unfollowed = await diffOf(sync, mode, tracking);
    expect(unfollowed.diff.followedChanges).toBe(false);
    expect(unfollowed.rows).toEqual(again.rows);
    await applyDiff(sync, unfollowed.run.id, unfollowed.diff, mode);

    // A deleted sync's basis holds nothing back.
    await changeAtRandom(sync, random, db());
    await cleanUpStaleState();
    expect(await changesOf()).toBeGreaterThan(0);
    const deleted = dataOf(await suite.gateway.execute(DeleteAudienceSync, { id: sync.globalSyncId }));
    expectType(deleted.deleteAudienceSync, 'DeleteAudienceSyncSuccess');
    await untilRunningTransactionsEnd();
    await cleanUpStaleState();
    expect(await changesOf()).toBe(0);
  });

  test(`a basis no run renewed for ${DIFF_BASIS_DAYS} days is dropped by cleanup with the changes it held back; the next diff is whole`, async () => {
    const random = new Random(SEED + 3);
    const mode = 'MIRROR';
    const sync = await seedSync(mode, random);
    const tracking = await trackingOf(sync);
    const first = await diffOf(sync, mode, tracking);
    await applyDiff(sync, first.run.id, first.diff, mode);
    await changeAtRandom(sync, random, db());
    const basisAged = (days: number) =>
      db()
        .$executeRaw`UPDATE diff_basis SET taken_at = now() - make_interval(days => ${days}) WHERE sync_id = ${sync.syncId}::uuid`;
    await basisAged(DIFF_BASIS_DAYS - 1);
    await cleanUpStaleState();
    expect(await db().diffBasis.count({ where: { syncId: sync.syncId } })).toBe(1);
    expect(await changesOfAudience(sync.audienceId)).toBeGreaterThan(0);

    await basisAged(DIFF_BASIS_DAYS + 1);
    await untilRunningTransactionsEnd();
    await cleanUpStaleState();
    expect(await db().diffBasis.count({ where: { syncId: sync.syncId } })).toBe(0);
    expect(await changesOfAudience(sync.audienceId)).toBe(0);
    const whole = await diffOf(sync, mode, 'keep');
    const next = await diffOf(sync, mode, tracking);
    expect(next.diff.followedChanges).toBe(false);
    expect(next.rows.length).toBeGreaterThan(0);
    expect(next.rows).toEqual(whole.rows);
  });

  test('a basis not complete, of other settings, or dropped by a TRUNCATE is not followed', async () => {
    const random = new Random(SEED + 2);
    const mode = 'MIRROR';
    const sync = await seedSync(mode, random);
    const tracking = await trackingOf(sync);
    const first = await diffOf(sync, mode, tracking);
    // Not applied: its run did not finish.
    expect((await diffOf(sync, mode, tracking)).diff.followedChanges).toBe(false);
    const second = await diffOf(sync, mode, tracking);
    await applyDiff(sync, second.run.id, second.diff, mode);
    expect(first.diff.basis).not.toBe(second.diff.basis);
    // Another mode, destination or suppression list: the record is not what those settings diffed.
    const other = { ...tracking, basis: tracking.basis.replace('"MIRROR"', '"ADD"') };
    expect((await diffOf(sync, 'ADD', other)).diff.followedChanges).toBe(false);
    const third = await diffOf(sync, mode, tracking);
    expect(third.diff.followedChanges).toBe(false);
    await applyDiff(sync, third.run.id, third.diff, mode);
    await db().$executeRawUnsafe('TRUNCATE synced_member');
    expect(await db().diffBasis.count()).toBe(0);
    expect((await diffOf(sync, mode, tracking)).diff.followedChanges).toBe(false);
  });
});

describe('runs after the record stopped following the diffs still leave the destination exact', () => {
  async function scenario(emails: string[]) {
    const fake = await suite.fakeMeta();
    const destination = await createMetaDestination(suite.gateway, fake);
    const audience = await createAudienceWith(suite.gateway, emails);
    const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, mode: 'MIRROR' });
    const first = await runSync(suite.gateway, sync.id);
    expect(first.run.status, first.run.errorMessage ?? undefined).toBe('SUCCEEDED');
    return { fake, audience, sync };
  }
  const START = ['ada@example.com', 'grace@example.com', 'linus@example.org'];

  /** The sync's count of members is what its destination holds, and what its record confirms. */
  async function expectExactCount(syncId: string, fake: FakeMeta) {
    const held = heldEmails(fake).length;
    expect((await readSync(suite.gateway, syncId)).lastSyncedCount).toBe(held);
    expect(await confirmedCount(decodeGlobalID(syncId).id)).toBe(held);
  }

  test('a member left unusable is sent once its contact has an email, though its membership never changed', async () => {
    const { fake, audience, sync } = await scenario(START);
    const added = await db().$queryRaw<{ id: bigint }[]>`
      WITH c AS (
        INSERT INTO contact (workspace_id, key, first_name)
        SELECT workspace_id, 'external:margaret', 'Margaret' FROM audience WHERE id = ${decodeGlobalID(audience.id).id}::uuid
        RETURNING id)
      INSERT INTO audience_member (audience_id, contact_id) SELECT ${decodeGlobalID(audience.id).id}::uuid, id FROM c
      RETURNING contact_id AS id`;
    const unusable = await runSync(suite.gateway, sync.id);
    expect(unusable.run).toMatchObject({ status: 'SUCCEEDED', membersUnusable: 1, membersAdded: 0 });
    await expectExactCount(sync.id, fake);
    await db().$executeRaw`UPDATE contact SET email = 'margaret@example.com' WHERE id = ${added[0]!.id}`;
    const sent = await runSync(suite.gateway, sync.id);
    expect(sent.run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 1, membersUnusable: 0 });
    expect(heldEmails(fake)).toEqual(hashedEmails([...START, 'margaret@example.com']));
    await expectExactCount(sync.id, fake);
  });

  test('a failed run and a dry run in between lose no change', async () => {
    const { fake, audience, sync } = await scenario(START);
    await changeMembers(suite.gateway, audience.id, { add: ['margaret@example.com'], remove: ['grace@example.com'] });
    fake.failNext('token-expired');
    expect((await runSync(suite.gateway, sync.id)).run.status).toBe('FAILED');
    await changeMembers(suite.gateway, audience.id, { add: ['ken@example.net'], remove: [] });
    const dry = await runSync(suite.gateway, sync.id, { dryRun: true });
    expect(dry.run).toMatchObject({ status: 'SUCCEEDED', plannedAdds: 2, plannedRemoves: 1 });
    await changeMembers(suite.gateway, audience.id, { add: ['barbara@example.com'], remove: [] });
    const run = await runSync(suite.gateway, sync.id);
    expect(run.run).toMatchObject({ status: 'SUCCEEDED', plannedAdds: 3, plannedRemoves: 1, membersAdded: 3, membersRemoved: 1 });
    const held = ['ada@example.com', 'linus@example.org', 'margaret@example.com', 'ken@example.net', 'barbara@example.com'];
    expect(heldEmails(fake)).toEqual(hashedEmails(held));
    await expectExactCount(sync.id, fake);
  });

  test('a suppression list added to the sync removes its members at the next run', async () => {
    // Filled before the first run: no change of its members is left for the next run to find.
    const optOuts = await createAudienceWith(suite.gateway, ['grace@example.com']);
    const { fake, sync } = await scenario(START);
    const updated = dataOf(
      await suite.gateway.execute(UpdateAudienceSync, { id: sync.id, input: { suppressionAudienceIds: [optOuts.id] } }),
    );
    expectType(updated.updateAudienceSync, 'UpdateAudienceSyncSuccess');
    const run = await runSync(suite.gateway, sync.id);
    expect(run.run).toMatchObject({ status: 'SUCCEEDED', membersRemoved: 1, totalMembers: 2 });
    expect(heldEmails(fake)).toEqual(hashedEmails(['ada@example.com', 'linus@example.org']));
    await expectExactCount(sync.id, fake);
  });

  test('members changed while a run sends are sent by the next one', async () => {
    const { fake, audience, sync } = await scenario(START);
    await changeMembers(suite.gateway, audience.id, { add: ['margaret@example.com'], remove: [] });
    const held = fake.hold();
    const triggered = await triggerSync(suite.gateway, sync.id);
    await held.waiting;
    await changeMembers(suite.gateway, audience.id, { add: ['ken@example.net'], remove: ['ada@example.com'] });
    held.release();
    expect((await waitForRunEnd(suite.gateway, triggered.syncRun.id)).status).toBe('SUCCEEDED');
    const next = await runSync(suite.gateway, sync.id);
    expect(next.run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 1, membersRemoved: 1, totalMembers: 4 });
    expect(heldEmails(fake)).toEqual(
      hashedEmails(['grace@example.com', 'linus@example.org', 'margaret@example.com', 'ken@example.net']),
    );
  });
});
