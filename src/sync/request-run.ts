import { db } from '../infra/db.js';
import type { SyncRunTrigger } from '../generated/prisma/enums.js';
import { publishRunUpdated, publishSyncUpdated, publishTaskUpdated } from '../infra/change-events.js';

export const TRIGGER_TASK_KIND = 'TRIGGER_AUDIENCE_SYNC';

/**
 * Records a request to run a sync: a QUEUED run and a Task that follows it. A sync has at most
 * one queued run of each kind (real or dry): a request while one is waiting joins it instead of
 * queuing another, so bursts of triggers coalesce. The caller enqueues the job for a new run.
 */
export async function requestSyncRun(syncId: string, trigger: SyncRunTrigger, dryRun: boolean) {
  const outcome = await db().$transaction(async (tx) => {
    // Serialises requests for one sync, so two concurrent triggers cannot both queue a run.
    const [sync] = await tx.$queryRaw<{ workspace_id: string }[]>`
      SELECT workspace_id FROM audience_sync WHERE id = ${syncId}::uuid AND deleted_at IS NULL FOR UPDATE`;
    if (!sync) return null;
    const waiting = await tx.syncRun.findFirst({ where: { syncId, status: 'QUEUED', dryRun } });
    const run =
      waiting ?? (await tx.syncRun.create({ data: { syncId, workspaceId: sync.workspace_id, trigger, dryRun } }));
    if (!waiting && !dryRun) await tx.audienceSync.update({ where: { id: syncId }, data: { lastRunId: run.id } });
    const task = await tx.task.create({
      data: { workspaceId: sync.workspace_id, kind: TRIGGER_TASK_KIND, runId: run.id },
    });
    return { run, task, coalesced: waiting !== null };
  });
  if (outcome) {
    publishRunUpdated(outcome.run);
    publishTaskUpdated(outcome.task);
    // A new real run is the sync's lastRun.
    if (!outcome.coalesced && !dryRun) publishSyncUpdated({ id: syncId, workspaceId: outcome.run.workspaceId });
  }
  return outcome;
}

/** How long a queued run may wait, with nothing of its sync running, before its job counts as lost. */
export const STRANDED_AFTER_SECONDS = 300;

/**
 * Queued runs whose job was lost: a request commits its run before the job is enqueued, so a
 * process dying in between leaves a run nothing will start (and every later trigger would join
 * it). A run that waited this long with no run of its sync in progress is re-enqueued; a
 * duplicate job is harmless, since claiming a run is atomic.
 */
export async function findStrandedRuns(): Promise<string[]> {
  const rows = await db().$queryRaw<{ id: string }[]>`
    SELECT r.id FROM sync_run r
    WHERE r.status = 'QUEUED'
      AND r.created_at < now() - make_interval(secs => ${STRANDED_AFTER_SECONDS})
      AND NOT EXISTS (SELECT 1 FROM sync_run o
                      WHERE o.sync_id = r.sync_id AND o.status = 'RUNNING' AND o.lease_expires_at >= now())`;
  return rows.map((row) => row.id);
}
