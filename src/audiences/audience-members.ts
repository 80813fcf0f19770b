import { Prisma } from '../generated/prisma/client.js';
import type { AudienceKind } from '../generated/prisma/enums.js';
import { compileSegmentRule, storedSegmentRule, type SegmentRule } from './segment-rule.js';
import { bucketRanges, splitBucketSql, type BucketRange, type SplitGroup } from './split-groups.js';

/** What decides an audience's members: its rows in audience_member (STATIC), or the contacts of
 * its workspace matching its rule (SEGMENT). */
export type AudienceDefinition =
  | { id: string; workspaceId: string; kind: 'STATIC' }
  | { id: string; workspaceId: string; kind: 'SEGMENT'; rule: SegmentRule };

export function audienceDefinition(audience: {
  id: string;
  workspaceId: string;
  kind: AudienceKind;
  segmentRule: unknown;
}): AudienceDefinition {
  return audience.kind === 'SEGMENT'
    ? { id: audience.id, workspaceId: audience.workspaceId, kind: 'SEGMENT', rule: storedSegmentRule(audience.segmentRule) }
    : { id: audience.id, workspaceId: audience.workspaceId, kind: 'STATIC' };
}

/** What a member query narrows an audience to. */
export interface MemberFilter {
  /** Only the members whose split bucket falls in this range. */
  bucketRange?: BucketRange | null;
  /** Leaves out the members of these audiences. */
  suppressions?: AudienceDefinition[];
  /** Only the members whose contact id falls in this range. */
  contactRange?: ContactRange;
  /** Only the member whose contact id is this expression (a column of an enclosing query, for a
   * lookup by key). */
  contactId?: Prisma.Sql;
}

/** Contact ids from `from` (inclusive) up to `below` (exclusive); an open end when omitted. */
export interface ContactRange {
  from?: bigint;
  below?: bigint;
}

/** The condition that keeps `contactId` equal to `wanted`, if any. */
function wantedConditions(contactId: Prisma.Sql, wanted: Prisma.Sql | undefined): Prisma.Sql[] {
  return wanted ? [Prisma.sql`${contactId} = ${wanted}`] : [];
}

/** The conditions that keep `contactId` within `range`. */
export function contactRangeConditions(contactId: Prisma.Sql, range: ContactRange | undefined): Prisma.Sql[] {
  return [
    ...(range?.from !== undefined ? [Prisma.sql`${contactId} >= ${range.from}`] : []),
    ...(range?.below !== undefined ? [Prisma.sql`${contactId} < ${range.below}`] : []),
  ];
}

/** One condition that keeps `contactId` within `range` (TRUE for the whole contact id space). */
export function inContactRange(contactId: Prisma.Sql, range: ContactRange): Prisma.Sql {
  return Prisma.join([Prisma.sql`TRUE`, ...contactRangeConditions(contactId, range)], ' AND ');
}

/** The FROM and WHERE parts of an audience's member rows; `c` is the contact row when joined. */
function memberRows(audience: AudienceDefinition, withContact: boolean) {
  if (audience.kind === 'SEGMENT') {
    return {
      contactId: Prisma.sql`c.id`,
      from: Prisma.sql`contact c`,
      conditions: [Prisma.sql`c.workspace_id = ${audience.workspaceId}::uuid`, compileSegmentRule(audience.rule, 'c')],
    };
  }
  return {
    contactId: Prisma.sql`m.contact_id`,
    from: withContact ? Prisma.sql`audience_member m JOIN contact c ON c.id = m.contact_id` : Prisma.sql`audience_member m`,
    conditions: [Prisma.sql`m.audience_id = ${audience.id}::uuid`],
  };
}

/**
 * A query yielding one `contact_id` column: the audience's members, each once, narrowed by
 * `filter`. Static suppressions are an anti-join on audience_member, segment suppressions and
 * the split bucket predicates on the contact row.
 */
export function audienceMembersSql(audience: AudienceDefinition, filter: MemberFilter = {}): Prisma.Sql {
  const suppressions = filter.suppressions ?? [];
  const staticSuppressions = suppressions.flatMap((suppression) => (suppression.kind === 'STATIC' ? [suppression.id] : []));
  const contactConditions = suppressions.flatMap((suppression) =>
    suppression.kind === 'SEGMENT' ? [Prisma.sql`NOT ${compileSegmentRule(suppression.rule, 'c')}`] : [],
  );
  if (filter.bucketRange) {
    const { from, to } = filter.bucketRange;
    contactConditions.push(Prisma.sql`${splitBucketSql(audience.id, 'c')} <@ int8range(${from}::bigint, ${to}::bigint)`);
  }
  const notSuppressed = (contactId: Prisma.Sql) =>
    staticSuppressions.length === 0
      ? []
      : [
          Prisma.sql`NOT EXISTS (SELECT 1 FROM audience_member x
            WHERE x.audience_id = ANY(${staticSuppressions}::uuid[]) AND x.contact_id = ${contactId})`,
        ];

  if (audience.kind === 'SEGMENT') {
    const rows = memberRows(audience, true);
    const conditions = [
      ...rows.conditions,
      ...contactRangeConditions(rows.contactId, filter.contactRange),
      ...wantedConditions(rows.contactId, filter.contactId),
      ...contactConditions,
      ...notSuppressed(rows.contactId),
    ];
    return Prisma.sql`SELECT c.id AS contact_id FROM contact c WHERE ${Prisma.join(conditions, ' AND ')}`;
  }
  const members = Prisma.sql`SELECT m.contact_id FROM audience_member m
    WHERE ${Prisma.join(
      [
        Prisma.sql`m.audience_id = ${audience.id}::uuid`,
        ...contactRangeConditions(Prisma.sql`m.contact_id`, filter.contactRange),
        ...wantedConditions(Prisma.sql`m.contact_id`, filter.contactId),
        ...notSuppressed(Prisma.sql`m.contact_id`),
      ],
      ' AND ',
    )}`;
  if (contactConditions.length === 0) return members;
  // PostgreSQL cannot estimate how many rows the contact predicates keep (it guesses a handful),
  // and would then probe the suppressions row by row. OFFSET 0 plans the members apart, with an
  // exact estimate (so a hash or merge anti-join), and the contact predicates apply after.
  return Prisma.sql`SELECT d.contact_id FROM (${members} OFFSET 0) d JOIN contact c ON c.id = d.contact_id
    WHERE ${Prisma.join([Prisma.sql`c.workspace_id = ${audience.workspaceId}::uuid`, ...contactConditions], ' AND ')}`;
}

/** How many members the audience holds now. */
export async function countAudienceMembers(
  client: { $queryRaw<T>(query: Prisma.Sql): Promise<T> },
  audience: AudienceDefinition,
): Promise<number> {
  const [row] = await client.$queryRaw<{ count: bigint }[]>(
    Prisma.sql`SELECT count(*) AS count FROM (${audienceMembersSql(audience)}) members`,
  );
  return Number(row!.count);
}

/** How many members each split group holds now, in the groups' order. */
export async function countSplitGroupMembers(
  client: { $queryRaw<T>(query: Prisma.Sql): Promise<T> },
  audience: AudienceDefinition,
  groups: SplitGroup[],
): Promise<number[]> {
  if (groups.length === 0) return [];
  const rows = memberRows(audience, true);
  // width_bucket against the groups' upper bounds (but the last) gives each bucket its group's index.
  const bounds = bucketRanges(groups).slice(0, -1).map((range) => range.to);
  const counts = await client.$queryRaw<{ group: number; count: bigint }[]>(Prisma.sql`
    SELECT width_bucket(${splitBucketSql(audience.id, 'c')}, ${bounds}::bigint[]) AS "group", count(*) AS count
    FROM ${rows.from} WHERE ${Prisma.join(rows.conditions, ' AND ')}
    GROUP BY 1`);
  const byGroup = new Map(counts.map((row) => [Number(row.group), Number(row.count)]));
  return groups.map((_group, index) => byGroup.get(index) ?? 0);
}
