import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { applyMigrations } from '../../src/infra/migrations.js';
import { databaseUrl, testDatabaseName, withServer } from './database.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Compiles src/ into build/ with `npm start`'s pre-script, for the tests that run the app as a process
 * (test/support/process.ts): plain node starts it in half the time (and CPU) tsx takes. Then migrates one
 * template database per test run; each test file copies it. Databases left behind by runs whose process
 * is gone are dropped first. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  execFileSync(process.execPath, ['scripts/build-server.mjs'], { cwd: fileURLToPath(new URL('../../', import.meta.url)) });
  const template = testDatabaseName('template');
  await withServer(async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE 'asg\\_test\\_%'`,
    );
    for (const { datname } of rows) {
      const pid = Number(datname.split('_')[2]);
      if (!isAlive(pid)) await client.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
    }
    await client.query(`CREATE DATABASE ${template}`);
  });
  await applyMigrations(databaseUrl(template));
  project.provide('templateDatabase', template);
  return async () => {
    await withServer((client) => client.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`));
  };
}
