import type { Prisma } from '../generated/prisma/client.js';
import { deleteSyncs } from '../sync/delete-syncs.js';

/**
 * Soft-deletes the workspace's live audiences matching `where`, inside the caller's transaction:
 * they vanish from every list and lookup, and their syncs are deleted the way deleteAudienceSync
 * does it. Members and contacts stay stored. Returns the ids of the audiences deleted.
 */
export async function deleteAudiences(
  tx: Prisma.TransactionClient,
  workspaceId: string,
  where: Prisma.AudienceWhereInput,
): Promise<string[]> {
  // UPDATE … RETURNING locks the rows: createAudienceSync holds them FOR SHARE while it checks them.
  const deleted = await tx.audience.updateManyAndReturn({
    where: { ...where, workspaceId, deletedAt: null },
    data: { deletedAt: new Date() },
    select: { id: true },
  });
  const ids = deleted.map((audience) => audience.id);
  if (ids.length > 0) await deleteSyncs(tx, { audienceId: { in: ids } });
  return ids;
}
