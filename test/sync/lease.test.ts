import { expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { hashedEmails, heldEmails } from '../support/scenario.js';
import { runSync, usersRequests } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

// A 2 s lease, and throttling pauses (Meta's Retry-After of 1 s, four times) far longer than it.
const suite = useGatewaySuite({ reset: true, settings: { RUN_LEASE_SECONDS: '2', PLATFORM_RETRIES: '5' } });

test('a run paused by the platform longer than its lease keeps its lease: it is executed once, not resumed beside itself', async () => {
  const emails = ['ada@example.com', 'grace@example.com'];
  const { fake, sync } = await suite.metaSyncScenario(emails);
  fake.failNext('http-429', 4, (request) => request.url.endsWith('/users'));
  // The running run's lease, as seen every 250 ms: how far ahead of the moment it was read.
  const leaseAheadMs: number[] = [];
  const sampler = setInterval(() => {
    const readAt = Date.now();
    void db()
      .syncRun.findFirst({ where: { status: 'RUNNING' }, select: { leaseExpiresAt: true } })
      .then((running) => running && leaseAheadMs.push((running.leaseExpiresAt?.getTime() ?? 0) - readAt));
  }, 250);

  const { run } = await runSync(suite.gateway, sync.id);
  clearInterval(sampler);

  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 2 });
  expect(run.waitedSeconds).toBeGreaterThanOrEqual(4);
  // Four refused attempts and one accepted: no second execution sent the batch again.
  expect(usersRequests(fake.requests)).toHaveLength(5);
  expect(heldEmails(fake)).toEqual(hashedEmails(emails));
  expect(leaseAheadMs.length).toBeGreaterThan(10);
  expect(Math.min(...leaseAheadMs)).toBeGreaterThan(0);
});
