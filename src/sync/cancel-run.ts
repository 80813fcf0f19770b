import { db } from '../infra/db.js';
import type { SyncRun, SyncRunStatus } from '../generated/prisma/client.js';
import { publishRunUpdated, publishTaskUpdated } from '../infra/change-events.js';

/** Thrown inside a run's execution when cancelSyncRun asked it to stop: the run ends CANCELLED. */
export class RunCancelled extends Error {
  constructor(readonly runId: string) {
    super(`Run ${runId} was cancelled`);
    this.name = 'RunCancelled';
  }
}

/** Who asked: the API key, whose name is kept on the run even if the key is deleted later. */
export interface Canceller {
  apiKeyId: string;
}

/** `cancelled`: the run was queued and is now CANCELLED. `stopping`: the run is running; its worker
 * stops after the current batch and ends it CANCELLED. */
export type CancelOutcome =
  | { outcome: 'cancelled' | 'stopping'; run: SyncRun }
  | { outcome: 'not-found' }
  | { outcome: 'finished'; status: SyncRunStatus };

/**
 * Cancels a run of `workspaceId`. The sync's row is locked FOR UPDATE, as a claim locks it, so a
 * queued run is either cancelled before any worker claims it or seen RUNNING and asked to stop. A
 * second request for a run already stopping keeps the first canceller.
 */
export async function cancelSyncRun(runId: string, workspaceId: string, by: Canceller): Promise<CancelOutcome> {
  const result = await db().$transaction(async (tx) => {
    const [found] = await tx.$queryRaw<{ sync_id: string }[]>`
      SELECT sync_id FROM sync_run WHERE id = ${runId}::uuid AND workspace_id = ${workspaceId}::uuid`;
    if (!found) return { outcome: 'not-found' as const };
    await tx.$executeRaw`SELECT 1 FROM audience_sync WHERE id = ${found.sync_id}::uuid FOR UPDATE`;
    const run = await tx.syncRun.findUniqueOrThrow({ where: { id: runId } });
    const key = await tx.apiKey.findUnique({ where: { id: by.apiKeyId }, select: { id: true, name: true } });
    const cancelledBy = { cancelledById: key?.id ?? null, cancelledByName: key?.name ?? null };
    if (run.status === 'QUEUED') {
      const now = new Date();
      const cancelled = await tx.syncRun.update({
        where: { id: runId },
        data: { status: 'CANCELLED', phase: 'cancelled', cancelRequestedAt: now, finishedAt: now, ...cancelledBy },
      });
      const tasks = await tx.task.updateManyAndReturn({
        where: { runId, status: { in: ['QUEUED', 'RUNNING'] } },
        data: {
          status: 'FAILED',
          result: { status: 'CANCELLED', dryRun: run.dryRun },
          error: cancelledMessage(cancelled),
          completedAt: now,
        },
        select: { id: true, workspaceId: true },
      });
      return { outcome: 'cancelled' as const, run: cancelled, tasks };
    }
    if (run.status === 'RUNNING') {
      if (run.cancelRequestedAt) return { outcome: 'stopping' as const, run, tasks: [] };
      const stopping = await tx.syncRun.update({
        where: { id: runId },
        data: { cancelRequestedAt: new Date(), ...cancelledBy },
      });
      return { outcome: 'stopping' as const, run: stopping, tasks: [] };
    }
    return { outcome: 'finished' as const, status: run.status };
  });
  if (result.outcome === 'cancelled' || result.outcome === 'stopping') {
    publishRunUpdated(result.run);
    for (const task of result.tasks) publishTaskUpdated(task);
    return { outcome: result.outcome, run: result.run };
  }
  return result;
}

/** Whether cancelSyncRun asked the run to stop. */
export async function cancelRequested(runId: string): Promise<boolean> {
  const [row] = await db().$queryRaw<{ requested: boolean }[]>`
    SELECT cancel_requested_at IS NOT NULL AS requested FROM sync_run WHERE id = ${runId}::uuid`;
  return row?.requested ?? false;
}

/** What a cancelled run's tasks report as their error. */
export function cancelledMessage(run: Pick<SyncRun, 'cancelledByName'>): string {
  return run.cancelledByName ? `The run was cancelled by API key "${run.cancelledByName}"` : 'The run was cancelled';
}
