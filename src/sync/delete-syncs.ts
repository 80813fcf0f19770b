import type { Prisma } from '../generated/prisma/client.js';
import { applySyncSchedule } from '../jobs/audience-sync.js';

/**
 * Soft-deletes syncs inside the caller's transaction: they leave every list, their queued runs are
 * cancelled, their schedules removed (a schedule that cannot be removed rolls the transaction
 * back) and their diff bases dropped. The platform audiences are left as they are. Returns how many
 * syncs were deleted.
 */
export async function deleteSyncs(tx: Prisma.TransactionClient, where: Prisma.AudienceSyncWhereInput): Promise<number> {
  const syncs = await tx.audienceSync.findMany({ where: { ...where, deletedAt: null }, select: { id: true } });
  if (syncs.length === 0) return 0;
  const ids = syncs.map((sync) => sync.id);
  const deletedAt = new Date();
  await tx.audienceSync.updateMany({ where: { id: { in: ids } }, data: { deletedAt } });
  // A deleted sync never runs again: its basis would only keep cleanup from pruning its audiences' changes.
  await tx.diffBasis.deleteMany({ where: { syncId: { in: ids } } });
  await tx.syncRun.updateMany({
    where: { syncId: { in: ids }, status: 'QUEUED' },
    data: { status: 'CANCELLED', phase: 'cancelled', finishedAt: deletedAt, errorMessage: 'The sync was deleted' },
  });
  const deleted = await tx.audienceSync.findMany({ where: { id: { in: ids } } });
  for (const sync of deleted) await applySyncSchedule(sync);
  return ids.length;
}
