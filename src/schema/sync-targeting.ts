import { z } from 'zod';
import { storedSplitGroups } from '../audiences/split-groups.js';
import type { Prisma } from '../generated/prisma/client.js';
import { NotFoundError, ValidationError } from './errors.js';
import { parseGlobalId } from './global-id.js';

/** Which members of its audience a sync sends: a split group, and the audiences it suppresses. */

export const MAX_SUPPRESSION_AUDIENCES = 20;

export const SPLIT_GROUP_DESCRIPTION = 'Send only this split group of the audience (see Audience.splitGroups); null sends every member.';
export const SUPPRESSION_DESCRIPTION =
  `Audiences (up to ${MAX_SUPPRESSION_AUDIENCES}, static or segment) whose members the sync never sends; in MIRROR ` +
  'mode a member who joins one is removed from the destination.';

export const syncTargetingSchema = {
  splitGroup: z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters').nullish(),
  suppressionAudienceIds: z
    .array(z.string())
    .max(MAX_SUPPRESSION_AUDIENCES, `at most ${MAX_SUPPRESSION_AUDIENCES} audiences`)
    .nullish(),
};

/**
 * Checks a sync's split group against its audience's groups and its suppression audience ids
 * (well-formed, distinct, live audiences of the workspace, not the synced audience). Locks the
 * audiences it reads FOR SHARE, so that no concurrent change removes a group or an audience it
 * relies on. Returns the suppression audience ids to store, when given.
 */
export async function checkSyncTargeting(
  tx: Prisma.TransactionClient,
  target: {
    workspaceId: string;
    audienceId: string;
    splitGroup: string | null | undefined;
    suppressionAudienceIds: readonly string[] | null | undefined;
  },
): Promise<string[] | undefined> {
  if (target.splitGroup != null) {
    const [audience] = await tx.$queryRaw<{ split_groups: unknown }[]>`
      SELECT split_groups FROM audience WHERE id = ${target.audienceId}::uuid FOR SHARE`;
    const names = storedSplitGroups(audience?.split_groups).map((group) => group.name);
    if (!names.includes(target.splitGroup)) {
      throw ValidationError.of(
        'input.splitGroup',
        names.length === 0
          ? 'the audience has no split groups: give it some with updateAudience first'
          : `the audience has no split group "${target.splitGroup}" (it has ${names.map((name) => `"${name}"`).join(', ')})`,
      );
    }
  }
  if (target.suppressionAudienceIds == null) return undefined;

  const ids = target.suppressionAudienceIds.map((id, index) =>
    parseGlobalId(id, 'Audience', `input.suppressionAudienceIds.${index}`),
  );
  ids.forEach((id, index) => {
    if (id === target.audienceId) {
      throw ValidationError.of(`input.suppressionAudienceIds.${index}`, 'is the synced audience itself');
    }
    if (ids.indexOf(id) !== index) throw ValidationError.of(`input.suppressionAudienceIds.${index}`, 'is given twice');
  });
  if (ids.length === 0) return [];
  const found = await tx.$queryRaw<{ id: string }[]>`
    SELECT id::text FROM audience
    WHERE id = ANY(${ids}::uuid[]) AND workspace_id = ${target.workspaceId}::uuid AND deleted_at IS NULL
    FOR SHARE`;
  const live = new Set(found.map((row) => row.id));
  const missing = ids.findIndex((id) => !live.has(id));
  if (missing >= 0) throw new NotFoundError(`input.suppressionAudienceIds.${missing}`, 'audience');
  return ids;
}

/** Replaces the sync's suppression audiences. */
export async function saveSuppressions(tx: Prisma.TransactionClient, syncId: string, audienceIds: string[]): Promise<void> {
  await tx.audienceSyncSuppression.deleteMany({ where: { syncId } });
  if (audienceIds.length > 0) {
    await tx.audienceSyncSuppression.createMany({ data: audienceIds.map((audienceId) => ({ syncId, audienceId })) });
  }
}
