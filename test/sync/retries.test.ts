import { expect, test } from 'vitest';
import { hashedEmails, heldEmails } from '../support/scenario.js';
import { runSync, usersRequests } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

// The test gateway retries 3 times, backing off from 20 ms (PLATFORM_RETRIES, PLATFORM_RETRY_MIN_MS).
const suite = useGatewaySuite({ reset: true });

const EMAILS = ['ada@example.com', 'grace@example.com', 'linus@example.org'];

test('HTTP 429 with Retry-After: the run waits as long as Meta asks, retries, and records the wait', async () => {
  const { fake, sync } = await suite.metaSyncScenario(EMAILS);
  fake.failNext('http-429', 2, (request) => request.url.endsWith('/users'));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3 });
  // Two pauses of at least the 1 s Meta asked for.
  expect(run.waitedSeconds).toBeGreaterThanOrEqual(2);
  expect(run.waitedSeconds).toBeLessThan(10);
  expect(usersRequests(fake.requests)).toHaveLength(3);
  expect(heldEmails(fake)).toEqual(hashedEmails(EMAILS));
});

test('transient 5xx errors are retried with backoff, and the batch is applied once', async () => {
  const { fake, sync } = await suite.metaSyncScenario(EMAILS);
  fake.failNext('server-error', 2, (request) => request.url.endsWith('/users'));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run, run.errorMessage ?? '').toMatchObject({ status: 'SUCCEEDED', membersAdded: 3, membersInvalid: 0 });
  expect(run.waitedSeconds).toBeGreaterThan(0);
  expect(heldEmails(fake)).toEqual(hashedEmails(EMAILS));
  expect((await runSync(suite.gateway, sync.id)).run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 0 });
});

test('when transient errors outlast the retries the run fails, saying it was temporary, and the next run converges', async () => {
  const { fake, sync } = await suite.metaSyncScenario(EMAILS);
  fake.failNext('server-error', 4, (request) => request.url.endsWith('/users'));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run.status).toBe('FAILED');
  expect(run.errorMessage).toMatch(/temporary problem/);
  expect(run.errorDetails).toMatchObject({ platform: 'META', status: 500, retryable: true });
  expect(usersRequests(fake.requests)).toHaveLength(4);

  expect((await runSync(suite.gateway, sync.id)).run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3 });
  expect(heldEmails(fake)).toEqual(hashedEmails(EMAILS));
});

test('an expired token is not retried', async () => {
  const { fake, sync } = await suite.metaSyncScenario(EMAILS);
  fake.failNext('token-expired', 1, (request) => request.url.endsWith('/users'));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run.status).toBe('FAILED');
  expect(run.waitedSeconds).toBe(0);
  expect(usersRequests(fake.requests)).toHaveLength(1);
});
