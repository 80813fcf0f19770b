import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/** The server the tests use; `postgresql://postgres@127.0.0.1:5432/postgres` unless TEST_DATABASE_URL says otherwise. */
export const SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** Test databases are named `asg_test_<pid of the process that made it>_<suffix>`, so leftovers of
 * dead runs can be told apart from those of a run still going. */
export function testDatabaseName(suffix: string): string {
  return `asg_test_${process.pid}_${suffix}`;
}

export function databaseUrl(name: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function withServer<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A fresh database for one test file, copied from the run's migrated template (no migrations to run). */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = testDatabaseName(randomBytes(4).toString('hex'));
  await withServer((client) => client.query(`CREATE DATABASE ${name} TEMPLATE ${inject('templateDatabase')}`));
  return {
    url: databaseUrl(name),
    drop: async () => {
      await withServer((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}
