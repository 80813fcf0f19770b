import {
  audienceDefinition,
  audienceMembersSql,
  type AudienceDefinition,
  type MemberFilter,
} from '../audiences/audience-members.js';
import { bucketRanges, storedSplitGroups, type BucketRange } from '../audiences/split-groups.js';
import { db } from '../infra/db.js';
import { Prisma } from '../generated/prisma/client.js';
import type { DesiredSide } from './membership-diff.js';

/** What decides which contacts a sync should hold on its destination: the audience's members
 * (rows of a static audience, matching contacts of a segment), only those of the sync's split
 * group when it has one, minus the members of its suppression audiences. */
export interface DesiredMembersSource {
  audienceId: string;
  audience: AudienceDefinition;
  /** The split group's buckets, or null when the sync takes the whole audience. */
  bucketRange: BucketRange | null;
  suppressions: AudienceDefinition[];
}

const definitionFields = { id: true, workspaceId: true, kind: true, segmentRule: true } as const;

/** Loads what `desiredMembersSql` needs for one sync. */
export async function loadDesiredMembersSource(syncId: string): Promise<DesiredMembersSource> {
  const sync = await db().audienceSync.findUniqueOrThrow({
    where: { id: syncId },
    select: {
      splitGroup: true,
      audience: { select: { ...definitionFields, splitGroups: true } },
      suppressions: { where: { audience: { deletedAt: null } }, select: { audience: { select: definitionFields } } },
    },
  });
  let bucketRange: BucketRange | null = null;
  if (sync.splitGroup !== null) {
    const group = bucketRanges(storedSplitGroups(sync.audience.splitGroups)).find((range) => range.name === sync.splitGroup);
    if (!group) {
      throw new Error(`The sync sends split group "${sync.splitGroup}", which its audience no longer has: choose another group`);
    }
    bucketRange = { from: group.from, to: group.to };
  }
  return {
    audienceId: sync.audience.id,
    audience: audienceDefinition(sync.audience),
    bucketRange,
    suppressions: sync.suppressions.map((suppression) => audienceDefinition(suppression.audience)),
  };
}

/**
 * A SQL query yielding one `contact_id` column: every contact the sync should hold on its
 * destination. The engine anti-joins it against synced_member, so it must be set-based (no
 * per-row functions that defeat a hash join) and yield each contact once. `narrowed` keeps only the
 * contacts whose id falls in a range, or the one whose id an expression gives.
 */
export function desiredMembersSql(
  source: DesiredMembersSource,
  narrowed: Pick<MemberFilter, 'contactRange' | 'contactId'> = {},
): Prisma.Sql {
  return audienceMembersSql(source.audience, {
    bucketRange: source.bucketRange,
    suppressions: source.suppressions,
    ...narrowed,
  });
}

/**
 * A query of one row (`first`, `last`) between whose contact ids a static audience's members lie, read
 * from its primary key's two ends; null for a segment, whose contacts have no such cheap bounds (the
 * workspace's contacts are found by another index, and the contact table's own bounds span every
 * workspace's: a half outside the workspace would scan other workspaces' contacts).
 */
export function desiredBoundsSql(source: DesiredMembersSource): Prisma.Sql | null {
  return source.audience.kind === 'STATIC'
    ? Prisma.sql`SELECT min(contact_id) AS first, max(contact_id) AS last FROM audience_member WHERE audience_id = ${source.audienceId}::uuid`
    : null;
}

/** The sync's desired side, as the diff reads it. */
export function desiredSide(source: DesiredMembersSource): DesiredSide {
  return {
    membersIn: (contactRange) => desiredMembersSql(source, { contactRange }),
    memberWithId: (contactId) => desiredMembersSql(source, { contactId }),
    bounds: desiredBoundsSql(source),
  };
}
