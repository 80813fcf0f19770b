import { expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { hashedEmails, heldEmails } from '../support/scenario.js';
import { useGatewaySuite } from '../support/suite.js';
import { runSync } from '../support/sync-runs.js';
import { waitFor } from '../support/wait.js';

const suite = useGatewaySuite();

/** The connections of this test's database that last ran a LISTEN: Agenda's job notifications. */
const listeners = () =>
  db().$queryRaw<{ pid: number }[]>`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`;

test('when the server drops the job-notification connection, the worker lives on, listens again, and runs still start', async () => {
  const before = await waitFor(listeners, (rows) => rows.length > 0, { what: 'a LISTEN connection' });

  await db().$queryRaw`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(${before.map((row) => row.pid)})`;

  const after = await waitFor(listeners, (rows) => rows.length > 0 && rows.every((row) => !before.some((old) => old.pid === row.pid)), {
    what: 'a new LISTEN connection',
    timeoutMs: 20_000,
  });
  expect(after.length).toBeGreaterThan(0);
  const emails = ['ada@example.com', 'grace@example.com'];
  const { fake, sync } = await suite.metaSyncScenario(emails);
  expect((await runSync(suite.gateway, sync.id)).run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 2 });
  expect(heldEmails(fake)).toEqual(hashedEmails(emails));
}, 60_000);
