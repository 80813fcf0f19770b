import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startFakeMeta } from '../fakes/meta-server.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { AddAudienceMembers, AudienceSyncRunUpdated } from '../support/operations.js';
import { runEntryPoint, type RunningProcess } from '../support/process.js';
import {
  META_TOKEN,
  createAudienceWith,
  createMetaDestination,
  createSync,
  dataOf,
  expectType,
  hashedEmails,
  heldEmails,
} from '../support/scenario.js';

// Two gateways and one worker, as separate roles sharing PostgreSQL and Redis: gateway A runs in
// this process, gateway B and the worker are real processes.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECRETS_KEY = randomBytes(32).toString('base64');

let gatewayA: TestGateway;
let gatewayB: RunningProcess;
let worker: RunningProcess;
let gatewayBUrl: string;
let dataDir: string;

beforeAll(async () => {
  gatewayA = await startTestGateway({ ROLES: 'gateway', REDIS_URL, SECRETS_KEY });
  dataDir = await mkdtemp(join(tmpdir(), 'asg-scale-out-'));
  const shared = { DATABASE_URL: gatewayA.databaseUrl, REDIS_URL, SECRETS_KEY, PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info' };
  gatewayB = runEntryPoint('src/server.ts', { ...shared, ROLES: 'gateway' });
  worker = runEntryPoint('src/worker.ts', { ...shared, JOB_POLL_INTERVAL_MS: '200' });
  gatewayBUrl = (JSON.parse(await gatewayB.waitFor(/Gateway listening/, 60_000)) as { url: string }).url;
  await worker.waitFor(/Worker listening/, 60_000);
}, 120_000);

afterAll(async () => {
  expect(await gatewayB.stop('SIGTERM')).toBe(0);
  expect(await worker.stop('SIGTERM')).toBe(0);
  await gatewayA.stop();
  await rm(dataDir, { recursive: true, force: true });
});

test('a subscriber on gateway A follows, live, a run triggered through gateway B and executed by the worker', async () => {
  const fake = await startFakeMeta({ accessToken: META_TOKEN });
  const destination = await createMetaDestination(gatewayA, fake);
  const audience = await createAudienceWith(gatewayA, []);
  const emails = Array.from({ length: 12_000 }, (_, i) => `reader${i}@example.com`);
  for (let start = 0; start < emails.length; start += 6_000) {
    const members = emails.slice(start, start + 6_000).map((email) => ({ email }));
    expectType(
      dataOf(await gatewayA.execute(AddAudienceMembers, { audienceId: audience.id, members })).addAudienceMembers,
      'AddAudienceMembersSuccess',
    );
  }
  const sync = await createSync(gatewayA, { audienceId: audience.id, destinationId: destination.id });
  const events = await gatewayA.subscribeOverWebSocket(AudienceSyncRunUpdated, { syncId: sync.id });

  const triggered = await fetch(gatewayBUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${gatewayA.apiKey}` },
    body: JSON.stringify({
      query: 'mutation ($id: ID!) { triggerAudienceSync(id: $id) { __typename } }',
      variables: { id: sync.id },
    }),
  });
  expect(await triggered.json()).toEqual({ data: { triggerAudienceSync: { __typename: 'TriggerAudienceSyncSuccess' } } });

  const seen: { status: string; progress: number; membersAdded: number }[] = [];
  for await (const { data, errors } of events) {
    expect(errors).toBeUndefined();
    seen.push(data!.audienceSyncRunUpdated);
    if (['SUCCEEDED', 'FAILED'].includes(data!.audienceSyncRunUpdated.status)) break;
  }
  expect(seen[0]!.status).toBe('QUEUED');
  expect(seen.some((run) => run.status === 'RUNNING' && run.progress > 0 && run.progress < 1)).toBe(true);
  expect(seen.at(-1)).toMatchObject({ status: 'SUCCEEDED', progress: 1, membersAdded: 12_000 });
  expect(heldEmails(fake)).toEqual(hashedEmails(emails));
  expect(worker.output()).toContain('Sync run finished');
  await fake.close();
}, 120_000);
