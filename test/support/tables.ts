import { expect } from 'vitest';
import { db } from '../../src/infra/db.js';

/** The tables a refused request must leave alone (api_key is left out: authentication touches
 * `last_used_at`). */
const DATA_TABLES = [
  'destination',
  'audience',
  'contact',
  'audience_member',
  'audience_sync',
  'audience_sync_suppression',
  'sync_run',
  'task',
  'task_payload',
  'agenda_jobs',
] as const;
type DataTable = (typeof DATA_TABLES)[number];

/** The app's own recurring jobs (Agenda's `single` jobs) update themselves as they run. */
const ROWS_OF: Partial<Record<DataTable, string>> = {
  agenda_jobs: "(SELECT * FROM agenda_jobs WHERE type <> 'single')",
};

/** Each table's row count and a digest of its contents: two equal snapshots mean nothing was
 * inserted, updated or deleted in between. */
export async function snapshotTables(): Promise<Record<DataTable, { rows: number; digest: string | null }>> {
  const columns = DATA_TABLES.map(
    (table) =>
      `(SELECT json_build_object('rows', count(*), 'digest', md5(string_agg(t::text, '|' ORDER BY t::text))) FROM ${ROWS_OF[table] ?? table} t) AS ${table}`,
  );
  const [row] = await db().$queryRawUnsafe<Record<DataTable, { rows: number; digest: string | null }>[]>(
    `SELECT ${columns.join(', ')}`,
  );
  return row!;
}

/** Runs `request` and checks it wrote nothing; returns what it returned. */
export async function expectNothingWritten<T>(request: () => Promise<T>): Promise<T> {
  const before = await snapshotTables();
  const result = await request();
  expect(await snapshotTables()).toEqual(before);
  return result;
}
