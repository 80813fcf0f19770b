import { randomBytes } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { db } from '../../src/db.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { waitForTaskEnd } from '../support/member-tasks.js';
import { SyncAudiences } from '../support/operations.js';
import { runEntryPoint } from '../support/process.js';
import { dataOf, expectType, sha256 } from '../support/scenario.js';

// The API runs here as a gateway only; the task runs in worker processes that the test starts and kills.
const SECRETS_KEY = randomBytes(32).toString('base64');
const LEASE_SECONDS = '3';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startTestGateway({ ROLES: 'gateway', SECRETS_KEY, RUN_LEASE_SECONDS: LEASE_SECONDS });
});
afterAll(async () => {
  await gateway.stop();
});

function startWorker() {
  return runEntryPoint('src/worker.ts', {
    DATABASE_URL: gateway.databaseUrl,
    SECRETS_KEY,
    PORT: '0',
    RUN_LEASE_SECONDS: LEASE_SECONDS,
    JOB_POLL_INTERVAL_MS: '200',
    LOG_LEVEL: 'info',
  });
}

test('a worker killed mid-task: another resumes it after its last committed batch, and the members and counts end exact', async () => {
  const members = 60_000;
  const add = Array.from({ length: members }, (_, i) => ({ externalId: `m${i}`, hashedEmail: sha256(`m${i}@example.com`) }));
  const accepted = expectType(
    dataOf(await gateway.execute(SyncAudiences, { input: { audiences: [{ audienceId: 'big', add }] } })).syncAudiences,
    'SyncAudiencesSuccess',
  ).task;
  const taskId = decodeGlobalID(accepted.id).id;

  const doomed = startWorker();
  const deadline = Date.now() + 30_000;
  let processed = 0;
  while (processed < 5_000 && Date.now() < deadline) {
    processed = (await db().task.findUniqueOrThrow({ where: { id: taskId } })).processed;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(await doomed.stop('SIGKILL')).toBeNull();

  const interrupted = await db().task.findUniqueOrThrow({ where: { id: taskId } });
  expect(interrupted).toMatchObject({ status: 'RUNNING', total: members });
  expect(interrupted.processed).toBeGreaterThanOrEqual(5_000);
  expect(interrupted.processed).toBeLessThan(members);
  // What was committed is exactly what the checkpoint says.
  const audience = await db().audience.findFirstOrThrow({ where: { externalId: 'big' } });
  expect(await db().audienceMember.count({ where: { audienceId: audience.id } })).toBe(interrupted.processed);

  const rescuer = startWorker();
  try {
    const task = await waitForTaskEnd(gateway, accepted.id, { timeoutMs: 60_000 });

    expect(task).toMatchObject({ status: 'COMPLETED', processed: members, total: members, progress: 1 });
    expect(task.result).toMatchObject({ audiences: [{ audienceId: 'big', created: true, added: members, removed: 0 }] });
    expect(await db().audienceMember.count({ where: { audienceId: audience.id } })).toBe(members);
  } finally {
    await rescuer.stop();
  }
}, 120_000);
