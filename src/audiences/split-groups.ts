import { z } from 'zod';
import { Prisma } from '../generated/prisma/client.js';

/**
 * Split groups divide an audience's members into named groups by percentage. A member's group
 * follows from a stable hash of (audience id, contact key) into SPLIT_BUCKETS buckets: group i
 * holds the buckets from the sum of the percentages before it, so a person stays in the same
 * group as long as the percentages stand.
 */

export const SPLIT_BUCKETS = 10_000;
export const MAX_SPLIT_GROUPS = 100;

export interface SplitGroup {
  name: string;
  percent: number;
}

/** Buckets [from, to) of one group. */
export interface BucketRange {
  from: number;
  to: number;
}

const hundredths = (percent: number) => Math.round(percent * 100);

export const splitGroupsSchema = z
  .array(
    z.object({
      name: z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
      percent: z
        .number()
        // 0.01 is the least share above 0 that two decimals allow; 5e-324 would pass `> 0` and get no bucket.
        .gte(0.01, 'must be more than 0 (at least 0.01)')
        .max(100, 'must be at most 100')
        .refine((percent) => Math.abs(percent * 100 - hundredths(percent)) < 1e-6, 'must have at most 2 decimals'),
    }),
  )
  .max(MAX_SPLIT_GROUPS, `at most ${MAX_SPLIT_GROUPS} groups`)
  .superRefine((groups, context) => {
    const seen = new Set<string>();
    groups.forEach((group, index) => {
      if (seen.has(group.name)) context.addIssue({ code: 'custom', path: [index, 'name'], message: `"${group.name}" is given twice` });
      seen.add(group.name);
    });
    const total = groups.reduce((sum, group) => sum + hundredths(group.percent), 0);
    if (groups.length > 0 && total !== 100 * 100) {
      context.addIssue({ code: 'custom', message: `the percentages must add up to exactly 100 (they add up to ${total / 100})` });
    }
  });

/** The groups as stored on an audience (valid by construction). */
export function storedSplitGroups(json: unknown): SplitGroup[] {
  return Array.isArray(json) ? (json as SplitGroup[]) : [];
}

/** The bucket range of each group, in order. */
export function bucketRanges(groups: SplitGroup[]): (SplitGroup & BucketRange)[] {
  let from = 0;
  return groups.map((group) => {
    const to = from + hundredths(group.percent);
    const range = { ...group, from, to };
    from = to;
    return range;
  });
}

/** The bucket (0 – SPLIT_BUCKETS-1) of the contact row `alias` in an audience: the first 32
 * bits of md5(audience id ':' contact key), modulo SPLIT_BUCKETS. */
export function splitBucketSql(audienceId: string, alias: string): Prisma.Sql {
  return Prisma.sql`(('x' || substr(md5(${`${audienceId}:`} || ${Prisma.raw(alias)}.key), 1, 8))::bit(32)::bigint % ${SPLIT_BUCKETS})`;
}
