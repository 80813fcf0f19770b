import { Prisma } from '../generated/prisma/client.js';
import type { SyncMode } from '../generated/prisma/enums.js';

// Change tracking: a run diffs only the contacts changed since its sync's last complete run, instead of
// the whole audience against the whole record. Triggers on audience_member write each changed
// (audience, contact) to audience_change with its transaction's id (see the change_tracking
// migration). Each diff records the snapshot it was taken at as its sync's basis, `complete` once its
// run applied all of it; the next diff then needs only the changes that snapshot does not see: a
// transaction committed after it, or running when it was taken, whatever the order of commits. A
// change committed while the diff is taken is seen by both, and checked twice, harmlessly.
//
// Exact only while the record moved with the diffs alone, so any doubt means a full diff: a run that
// did not apply all of its diff (failed, cancelled, killed, members unusable or refused), a dry run's
// diff, different settings, a platform job undone, changes pruned past the basis, a TRUNCATE. A full
// diff takes a new basis too. https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-PG-SNAPSHOT

/** What a sync's diff may follow changes of. */
export interface DiffTracking {
  /** The sync's settings that decide its diff, compared with those of its basis. */
  basis: string;
  /** The audiences whose members decide the sync's: its audience and its suppressions. */
  audienceIds: string[];
}

/**
 * Tracking for a sync whose desired members follow audience_member alone: a static audience, without a
 * split group (whose buckets hash contact keys), whose suppressions are static. UPSERT's updates follow
 * contact rows, which are not tracked. Null otherwise: its runs always diff in full.
 */
export function diffTrackingOf(
  sync: { mode: SyncMode; destinationId: string },
  source: {
    audienceId: string;
    audience: { kind: 'STATIC' | 'SEGMENT' };
    bucketRange: unknown;
    suppressions: { id: string; kind: 'STATIC' | 'SEGMENT' }[];
  },
): DiffTracking | null {
  const staticOnly = source.audience.kind === 'STATIC' && source.suppressions.every((s) => s.kind === 'STATIC');
  if (!staticOnly || source.bucketRange !== null || sync.mode === 'UPSERT') return null;
  const suppressions = source.suppressions.map((suppression) => suppression.id).sort();
  return {
    basis: JSON.stringify({
      audience: source.audienceId,
      suppressions,
      mode: sync.mode,
      destination: sync.destinationId,
    }),
    audienceIds: [source.audienceId, ...suppressions],
  };
}

/**
 * Takes a basis for the diff about to be taken: one row (`previous`, `synced_rows`, `taken`).
 * `previous` is the snapshot to follow changes from, or null when the diff must be full, with the
 * previous basis's `synced_rows`; `taken`, the snapshot of this statement, recorded as the sync's
 * basis, not complete. Without tracking, drops the basis: the
 * record will move in ways no basis follows. Run first in the diff's first transaction, whose later
 * statements (and the diff's later transactions) see all that `taken` sees.
 */
export function takeDiffBasis(syncId: string, tracking: DiffTracking | null): Prisma.Sql {
  if (!tracking) {
    return Prisma.sql`
      WITH dropped AS (DELETE FROM diff_basis WHERE sync_id = ${syncId}::uuid)
      SELECT NULL::text AS previous, NULL::bigint AS synced_rows, NULL::text AS taken`;
  }
  return Prisma.sql`
    WITH previous AS (
      SELECT b.snapshot, b.synced_rows FROM diff_basis b
      WHERE b.sync_id = ${syncId}::uuid AND b.complete AND b.basis = ${tracking.basis}
        AND NOT EXISTS (SELECT 1 FROM audience_change_pruned p
                        WHERE p.audience_id = ANY(${tracking.audienceIds}::uuid[])
                          AND p.below > pg_snapshot_xmin(b.snapshot::pg_snapshot))),
    taken AS (
      INSERT INTO diff_basis (sync_id, snapshot, basis, complete)
      VALUES (${syncId}::uuid, pg_current_snapshot()::text, ${tracking.basis}, false)
      ON CONFLICT (sync_id) DO UPDATE
        SET snapshot = EXCLUDED.snapshot, basis = EXCLUDED.basis, complete = false, synced_rows = NULL, taken_at = now()
      RETURNING snapshot)
    SELECT (SELECT snapshot FROM previous) AS previous, (SELECT synced_rows FROM previous) AS synced_rows,
           (SELECT snapshot FROM taken) AS taken`;
}

/** The contacts of the tracked audiences changed by transactions `snapshot` does not see: by the
 * primary key, from the oldest transaction it saw running. May hold a contact more than once. */
export function changedSince(tracking: DiffTracking, snapshot: string): Prisma.Sql {
  return Prisma.sql`
    SELECT contact_id FROM audience_change
    WHERE audience_id = ANY(${tracking.audienceIds}::uuid[])
      AND xid >= pg_snapshot_xmin(${snapshot}::pg_snapshot)
      AND NOT pg_visible_in_snapshot(xid, ${snapshot}::pg_snapshot)`;
}

/** Makes the sync's basis complete: its run applied all of the diff taken at `snapshot`, leaving
 * `syncedRows` rows in its record (MIRROR; null for other modes, whose record is not the audience). */
export function completeDiffBasis(syncId: string, snapshot: string, syncedRows: number | null): Prisma.Sql {
  return Prisma.sql`
    UPDATE diff_basis SET complete = true, synced_rows = ${syncedRows}::bigint
    WHERE sync_id = ${syncId}::uuid AND snapshot = ${snapshot}`;
}

/** Drops the sync's basis: its record changed outside a diff. */
export function forgetDiffBasis(syncId: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`DELETE FROM diff_basis WHERE sync_id = ${syncId}`;
}

/** How long a basis is kept: a sync that does not run for longer (paused, say) diffs in full when it
 * runs again, instead of keeping its audiences' changes from being pruned meanwhile. */
export const DIFF_BASIS_DAYS = 30;

/** Drops the bases taken more than DIFF_BASIS_DAYS ago. */
export function dropStaleDiffBases(): Prisma.Sql {
  return Prisma.sql`DELETE FROM diff_basis WHERE taken_at < now() - make_interval(days => ${DIFF_BASIS_DAYS})`;
}

/**
 * Deletes up to `limit` of the audience's changes that no basis needs: those below both the oldest
 * transaction running now and every basis's (complete or being taken) of the syncs that follow the
 * audience. Records how far it pruned in the same statement, so that a basis taken meanwhile that
 * needed one of them is not used (see takeDiffBasis). Returns how many it deleted.
 */
export function pruneAudienceChanges(audienceId: string, limit: number): Prisma.Sql {
  return Prisma.sql`
    WITH horizon AS (
      SELECT LEAST(pg_snapshot_xmin(pg_current_snapshot()),
                   (SELECT min(pg_snapshot_xmin(b.snapshot::pg_snapshot))
                    FROM diff_basis b JOIN audience_sync s ON s.id = b.sync_id
                    WHERE s.audience_id = ${audienceId}::uuid
                       OR s.id IN (SELECT sync_id FROM audience_sync_suppression WHERE audience_id = ${audienceId}::uuid))) AS below),
    doomed AS (
      SELECT xid, contact_id FROM audience_change
      WHERE audience_id = ${audienceId}::uuid AND xid < (SELECT below FROM horizon)
      LIMIT ${limit} FOR UPDATE SKIP LOCKED),
    deleted AS (
      DELETE FROM audience_change c USING doomed d
      WHERE c.audience_id = ${audienceId}::uuid AND c.xid = d.xid AND c.contact_id = d.contact_id
      RETURNING 1),
    pruned AS (
      INSERT INTO audience_change_pruned (audience_id, below)
      SELECT ${audienceId}::uuid, below FROM horizon WHERE EXISTS (SELECT 1 FROM deleted)
      ON CONFLICT (audience_id) DO UPDATE SET below = GREATEST(audience_change_pruned.below, EXCLUDED.below))
    SELECT count(*)::int AS count FROM deleted`;
}
