import {
  audienceDefinition,
  audienceMembersSql,
  type AudienceDefinition,
  type ContactRange,
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
 * per-row functions that defeat a hash join) and yield each contact once. With `contactRange`, only
 * the contacts whose id falls in it.
 */
export function desiredMembersSql(source: DesiredMembersSource, contactRange?: ContactRange): Prisma.Sql {
  return audienceMembersSql(source.audience, {
    bucketRange: source.bucketRange,
    suppressions: source.suppressions,
    contactRange,
  });
}

/**
 * A query of one row (`first`, `last`) between whose contact ids the sync's desired members lie, read
 * from a primary key's two ends: a static audience's members, or a segment's possible contacts (all
 * contacts: the diff only splits its work at the middle, where an uneven split does less at once).
 */
export function desiredBoundsSql(source: DesiredMembersSource): Prisma.Sql {
  return source.audience.kind === 'STATIC'
    ? Prisma.sql`SELECT min(contact_id) AS first, max(contact_id) AS last FROM audience_member WHERE audience_id = ${source.audienceId}::uuid`
    : Prisma.sql`SELECT min(id) AS first, max(id) AS last FROM contact`;
}

/** The sync's desired side, as the diff reads it. */
export function desiredSide(source: DesiredMembersSource): DesiredSide {
  return { membersIn: (range) => desiredMembersSql(source, range), bounds: desiredBoundsSql(source) };
}
