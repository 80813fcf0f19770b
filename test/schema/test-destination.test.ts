import { expect, test } from 'vitest';
import { CreateDestination, TestDestination } from '../support/operations.js';
import { META_TOKEN, createMetaDestination, dataOf, expectType } from '../support/scenario.js';
import { useGatewaySuite } from '../support/suite.js';

const suite = useGatewaySuite({ reset: true });

async function check(id: string) {
  const result = dataOf(await suite.gateway.execute(TestDestination, { id }));
  return expectType(result.testDestination, 'TestDestinationSuccess');
}

test('a destination with working credentials and an active ad account passes, and nothing is written to Meta', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const outcome = await check(destination.id);
  expect(outcome).toMatchObject({ ok: true, retryable: false, destination: { id: destination.id } });
  expect(outcome.message).toContain('act_1234567890');
  expect(fake.requests.map((request) => request.method)).toEqual(['GET']);
  expect(fake.audiences.size).toBe(0);
});

test.each([
  ['token-expired', /access token.*reconnect/i, false],
  ['permission-denied', /permission/i, false],
  ['server-error', /temporary problem/i, true],
] as const)('%s: the check fails with what to fix', async (failure, message, retryable) => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  fake.failNext(failure);
  const outcome = await check(destination.id);
  expect(outcome).toMatchObject({ ok: false, retryable });
  expect(outcome.message).toMatch(message);
  expect(outcome.message).not.toContain(META_TOKEN);
});

test('a disabled ad account fails the check', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  fake.adAccount.status = 2;
  const outcome = await check(destination.id);
  expect(outcome.ok).toBe(false);
  expect(outcome.message).toMatch(/not active/);
});

test('an unreachable Meta fails the check as temporary', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  await fake.close();
  expect(await check(destination.id)).toMatchObject({ ok: false, retryable: true });
});

test('a destination without credentials says to add them', async () => {
  const created = dataOf(
    await suite.gateway.execute(CreateDestination, {
      input: { name: 'No token yet', config: { meta: { adAccountId: 'act_1' } } },
    }),
  );
  const destination = expectType(created.createDestination, 'CreateDestinationSuccess').destination;
  const outcome = await check(destination.id);
  expect(outcome).toMatchObject({ ok: false, retryable: false });
  expect(outcome.message).toMatch(/no credentials/);
});

test('another workspace’s destination is not found', async () => {
  const fake = await suite.fakeMeta();
  const other = await suite.gateway.createWorkspace();
  const foreign = await createMetaDestination(suite.gateway, fake, other.apiKey);
  const result = dataOf(await suite.gateway.execute(TestDestination, { id: foreign.id }));
  expect(expectType(result.testDestination, 'NotFoundError').code).toBe('NOT_FOUND');
  expect(fake.requests).toEqual([]);
});
