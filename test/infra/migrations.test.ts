import pg from 'pg';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { applyMigrations, historyMatchesFolder, readMigrations } from '../../src/infra/migrations.js';
import { createTestDatabase } from '../support/database.js';

// A copy of the run's migrated template: every migration of the folder applied.
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let client: pg.Client;
beforeAll(async () => {
  database = await createTestDatabase();
  client = new pg.Client({ connectionString: database.url });
  await client.connect();
});
afterAll(async () => {
  await client.end();
  await database.drop();
});
// Each test changes the history inside a transaction it rolls back.
beforeEach(async () => {
  await client.query('BEGIN');
  return () => client.query('ROLLBACK');
});

test('a database with every migration of the folder applied needs no engine, and applying again does nothing', async () => {
  expect(await historyMatchesFolder(client, await readMigrations())).toBe(true);
  expect(await applyMigrations(database.url)).toEqual([]);
});

test('a migration missing from the history (pending) goes to the engine', async () => {
  const folder = await readMigrations();
  const newest = folder.migrationDirectories.at(-1)!.path;
  await client.query('DELETE FROM _prisma_migrations WHERE migration_name = $1', [newest]);
  expect(await historyMatchesFolder(client, folder)).toBe(false);
});

test('a migration of the folder edited after it was applied goes to the engine', async () => {
  const folder = await readMigrations();
  const first = folder.migrationDirectories[0]!;
  const edited = {
    ...folder,
    migrationDirectories: [
      { ...first, migrationFile: { ...first.migrationFile, content: { tag: 'ok' as const, value: '-- edited\n' } } },
      ...folder.migrationDirectories.slice(1),
    ],
  };
  expect(await historyMatchesFolder(client, edited)).toBe(false);
});

test('a failed, a rolled-back or an unknown migration in the history goes to the engine', async () => {
  const folder = await readMigrations();
  const newest = folder.migrationDirectories.at(-1)!.path;
  await client.query('UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = $1', [newest]);
  expect(await historyMatchesFolder(client, folder)).toBe(false);

  await client.query('UPDATE _prisma_migrations SET finished_at = now(), rolled_back_at = now() WHERE migration_name = $1', [newest]);
  expect(await historyMatchesFolder(client, folder)).toBe(false);

  await client.query('UPDATE _prisma_migrations SET rolled_back_at = NULL WHERE migration_name = $1', [newest]);
  expect(await historyMatchesFolder(client, folder)).toBe(true);
  await client.query(
    `INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, applied_steps_count)
     VALUES ('unknown', 'x', '20990101000000_not_in_the_folder', now(), 1)`,
  );
  expect(await historyMatchesFolder(client, folder)).toBe(false);
});

test('a database never migrated goes to the engine', async () => {
  await client.query('DROP TABLE _prisma_migrations');
  expect(await historyMatchesFolder(client, await readMigrations())).toBe(false);
});
