import { db } from '../../src/infra/db.js';

// What the gateway has recorded of a sync's destination: members confirmed there, and members in doubt
// (sent by a batch whose answer it never heard, see src/sync/batches-in-doubt.ts).

export interface SyncedState {
  /** Contact ids the destination confirmed holding. */
  confirmed: bigint[];
  /** Contact ids in doubt, with what their batch did. */
  inDoubt: { contactId: bigint; action: string }[];
}

export async function syncedState(syncUuid: string): Promise<SyncedState> {
  const rows = await db().$queryRaw<{ contact_id: bigint; action: string | null }[]>`
    SELECT s.contact_id, b.action
    FROM synced_member s LEFT JOIN batch_in_doubt b ON b.id = s.batch_id
    WHERE s.sync_id = ${syncUuid}::uuid
    ORDER BY s.contact_id`;
  return {
    confirmed: rows.filter((row) => row.action === null).map((row) => row.contact_id),
    inDoubt: rows.flatMap((row) => (row.action === null ? [] : [{ contactId: row.contact_id, action: row.action }])),
  };
}

/** How many members the destination confirmed holding. */
export async function confirmedCount(syncUuid: string): Promise<number> {
  return (await syncedState(syncUuid)).confirmed.length;
}
