import type { ContactIdentity, EncodedIdentifiers } from '../destinations/destination.js';
import { inContactRange, type ContactRange } from '../audiences/audience-members.js';
import { directTransaction, poolCapacity, sqlDirect, type DirectSql } from '../infra/db.js';
import { Prisma } from '../generated/prisma/client.js';
import type { SyncMode } from '../generated/prisma/enums.js';
import { batchesInDoubtOf, contactsInDoubt, inDoubtAmong } from './batches-in-doubt.js';
import { changedSince, takeDiffBasis, type DiffTracking } from './change-tracking.js';

/**
 * A run's diff between what the sync should hold (desired) and what its destination holds
 * (synced_member), computed once per execution of the run into run_diff with set-based joins, then
 * read side by side in key order one page at a time. A resumed run computes it afresh, so it starts
 * from exactly what is still different. Members in doubt (sent by a batch whose answer never came,
 * see batches-in-doubt.ts) count as possibly applied: one still desired is added again (an add in
 * doubt is confirmed by sending it again, a removal in doubt undone), one no longer desired is
 * removed again with the identifiers it was sent with (modes that remove). A sync whose last run
 * applied all of its diff diffs only the contacts changed since, and those in doubt (see
 * change-tracking.ts).
 */

export type DiffAction = 'add' | 'remove' | 'update';

export interface DiffCounts {
  desired: number;
  toAdd: number;
  toRemove: number;
  /** UPSERT: members already synced whose contact changed since; they are re-sent only if their
   * mapped identifiers differ. */
  toUpdate: number;
}

export interface MaterializedDiff extends DiffCounts {
  /** When the diff was taken, as synced_member.synced_at stores it: members committed by this run
   * are recorded as synced at this time, so a contact changed after it is checked again. */
  takenAt: string;
}

export interface RunDiff extends MaterializedDiff {
  /** The snapshot recorded as the sync's basis, to complete once the run applied the whole diff;
   * null when no basis was taken. */
  basis: string | null;
  /** Whether only the contacts changed since the previous basis were diffed. */
  followedChanges: boolean;
}

/** How a diff treats its sync's basis: follows the tracked changes when it can (and takes a new
 * basis), drops it (`null`: a sync whose record moves in ways no basis follows), or leaves it as it
 * is (`keep`: a dry run, which changes nothing). */
export type BasisUse = DiffTracking | null | 'keep';

/** What the sync should hold, as queries. */
export interface DesiredSide {
  /** A query with one `contact_id` column: the desired members whose contact id falls in `range`. */
  membersIn(range: ContactRange): Prisma.Sql;
  /** The same, of the desired member whose contact id is `contactId` (a column of an enclosing
   * query): a lookup by key. */
  memberWithId(contactId: Prisma.Sql): Prisma.Sql;
  /** A cheap query of one row (`first`, `last`): contact ids between which all desired members lie;
   * null when there is none. */
  bounds: Prisma.Sql | null;
}

/**
 * Replaces the run's run_diff rows with its diff: adds (unless REMOVE), removes (MIRROR and REMOVE),
 * and, for UPSERT, update candidates. When the sync's basis allows, only the contacts changed since
 * are diffed, in one transaction. Otherwise the whole audience is: a sync whose record (or, never
 * synced, whose desired side) spans `splitSpan` contact ids or more is diffed in two contact ranges,
 * each in a transaction of its own run at the same time (the diff of each member depends on that
 * member's rows alone, so the halves are independent). `beforeCommit` runs last in each transaction
 * (the engine checks there that the run is still its execution's): a half that commits while the
 * other fails leaves rows that the next execution's diff replaces, and a run that fails clears.
 */
export async function materializeRunDiff(
  run: { id: string; syncId: string; mode: SyncMode },
  desired: DesiredSide,
  splitSpan: bigint,
  basisUse: BasisUse,
  beforeCommit: (sql: DirectSql) => Promise<void> = async () => undefined,
): Promise<RunDiff> {
  // The basis is taken first: every later statement of the diff sees what its snapshot sees.
  const first = await directTransaction(async (sql) => {
    type Basis = { previous: string | null; synced_rows: string | null; taken: string | null };
    const [basis] =
      basisUse === 'keep'
        ? [{ previous: null, synced_rows: null, taken: null }]
        : await sql<Basis>(takeDiffBasis(run.syncId, basisUse));
    const [resolved] = await sql<{ ids: string[] }>(batchesInDoubtOf(run.syncId));
    const inDoubt = resolved!.ids.map(BigInt);
    const changes =
      basis!.previous !== null && basisUse !== 'keep' && basisUse !== null
        ? await diffChanges(
            sql,
            run,
            desired,
            changedSince(basisUse, basis!.previous),
            basis!.synced_rows === null ? null : BigInt(basis!.synced_rows),
            inDoubt,
          )
        : null;
    await beforeCommit(sql);
    return { basis: basis!.taken, inDoubt, changes };
  });
  if (first.changes) return { ...first.changes, basis: first.basis, followedChanges: true };
  const ranges = await diffRanges(run.syncId, splitSpan, desired.bounds);
  const halves = await Promise.all(
    ranges.map((range) =>
      directTransaction(async (sql) => {
        const diff = await diffRange(sql, run, desired.membersIn(range), range, first.inDoubt);
        await beforeCommit(sql);
        return diff;
      }),
    ),
  );
  const whole = halves.reduce((sum, half) => ({
    desired: sum.desired + half.desired,
    toAdd: sum.toAdd + half.toAdd,
    toRemove: sum.toRemove + half.toRemove,
    toUpdate: sum.toUpdate + half.toUpdate,
    // The earliest: a contact changed after either half's start is checked again next time.
    takenAt: sum.takenAt < half.takenAt ? sum.takenAt : half.takenAt,
  }));
  return { ...whole, basis: first.basis, followedChanges: false };
}

/** The whole contact id space, or two halves of the sync's synced_member span when it is large and
 * the pool has connections to spare (never on the embedded database, one session). Bounds come
 * from the primary key's two ends; for a sync never synced, from `desiredBounds` when there are (a
 * first sync's diff is all adds, and it is the run's longest step done alone). */
export async function diffRanges(
  syncId: string,
  splitSpan: bigint,
  desiredBounds: Prisma.Sql | null = null,
): Promise<ContactRange[]> {
  if (poolCapacity() < 2) return [{}];
  type Bounds = { first: string | null; last: string | null };
  let [bounds] = await sqlDirect<Bounds>(Prisma.sql`
    SELECT min(contact_id) AS first, max(contact_id) AS last FROM synced_member WHERE sync_id = ${syncId}::uuid`);
  if (bounds![0]!.first === null && desiredBounds) [bounds] = await sqlDirect<Bounds>(desiredBounds);
  const { first, last } = bounds![0]!;
  if (first === null || last === null || BigInt(last) - BigInt(first) < splitSpan) return [{}];
  const middle = (BigInt(first) + BigInt(last)) / 2n;
  return [{ below: middle }, { from: middle }];
}

/** Selected first in a transaction: its later statements run in one process, starting no parallel
 * workers (which cost more to start than the diff's short statements take). */
const withoutParallelWorkers = Prisma.sql`set_config('max_parallel_workers_per_gather', '0', true)`;

/** How many members the sync's destination holds for certain: its synced_member rows not in doubt.
 * Counted as the diff is taken, in two halves at once on a large sync. */
export async function countSyncedMembers(syncId: string, splitSpan: bigint): Promise<number> {
  const [batches] = await sqlDirect<{ ids: string[] }>(Prisma.sql`
    SELECT COALESCE(array_agg(id), '{}') AS ids FROM batch_in_doubt WHERE sync_id = ${syncId}::uuid`);
  const inDoubt = inDoubtAmong(syncId, batches![0]!.ids.map(BigInt), Prisma.sql`s.contact_id`);
  const counts = await Promise.all(
    (await diffRanges(syncId, splitSpan)).map(async (range) => {
      // Without parallel workers: starting them took 40 ms of a 60 ms count of 200,000 members,
      // which one process counts in 17 ms.
      const [, rows] = await sqlDirect<{ count: string }>(
        Prisma.sql`SELECT ${withoutParallelWorkers}`,
        Prisma.sql`
          SELECT count(*) AS count FROM synced_member s
          WHERE s.sync_id = ${syncId}::uuid AND ${inContactRange(Prisma.sql`s.contact_id`, range)} AND NOT (${inDoubt})`,
      );
      return Number(rows![0]!.count);
    }),
  );
  return counts.reduce((sum, count) => sum + count, 0);
}

/** Which sides of the diff a mode sends. */
function sidesOf(mode: SyncMode): { adds: boolean; removes: boolean } {
  return { adds: mode !== 'REMOVE', removes: mode === 'MIRROR' || mode === 'REMOVE' };
}

type DiffRow = { desired: string; to_add: string; to_remove: string; taken_at: string };

/** What follows an `inserted` CTE of run_diff rows (RETURNING action): the diff's counts, and when it was taken. */
function countsOfInserted(desiredCount: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`
    SELECT ${desiredCount} AS desired,
           count(*) FILTER (WHERE action = 'add') AS to_add,
           count(*) FILTER (WHERE action = 'remove') AS to_remove,
           date_trunc('milliseconds', now()::timestamp)::text AS taken_at
    FROM inserted`;
}

function materialized(row: DiffRow, toUpdate: number): MaterializedDiff {
  return {
    desired: Number(row.desired),
    toAdd: Number(row.to_add),
    toRemove: Number(row.to_remove),
    toUpdate,
    takenAt: row.taken_at,
  };
}

/**
 * The diff of the contacts `changed` yields and of those in doubt, inserted into run_diff in the
 * caller's transaction: each is looked up in the desired side and the record by key. Never UPSERT
 * (see diffTrackingOf), so no update candidates. The desired members are counted, unless
 * `syncedRows` is known: a MIRROR record, once complete, held one row per desired member, so those
 * rows, less the changed contacts' rows, plus the changed contacts desired now, are the members.
 */
async function diffChanges(
  sql: DirectSql,
  run: { id: string; syncId: string; mode: SyncMode },
  desired: DesiredSide,
  changed: Prisma.Sql,
  syncedRows: bigint | null,
  doubt: bigint[],
): Promise<MaterializedDiff> {
  const { adds, removes } = sidesOf(run.mode);
  const candidates = doubt.length > 0 ? Prisma.sql`${changed} UNION ${contactsInDoubt(run.syncId, doubt)}` : changed;
  const desiredCount =
    syncedRows !== null
      ? Prisma.sql`${syncedRows}::bigint - (SELECT count(*) FILTER (WHERE synced) - count(*) FILTER (WHERE desired) FROM looked)`
      : Prisma.sql`(SELECT count(*) FROM (${desired.membersIn({})}) AS d)`;
  await sql(clearRunDiff(run.id));
  const [diff] = await sql<DiffRow>(Prisma.sql`
    WITH looked AS MATERIALIZED (
      SELECT k.contact_id, d.contact_id IS NOT NULL AS desired, s.contact_id IS NOT NULL AS synced
      FROM (SELECT DISTINCT contact_id FROM (${candidates}) AS c) AS k
      LEFT JOIN LATERAL (${desired.memberWithId(Prisma.sql`k.contact_id`)}) AS d ON TRUE
      LEFT JOIN synced_member s ON s.sync_id = ${run.syncId}::uuid AND s.contact_id = k.contact_id),
    inserted AS (
      INSERT INTO run_diff (run_id, action, contact_id)
      SELECT ${run.id}::uuid, CASE WHEN desired THEN 'add' ELSE 'remove' END, contact_id
      FROM looked
      WHERE (desired AND ${adds} AND (NOT synced OR ${inDoubtAmong(run.syncId, doubt, Prisma.sql`looked.contact_id`)}))
         OR (NOT desired AND synced AND ${removes})
      RETURNING action)
    ${countsOfInserted(desiredCount)}`);
  return materialized(diff!, 0);
}

/** The diff of the contacts in `range`, inserted into run_diff in the caller's transaction. */
async function diffRange(
  sql: DirectSql,
  run: { id: string; syncId: string; mode: SyncMode },
  desired: Prisma.Sql,
  range: ContactRange,
  doubt: bigint[],
): Promise<MaterializedDiff> {
  const { adds, removes } = sidesOf(run.mode);
  // Members in doubt are a hashed set the matched members are checked against.
  const matchedInDoubt = inDoubtAmong(run.syncId, doubt, Prisma.sql`s.contact_id`);
  await sql(Prisma.sql`DELETE FROM run_diff WHERE run_id = ${run.id}::uuid AND ${inContactRange(Prisma.sql`contact_id`, range)}`);
  // Room for the joins' sorts and hash tables in memory, instead of spilling to disk in batches.
  await sql(Prisma.sql`SET LOCAL work_mem = '64MB'`);
  // One merge join of both sides in contact order finds the adds and the removes in one pass. It
  // reads synced_member's contact ids from its primary key alone.
  const [diff] = await sql<DiffRow>(Prisma.sql`
    WITH inserted AS (
      INSERT INTO run_diff (run_id, action, contact_id)
      SELECT ${run.id}::uuid, CASE WHEN d.contact_id IS NULL THEN 'remove' ELSE 'add' END,
             COALESCE(d.contact_id, s.contact_id)
      FROM (SELECT contact_id FROM (${desired}) AS q ORDER BY contact_id) AS d
      FULL JOIN (SELECT s.contact_id FROM synced_member s
                 WHERE s.sync_id = ${run.syncId}::uuid AND ${inContactRange(Prisma.sql`s.contact_id`, range)}
                 ORDER BY s.contact_id) AS s
        ON s.contact_id = d.contact_id
      WHERE (d.contact_id IS NOT NULL AND ${adds} AND (s.contact_id IS NULL OR ${matchedInDoubt}))
         OR (d.contact_id IS NULL AND ${removes})
      RETURNING action)
    ${countsOfInserted(Prisma.sql`(SELECT count(*) FROM (${desired}) AS d)`)}`);
  const toUpdate =
    run.mode === 'UPSERT'
      ? (
          await sql<{ count: string }>(Prisma.sql`
            WITH inserted AS (
              INSERT INTO run_diff (run_id, action, contact_id)
              SELECT ${run.id}::uuid, 'update', s.contact_id
              FROM (${desired}) AS d
              JOIN synced_member s ON s.sync_id = ${run.syncId}::uuid AND s.contact_id = d.contact_id
              JOIN contact c ON c.id = d.contact_id
              WHERE c.updated_at > s.synced_at AND NOT (${matchedInDoubt})
              RETURNING 1)
            SELECT count(*) FROM inserted`)
        )[0]!.count
      : 0;
  return materialized(diff!, Number(toUpdate));
}

/** Drops what is left of a run's diff. */
export function clearRunDiff(runId: string): Prisma.Sql {
  return Prisma.sql`DELETE FROM run_diff WHERE run_id = ${runId}::uuid`;
}

/** Drops the part of a side of the diff after contact id `after` up to `through`, once it is done. */
export function clearRunDiffRange(runId: string, action: DiffAction, after: bigint, through: bigint): Prisma.Sql {
  return Prisma.sql`
    DELETE FROM run_diff
    WHERE run_id = ${runId}::uuid AND action = ${action} AND contact_id > ${after} AND contact_id <= ${through}`;
}

/** A contact to send, with its synced_member identifiers: for an update, those the destination last
 * confirmed; for an add, those a batch in doubt sent (null for a member never sent). */
export type DiffContact = ContactIdentity & { synced: EncodedIdentifiers | null };

// Pages are read without Prisma (see sqlDirect): a page is 10,000 rows. Each joined table is bounded
// by the page's start as well: PostgreSQL carries equalities across a join, not ranges, and without
// the bound a merge join scans the contacts from the first one, a page costing more the further it is.

/**
 * How a page joins its tables, chosen from what the diff counted rather than left to the planner:
 * the tables' statistics are those of before the run (run_diff, and on a first sync synced_member,
 * empty), and with them it expects one row, probing each table 10,000 times (30-75 ms a page of a
 * full sync instead of 7), or hashing whole tables, or starting parallel workers for one page.
 * `dense` (a side holding a good share of the members, as in a full sync): merge joins walking each
 * table's index from the page's start. Sparse (a few changes among many members): index probes, as a
 * merge join would walk every contact between two changes.
 * https://www.postgresql.org/docs/current/runtime-config-query.html#RUNTIME-CONFIG-QUERY-ENABLE
 */
export type PagePlan = 'dense' | 'sparse';

function pagePlan(plan: PagePlan): Prisma.Sql {
  const off = plan === 'dense' ? ['enable_nestloop', 'enable_hashjoin', 'enable_sort'] : ['enable_mergejoin', 'enable_hashjoin'];
  return Prisma.sql`SELECT ${withoutParallelWorkers},
                           ${Prisma.join(off.map((setting) => Prisma.sql`set_config(${setting}, 'off', true)`))}`;
}

/** Dense when a side's members are at least a quarter of those it is read among. */
export function pagePlanFor(sideCount: number, amongCount: number): PagePlan {
  return sideCount * 4 >= amongCount ? 'dense' : 'sparse';
}

/** The run's adds or update candidates after contact id `after`, with their contact data. */
export async function readContactsPage(
  run: { id: string; syncId: string },
  action: 'add' | 'update',
  after: bigint,
  limit: number,
  plan: PagePlan,
): Promise<DiffContact[]> {
  // A merge join reads the sync's rows in key order only from a subquery: conditions on the
  // nullable side of an outer join do not make the index's first column a constant for the planner.
  const syncedInOrder = Prisma.sql`(
    SELECT * FROM synced_member WHERE sync_id = ${run.syncId}::uuid AND contact_id > ${after} ORDER BY contact_id OFFSET 0)`;
  const [, rows] = await sqlDirect<Omit<DiffContact, 'id'> & { id: string }>(pagePlan(plan), Prisma.sql`
    SELECT c.id, c.email, c.phone, c.first_name AS "firstName", c.last_name AS "lastName", c.country, c.zip,
           c.external_id AS "externalId", c.mobile_ad_id AS "mobileAdId", s.identifiers AS synced
    FROM run_diff r
    JOIN contact c ON c.id = r.contact_id AND c.id > ${after}
    LEFT JOIN ${plan === 'dense' ? syncedInOrder : Prisma.sql`synced_member`} s
      ON s.sync_id = ${run.syncId}::uuid AND s.contact_id = r.contact_id AND s.contact_id > ${after}
    WHERE r.run_id = ${run.id}::uuid AND r.action = ${action} AND r.contact_id > ${after}
    ORDER BY r.contact_id
    LIMIT ${limit}`);
  // Each row's id is made a bigint in place: a page's rows are not copied (10,000 objects fewer to collect).
  const contacts = rows as unknown as DiffContact[];
  for (const row of rows!) (row as unknown as DiffContact).id = BigInt(row.id);
  return contacts;
}

export interface SyncedRow {
  contactId: bigint;
  identifiers: EncodedIdentifiers;
}

/** The run's removes after contact id `after`, with the identifiers the destination holds. */
export async function readRemovesPage(
  run: { id: string; syncId: string },
  after: bigint,
  limit: number,
  plan: PagePlan,
): Promise<SyncedRow[]> {
  const [, rows] = await sqlDirect<{ contactId: string; identifiers: EncodedIdentifiers }>(pagePlan(plan), Prisma.sql`
    SELECT s.contact_id AS "contactId", s.identifiers
    FROM run_diff r
    JOIN synced_member s ON s.sync_id = ${run.syncId}::uuid AND s.contact_id = r.contact_id AND s.contact_id > ${after}
    WHERE r.run_id = ${run.id}::uuid AND r.action = 'remove' AND r.contact_id > ${after}
    ORDER BY r.contact_id
    LIMIT ${limit}`);
  const synced = rows as unknown as SyncedRow[];
  for (const row of rows!) (row as unknown as SyncedRow).contactId = BigInt(row.contactId);
  return synced;
}
