import type { ContactIdentity, EncodedIdentifiers } from '../destinations/destination.js';
import { sqlDirect } from '../infra/db.js';
import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import type { SyncMode } from '../generated/prisma/enums.js';
import { batchesInDoubtOf, contactsInDoubt } from './batches-in-doubt.js';

/**
 * A run's diff between what the sync should hold (desired) and what its destination holds
 * (synced_member), computed once per execution of the run into run_diff with set-based joins, then
 * read side by side in key order one page at a time. A resumed run computes it afresh, so it starts
 * from exactly what is still different. Members in doubt (sent by a batch whose answer never came,
 * see batches-in-doubt.ts) count as possibly applied: one still desired is added again (an add in
 * doubt is confirmed by sending it again, a removal in doubt undone), one no longer desired is
 * removed again with the identifiers it was sent with (modes that remove).
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

/**
 * Replaces the run's run_diff rows with its diff: adds (unless REMOVE), removes (MIRROR and REMOVE),
 * and, for UPSERT, update candidates. `desired` is a query with one `contact_id` column. `beforeCommit`
 * runs last in the transaction (the engine checks there that the run is still its execution's).
 */
export async function materializeRunDiff(
  prisma: PrismaClient,
  run: { id: string; syncId: string; mode: SyncMode },
  desired: Prisma.Sql,
  beforeCommit: (tx: Prisma.TransactionClient) => Promise<void> = async () => undefined,
): Promise<MaterializedDiff> {
  const adds = run.mode !== 'REMOVE';
  const removes = run.mode === 'MIRROR' || run.mode === 'REMOVE';
  return prisma.$transaction(
    async (tx) => {
      await tx.$executeRaw`DELETE FROM run_diff WHERE run_id = ${run.id}::uuid`;
      const [{ ids: doubt }] = (await tx.$queryRaw<{ ids: bigint[] }[]>(batchesInDoubtOf(run.syncId))) as [{ ids: bigint[] }];
      // Room for the joins' sorts and hash tables in memory, instead of spilling to disk in batches.
      await tx.$executeRaw`SET LOCAL work_mem = '64MB'`;
      // One merge join of both sides in contact order finds the adds and the removes in one pass. It
      // reads synced_member's contact ids from its primary key alone; the few members in doubt are
      // a hashed set the matched members are checked against.
      const [diff] = await tx.$queryRaw<{ desired: bigint; to_add: bigint; to_remove: bigint; taken_at: string }[]>`
        WITH inserted AS (
          INSERT INTO run_diff (run_id, action, contact_id)
          SELECT ${run.id}::uuid, CASE WHEN d.contact_id IS NULL THEN 'remove' ELSE 'add' END,
                 COALESCE(d.contact_id, s.contact_id)
          FROM (SELECT contact_id FROM (${desired}) AS q ORDER BY contact_id) AS d
          FULL JOIN (SELECT s.contact_id FROM synced_member s WHERE s.sync_id = ${run.syncId}::uuid ORDER BY s.contact_id) AS s
            ON s.contact_id = d.contact_id
          WHERE (d.contact_id IS NOT NULL AND ${adds}
                 AND (s.contact_id IS NULL OR s.contact_id IN (${contactsInDoubt(run.syncId, doubt)})))
             OR (d.contact_id IS NULL AND ${removes})
          RETURNING action)
        SELECT (SELECT count(*) FROM (${desired}) AS d) AS desired,
               count(*) FILTER (WHERE action = 'add') AS to_add,
               count(*) FILTER (WHERE action = 'remove') AS to_remove,
               date_trunc('milliseconds', now()::timestamp)::text AS taken_at
        FROM inserted`;
      const toUpdate =
        run.mode === 'UPSERT'
          ? await tx.$executeRaw`
              INSERT INTO run_diff (run_id, action, contact_id)
              SELECT ${run.id}::uuid, 'update', s.contact_id
              FROM (${desired}) AS d
              JOIN synced_member s ON s.sync_id = ${run.syncId}::uuid AND s.contact_id = d.contact_id
              JOIN contact c ON c.id = d.contact_id
              WHERE c.updated_at > s.synced_at AND s.contact_id NOT IN (${contactsInDoubt(run.syncId, doubt)})`
          : 0;
      await beforeCommit(tx);
      return {
        desired: Number(diff!.desired),
        toAdd: Number(diff!.to_add),
        toRemove: Number(diff!.to_remove),
        toUpdate,
        takenAt: diff!.taken_at,
      };
    },
    // Large audiences take a while to diff; the run's lease is far longer than this anyway.
    { timeout: 10 * 60_000 },
  );
}

/** Drops what is left of a run's diff. */
export function clearRunDiff(prisma: Prisma.TransactionClient, runId: string) {
  return prisma.$executeRaw`DELETE FROM run_diff WHERE run_id = ${runId}::uuid`;
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

/** The run's adds or update candidates after contact id `after`, with their contact data. */
export async function readContactsPage(
  run: { id: string; syncId: string },
  action: 'add' | 'update',
  after: bigint,
  limit: number,
): Promise<DiffContact[]> {
  const [rows] = await sqlDirect<Omit<DiffContact, 'id'> & { id: string }>(Prisma.sql`
    SELECT c.id, c.email, c.phone, c.first_name AS "firstName", c.last_name AS "lastName", c.country, c.zip,
           c.external_id AS "externalId", c.mobile_ad_id AS "mobileAdId", s.identifiers AS synced
    FROM run_diff r
    JOIN contact c ON c.id = r.contact_id AND c.id > ${after}
    LEFT JOIN synced_member s ON s.sync_id = ${run.syncId}::uuid AND s.contact_id = r.contact_id AND s.contact_id > ${after}
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
export async function readRemovesPage(run: { id: string; syncId: string }, after: bigint, limit: number): Promise<SyncedRow[]> {
  const [rows] = await sqlDirect<{ contactId: string; identifiers: EncodedIdentifiers }>(Prisma.sql`
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
