import { decodeGlobalID } from '@pothos/plugin-relay';
import { expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { startFakeMeta } from '../fakes/meta-server.js';
import { AddAudienceMembers, RemoveAudienceMembers } from '../support/operations.js';
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
import { readRun, triggerSync, waitForRunEnd } from '../support/sync-runs.js';
import { waitFor } from '../support/wait.js';
import { syncedState } from '../support/synced-state.js';
import { useWorkerProcessSuite } from '../support/worker-processes.js';

// The API runs here as a gateway only; sync runs happen in worker processes that the test starts and kills.
const suite = useWorkerProcessSuite({ PLATFORM_RETRY_MIN_MS: '20' });

test('a worker killed mid-run: another resumes the run on a fresh diff, and the destination and the counts end exact', async () => {
  const gateway = suite.gateway;
  const fake = await startFakeMeta({ accessToken: META_TOKEN });
  const destination = await createMetaDestination(gateway, fake);
  const audience = await createAudienceWith(gateway, []);
  const emails = Array.from({ length: 25_000 }, (_, i) => `person${i}@example.com`);
  for (let start = 0; start < emails.length; start += 5_000) {
    const members = emails.slice(start, start + 5_000).map((email) => ({ email }));
    expectType(
      dataOf(await gateway.execute(AddAudienceMembers, { audienceId: audience.id, members })).addAudienceMembers,
      'AddAudienceMembersSuccess',
    );
  }
  const sync = await createSync(gateway, { audienceId: audience.id, destinationId: destination.id });

  // Meta creates the audience and takes the first batch of 10,000; the second batch is held.
  const gate = fake.hold({ after: 2 });
  const doomed = suite.startWorker();
  const { syncRun } = await triggerSync(gateway, sync.id);
  await gate.waiting;
  // The first batch's commit runs while the second is sent: let it land, then kill the worker.
  await waitFor(() => readRun(gateway, syncRun.id), (run) => run.membersAdded >= 10_000, { what: "the first batch's commit" });
  expect(await doomed.stop('SIGKILL')).toBeNull();
  // Meta applies the held batch, but the worker that sent it is gone: its answer is lost.
  gate.release();

  expect(await readRun(gateway, syncRun.id)).toMatchObject({ status: 'RUNNING', membersAdded: 10_000 });
  // The dead worker's diff is still there, minus the batch it committed.
  const runId = decodeGlobalID(syncRun.id).id;
  expect(await db().runDiff.count({ where: { runId } })).toBe(15_000);

  // While the run waits to be resumed, members it had not sent yet leave and others join: the
  // resumed run works from the audience as it is then, not from the dead worker's diff.
  const leaving = emails.slice(24_990, 24_995);
  const joining = ['late0@example.com', 'late1@example.com', 'late2@example.com'];
  expectType(
    dataOf(await gateway.execute(RemoveAudienceMembers, { audienceId: audience.id, members: leaving.map((email) => ({ email })) }))
      .removeAudienceMembers,
    'RemoveAudienceMembersSuccess',
  );
  expectType(
    dataOf(await gateway.execute(AddAudienceMembers, { audienceId: audience.id, members: joining.map((email) => ({ email })) }))
      .addAudienceMembers,
    'AddAudienceMembersSuccess',
  );
  const expected = [...emails.filter((email) => !leaving.includes(email)), ...joining];

  const rescuer = suite.startWorker();
  try {
    const run = await waitForRunEnd(gateway, syncRun.id, 60_000);
    expect(run, `${run.errorMessage}\n${rescuer.output()}`).toMatchObject({ status: 'SUCCEEDED', membersAdded: 24_998, membersInvalid: 0, progress: 1 });
    expect(heldEmails(fake)).toEqual(hashedEmails(expected));
    expect(await db().syncedMember.count({ where: { syncId: decodeGlobalID(sync.id).id } })).toBe(24_998);
    expect(await db().runDiff.count({ where: { runId } })).toBe(0);
    // The batch Meta applied without our hearing was sent again: adding is idempotent on Meta.
    // (A retry within an execution, on a busy machine, resends the same body: not another batch.)
    const uploads = fake.requests.filter((request) => request.url.endsWith('/users'));
    const adds = new Set(uploads.filter((request) => request.method === 'POST').map((request) => JSON.stringify(request.body)));
    expect(adds.size).toBe(4);
    // The last batch is recorded in doubt while the one before it is sent, so it may have been before
    // the kill: then its members who left count as possibly added, and are removed. Nobody else is.
    const removed = uploads
      .filter((request) => request.method === 'DELETE')
      .flatMap((request) => (request.body as { payload: { data: string[][] } }).payload.data.map(([hash]) => hash!));
    expect(hashedEmails(leaving)).toEqual(expect.arrayContaining(removed));
  } finally {
    const exitCode = await rescuer.stop('SIGTERM');
    expect(exitCode, rescuer.output()).toBe(0);
    await fake.close();
  }
}, 120_000);

test('a worker paused past its lease wakes after another finished the run: it writes nothing, sends nothing, and says it lost the run', async () => {
  const gateway = suite.gateway;
  const fake = await startFakeMeta({ accessToken: META_TOKEN });
  const destination = await createMetaDestination(gateway, fake);
  const audience = await createAudienceWith(gateway, []);
  const emails = Array.from({ length: 25_000 }, (_, i) => `paused${i}@example.com`);
  for (let start = 0; start < emails.length; start += 5_000) {
    const members = emails.slice(start, start + 5_000).map((email) => ({ email }));
    expectType(
      dataOf(await gateway.execute(AddAudienceMembers, { audienceId: audience.id, members })).addAudienceMembers,
      'AddAudienceMembersSuccess',
    );
  }
  const sync = await createSync(gateway, { audienceId: audience.id, destinationId: destination.id });
  const syncUuid = decodeGlobalID(sync.id).id;

  // Meta creates the audience and takes the first batch; the second is held while the worker freezes.
  const gate = fake.hold({ after: 2 });
  const sleeper = suite.startWorker();
  const { syncRun } = await triggerSync(gateway, sync.id);
  const runId = decodeGlobalID(syncRun.id).id;
  await gate.waiting;
  await waitFor(() => readRun(gateway, syncRun.id), (run) => run.membersAdded >= 10_000, { what: "the first batch's commit" });
  sleeper.child.kill('SIGSTOP');
  // Meta applies the held batch and answers; the answer waits in the frozen worker's socket.
  gate.release();

  const rescuer = suite.startWorker();
  try {
    const finished = await waitForRunEnd(gateway, syncRun.id, 60_000);
    expect(finished, rescuer.output()).toMatchObject({ status: 'SUCCEEDED', membersAdded: 25_000, progress: 1 });
    expect(heldEmails(fake)).toEqual(hashedEmails(emails));
    const recorded = await db().syncRun.findUniqueOrThrow({ where: { id: runId } });
    const state = await syncedState(syncUuid);
    expect(state).toMatchObject({ inDoubt: [] });
    expect(state.confirmed).toHaveLength(25_000);
    const requestsBefore = fake.requests.length;

    sleeper.child.kill('SIGCONT');
    await sleeper.waitFor(/Lost the sync run/, 30_000);

    expect(await db().syncRun.findUniqueOrThrow({ where: { id: runId } })).toEqual(recorded);
    expect(await syncedState(syncUuid)).toEqual(state);
    expect(fake.requests).toHaveLength(requestsBefore);
    expect(heldEmails(fake)).toEqual(hashedEmails(emails));
  } finally {
    await Promise.all([sleeper.stop('SIGKILL'), rescuer.stop('SIGTERM')]);
    await fake.close();
  }
}, 120_000);
