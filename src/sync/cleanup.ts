import { db } from '../infra/db.js';
import { Prisma } from '../generated/prisma/client.js';
import { dropStaleDiffBases, pruneAudienceChanges } from './change-tracking.js';

/** Rows one DELETE removes at most: each chunk is its own short statement, so the state of a sync
 * with a million members goes without one huge transaction or long-held locks. */
export const CLEANUP_CHUNK_ROWS = 10_000;
/** Task payloads (uploaded files) can be megabytes each: fewer of them per statement. */
const PAYLOAD_CHUNK_ROWS = 100;

/** How long finished platform jobs stay. */
export const PLATFORM_JOB_HISTORY_DAYS = 30;

export interface CleanupCounts {
  syncedMembers: number;
  batchesInDoubt: number;
  platformJobs: number;
  runDiffs: number;
  taskPayloads: number;
  audienceChanges: number;
}

/**
 * Deletes state nothing needs any more: the synced members, batches in doubt and platform jobs of deleted syncs,
 * the members left on finished platform jobs, platform jobs that finished more than
 * PLATFORM_JOB_HISTORY_DAYS ago, the materialized diffs of runs that are not running, the
 * payloads of tasks that ended, diff bases older than DIFF_BASIS_DAYS, and the audience changes no
 * diff basis needs. Idempotent,
 * and safe to run in several workers at once: each chunk skips rows another one has locked.
 * `onChunk` is called after every chunk (to keep a job's lock alive).
 */
export async function cleanUpStaleState(
  options: { chunkRows?: number; onChunk?: () => Promise<unknown> } = {},
): Promise<CleanupCounts> {
  const chunkRows = options.chunkRows ?? CLEANUP_CHUNK_ROWS;
  const inChunks = async (deleteChunk: () => Promise<number>) => {
    for (let total = 0; ; ) {
      const deleted = await deleteChunk();
      await options.onChunk?.();
      total += deleted;
      if (deleted === 0) return total;
    }
  };
  const counts: CleanupCounts = {
    syncedMembers: 0,
    batchesInDoubt: 0,
    platformJobs: 0,
    runDiffs: 0,
    taskPayloads: 0,
    audienceChanges: 0,
  };

  const deletedSyncs = await db().$queryRaw<{ id: string }[]>`
    SELECT a.id FROM audience_sync a
    WHERE a.deleted_at IS NOT NULL
      AND (EXISTS (SELECT 1 FROM synced_member m WHERE m.sync_id = a.id)
        OR EXISTS (SELECT 1 FROM platform_job j WHERE j.sync_id = a.id)
        OR EXISTS (SELECT 1 FROM batch_in_doubt b WHERE b.sync_id = a.id))`;
  // A job's members go before the job, in chunks: a cascade would delete a big job's in one statement.
  const deleteJobMembers = async (jobs: Prisma.Sql) => {
    while (
      (await db().$executeRaw`
        DELETE FROM platform_job_member WHERE (job_id, contact_id) IN (
          SELECT m.job_id, m.contact_id FROM platform_job_member m JOIN platform_job j ON j.id = m.job_id
          WHERE ${jobs} LIMIT ${chunkRows} FOR UPDATE OF m SKIP LOCKED)`) > 0
    ) {
      await options.onChunk?.();
    }
  };
  for (const { id } of deletedSyncs) {
    await deleteJobMembers(Prisma.sql`j.sync_id = ${id}::uuid`);
    counts.syncedMembers += await inChunks(
      () => db().$executeRaw`
        DELETE FROM synced_member WHERE sync_id = ${id}::uuid AND contact_id = ANY(ARRAY(
          SELECT contact_id FROM synced_member WHERE sync_id = ${id}::uuid
          LIMIT ${chunkRows} FOR UPDATE SKIP LOCKED))`,
    );
    counts.batchesInDoubt += await inChunks(
      () => db().$executeRaw`
        DELETE FROM batch_in_doubt WHERE id = ANY(ARRAY(
          SELECT id FROM batch_in_doubt WHERE sync_id = ${id}::uuid
          LIMIT ${chunkRows} FOR UPDATE SKIP LOCKED))`,
    );
    counts.platformJobs += await inChunks(
      () => db().$executeRaw`
        DELETE FROM platform_job WHERE id = ANY(ARRAY(
          SELECT id FROM platform_job WHERE sync_id = ${id}::uuid
          LIMIT ${chunkRows} FOR UPDATE SKIP LOCKED))`,
    );
  }

  // Finished platform jobs are kept a while as history (what failed and why), then go; members
  // left on a finished job (its check stopped midway) go at once.
  await deleteJobMembers(Prisma.sql`j.status IN ('SUCCEEDED', 'FAILED')`);
  counts.platformJobs += await inChunks(
    () => db().$executeRaw`
      DELETE FROM platform_job WHERE id = ANY(ARRAY(
        SELECT id FROM platform_job
        WHERE status IN ('SUCCEEDED', 'FAILED') AND finished_at < now() - make_interval(days => ${PLATFORM_JOB_HISTORY_DAYS})
        LIMIT ${chunkRows} FOR UPDATE SKIP LOCKED))`,
  );

  // The runs in run_diff (a handful of runs, many rows).
  const diffRuns = await db().$queryRaw<{ key: string }[]>`
    SELECT k.key FROM (${distinctLeadingKeys('run_diff', 'run_id')}) AS k
    WHERE NOT EXISTS (SELECT 1 FROM sync_run r WHERE r.id = k.key AND r.status = 'RUNNING')`;
  for (const { key: runId } of diffRuns) {
    // The status is checked again by each statement: the run may have started meanwhile.
    counts.runDiffs += await inChunks(
      () => db().$executeRaw`
        DELETE FROM run_diff WHERE ctid = ANY(ARRAY(
          SELECT ctid FROM run_diff WHERE run_id = ${runId}::uuid
          LIMIT ${chunkRows} FOR UPDATE SKIP LOCKED))
        AND NOT EXISTS (SELECT 1 FROM sync_run r WHERE r.id = ${runId}::uuid AND r.status = 'RUNNING')`,
    );
  }

  counts.taskPayloads = await inChunks(
    () => db().$executeRaw`
      DELETE FROM task_payload WHERE task_id = ANY(ARRAY(
        SELECT p.task_id FROM task_payload p JOIN task t ON t.id = p.task_id
        WHERE t.status IN ('COMPLETED', 'FAILED')
        LIMIT ${Math.min(chunkRows, PAYLOAD_CHUNK_ROWS)} FOR UPDATE OF p SKIP LOCKED))`,
  );

  // Bases no run has renewed for long hold no changes back (see DIFF_BASIS_DAYS).
  await db().$executeRaw(dropStaleDiffBases());
  const changedAudiences = await db().$queryRaw<{ key: string }[]>(distinctLeadingKeys('audience_change', 'audience_id'));
  for (const { key: audienceId } of changedAudiences) {
    counts.audienceChanges += await inChunks(async () => {
      const [row] = await db().$queryRaw<{ count: number }[]>(pruneAudienceChanges(audienceId, chunkRows));
      return row!.count;
    });
  }
  return counts;
}

/**
 * A query of one `key` column: the distinct values of `column`, the first of `table`'s primary key, by
 * a skip scan of that key (one index probe per value, however many rows each has).
 */
function distinctLeadingKeys(table: 'run_diff' | 'audience_change', column: 'run_id' | 'audience_id'): Prisma.Sql {
  const [t, c] = [Prisma.raw(table), Prisma.raw(column)];
  return Prisma.sql`
    WITH RECURSIVE keys AS (
      (SELECT ${c} AS key FROM ${t} ORDER BY ${c} LIMIT 1)
      UNION ALL
      SELECT (SELECT x.${c} FROM ${t} x WHERE x.${c} > keys.key ORDER BY x.${c} LIMIT 1)
      FROM keys WHERE keys.key IS NOT NULL
    )
    SELECT key FROM keys WHERE key IS NOT NULL`;
}
