import { decodeGlobalID } from '@pothos/plugin-relay';
import { expect, test } from 'vitest';
import { runMemberTask } from '../../src/workflows/member-tasks.js';
import { db } from '../../src/infra/db.js';
import { DEFAULT_RETRY_POLICY } from '../../src/infra/retry-policy.js';
import { waitForTaskEnd } from '../support/member-tasks.js';
import { SyncAudiences } from '../support/operations.js';
import { dataOf, expectType, sha256 } from '../support/scenario.js';
import { waitFor } from '../support/wait.js';
import { useWorkerProcessSuite } from '../support/worker-processes.js';

// The API runs here as a gateway only; the task runs in worker processes that the test starts and kills.
const suite = useWorkerProcessSuite();

test('a worker killed mid-task: another resumes it after its last committed batch, and the members and counts end exact', async () => {
  const gateway = suite.gateway;
  const members = 60_000;
  const add = Array.from({ length: members }, (_, i) => ({ externalId: `m${i}`, hashedEmail: sha256(`m${i}@example.com`) }));
  const accepted = expectType(
    dataOf(await gateway.execute(SyncAudiences, { input: { audiences: [{ audienceId: 'big', add }] } })).syncAudiences,
    'SyncAudiencesSuccess',
  ).task;
  const taskId = decodeGlobalID(accepted.id).id;

  const doomed = suite.startWorker();
  const readTask = () => db().task.findUniqueOrThrow({ where: { id: taskId } });
  await waitFor(readTask, (task) => task.processed >= 5_000, { what: 'the first batches', timeoutMs: 30_000, intervalMs: 20 });
  expect(await doomed.stop('SIGKILL')).toBeNull();

  const interrupted = await readTask();
  expect(interrupted).toMatchObject({ status: 'RUNNING', error: null, total: members });
  expect(interrupted.processed).toBeGreaterThanOrEqual(5_000);
  expect(interrupted.processed).toBeLessThan(members);
  // What was committed is exactly what the checkpoint says.
  const audience = await db().audience.findFirstOrThrow({ where: { externalId: 'big' } });
  expect(await db().audienceMember.count({ where: { audienceId: audience.id } })).toBe(interrupted.processed);

  const rescuer = suite.startWorker();
  try {
    const task = await waitForTaskEnd(gateway, accepted.id, { timeoutMs: 60_000 });

    expect(task).toMatchObject({ status: 'COMPLETED', processed: members, total: members, progress: 1 });
    expect(task.result).toMatchObject({ audiences: [{ audienceId: 'big', created: true, added: members, removed: 0 }] });
    expect(await db().audienceMember.count({ where: { audienceId: audience.id } })).toBe(members);
  } finally {
    await rescuer.stop();
  }
}, 120_000);

test('two executions of one task at once (an at-least-once job handed out twice): each step applies once, counts exact', async () => {
  const members = 20_000;
  const add = Array.from({ length: members }, (_, i) => ({ externalId: `t${i}`, hashedEmail: sha256(`t${i}@example.com`) }));
  const accepted = expectType(
    dataOf(await suite.gateway.execute(SyncAudiences, { input: { audiences: [{ audienceId: 'twice', add }] } })).syncAudiences,
    'SyncAudiencesSuccess',
  ).task;
  const taskId = decodeGlobalID(accepted.id).id;

  // No worker runs here: the test is both executions.
  const outcomes = await Promise.all([
    runMemberTask(taskId, { notifyRetry: DEFAULT_RETRY_POLICY }),
    runMemberTask(taskId, { notifyRetry: DEFAULT_RETRY_POLICY }),
  ]);

  expect(outcomes).toEqual(['done', 'done']);
  const task = await db().task.findUniqueOrThrow({ where: { id: taskId } });
  expect(task).toMatchObject({ status: 'COMPLETED', error: null, processed: members, total: members });
  expect(task.result).toMatchObject({ audiences: [{ audienceId: 'twice', added: members, removed: 0 }] });
  const audience = await db().audience.findFirstOrThrow({ where: { externalId: 'twice' } });
  expect(await db().audienceMember.count({ where: { audienceId: audience.id } })).toBe(members);
});
