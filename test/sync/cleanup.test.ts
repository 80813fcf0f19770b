import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { CLEANUP_JOB } from '../../src/jobs/housekeeping.js';
import { scheduler } from '../../src/jobs/scheduler.js';
import { PLATFORM_JOB_HISTORY_DAYS, cleanUpStaleState } from '../../src/sync/cleanup.js';
import { STRANDED_AFTER_SECONDS, requestSyncRun } from '../../src/sync/request-run.js';
import { DeleteAudienceSync } from '../support/operations.js';
import { dataOf, expectType } from '../support/scenario.js';
import { useGatewaySuite } from '../support/suite.js';
import { runSync, waitForRunEnd } from '../support/sync-runs.js';
import { waitFor } from '../support/wait.js';

const suite = useGatewaySuite({ reset: true });

const syncedCount = (syncId: string) => db().syncedMember.count({ where: { syncId } });
const platformJobCount = (syncId: string) => db().platformJob.count({ where: { syncId } });

/** A Meta sync of `emails` that has run once: the destination holds them, and synced_member too. */
async function syncThatRan(emails: string[]) {
  const scenario = await suite.metaSyncScenario(emails);
  const { run } = await runSync(suite.gateway, scenario.sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: emails.length });
  const syncId = decodeGlobalID(scenario.sync.id).id;
  await db().platformJob.create({
    data: { syncId, platform: 'META', resourceName: `jobs/${syncId}`, action: 'add' },
  });
  return { ...scenario, syncId, runId: decodeGlobalID(run.id).id };
}

/** Adds `count` synced members with made-up contact ids to a sync, in one statement. */
async function addSyncedRows(syncId: string, count: number) {
  await db().$executeRaw`
    INSERT INTO synced_member (sync_id, contact_id, identifiers)
    SELECT ${syncId}::uuid, 1000000 + n, '{}'::jsonb FROM generate_series(1, ${count}::int) AS n`;
}

describe('cleanup of deleted syncs', () => {
  test("deleting a sync removes its synced state in the background; other syncs' state is untouched", async () => {
    const deleted = await syncThatRan(['ada@example.com', 'grace@example.com', 'alan@example.com']);
    const kept = await syncThatRan(['edsger@example.com', 'barbara@example.com']);
    expect(await syncedCount(deleted.syncId)).toBe(3);

    const result = dataOf(await suite.gateway.execute(DeleteAudienceSync, { id: deleted.sync.id })).deleteAudienceSync;
    expectType(result, 'DeleteAudienceSyncSuccess');

    // No waiting for the 15-minute pass: deleting the sync asked for a cleanup at once.
    await waitFor(async () => (await syncedCount(deleted.syncId)) === 0 && (await platformJobCount(deleted.syncId)) === 0);
    expect(await syncedCount(kept.syncId)).toBe(2);
    expect(await platformJobCount(kept.syncId)).toBe(1);
    // The sync row and its run history stay (soft delete); the platform audience is not touched.
    expect(await db().audienceSync.findUniqueOrThrow({ where: { id: deleted.syncId } })).toMatchObject({
      deletedAt: expect.any(Date),
    });
    expect(await db().syncRun.count({ where: { syncId: deleted.syncId } })).toBe(1);
    expect([...deleted.fake.audiences.values()][0]!.size).toBe(3);
  });

  test('a large deleted sync goes in bounded chunks; a second pass finds nothing; two workers at once delete each row once', async () => {
    const deleted = await syncThatRan(['ada@example.com']);
    const kept = await syncThatRan(['grace@example.com']);
    await db().audienceSync.update({ where: { id: deleted.syncId }, data: { deletedAt: new Date() } });
    await addSyncedRows(deleted.syncId, 25_000);

    const chunks: number[] = [];
    const counts = await cleanUpStaleState({
      chunkRows: 4_000,
      onChunk: async () => void chunks.push(await syncedCount(deleted.syncId)),
    });

    expect(counts).toMatchObject({ syncedMembers: 25_001, platformJobs: 1 });
    // Each statement removed at most a chunk: the count went down 4,000 at a time.
    expect(chunks.slice(0, 7)).toEqual([21_001, 17_001, 13_001, 9_001, 5_001, 1_001, 0]);
    expect(await syncedCount(kept.syncId)).toBe(1);
    expect(await cleanUpStaleState()).toMatchObject({ syncedMembers: 0, batchesInDoubt: 0, platformJobs: 0, runDiffs: 0, taskPayloads: 0 });

    await addSyncedRows(deleted.syncId, 30_000);
    const [first, second] = await Promise.all([
      cleanUpStaleState({ chunkRows: 1_000 }),
      cleanUpStaleState({ chunkRows: 1_000 }),
    ]);
    expect(first.syncedMembers + second.syncedMembers).toBe(30_000);
    expect(await syncedCount(deleted.syncId)).toBe(0);
    expect(await syncedCount(kept.syncId)).toBe(1);
  });

  test('the recurring cleanup is one Agenda job every 15 minutes, whatever the number of workers', async () => {
    const { jobs } = await scheduler().queryJobs({ name: CLEANUP_JOB });
    const recurring = jobs.filter((job) => job.repeatInterval);

    expect(recurring).toHaveLength(1);
    expect(recurring[0]).toMatchObject({ repeatInterval: '15 minutes', type: 'single' });
  });
});

describe('cleanup of run diffs and task payloads', () => {
  test('diffs of runs that are not running and payloads of ended tasks go; those in use stay', async () => {
    const ran = await syncThatRan(['ada@example.com']);
    const running = await db().syncRun.create({
      data: { syncId: ran.syncId, workspaceId: suite.gateway.workspaceId, trigger: 'MANUAL', status: 'RUNNING' },
    });
    const vanishedRunId = '00000000-0000-4000-8000-000000000001';
    for (const runId of [ran.runId, running.id, vanishedRunId]) {
      await db().$executeRaw`
        INSERT INTO run_diff (run_id, action, contact_id)
        SELECT ${runId}::uuid, action, n FROM generate_series(1, 1500) AS n, unnest(ARRAY['add', 'remove']) AS action`;
    }
    const payloadOf = async (status: 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED') => {
      const task = await db().task.create({
        data: { workspaceId: suite.gateway.workspaceId, kind: 'IMPORT_MEMBERS', status },
      });
      await db().taskPayload.create({ data: { taskId: task.id, content: Buffer.from(`payload of a ${status} task`) } });
      return task.id;
    };
    const tasks = {
      queued: await payloadOf('QUEUED'),
      running: await payloadOf('RUNNING'),
      completed: await payloadOf('COMPLETED'),
      failed: await payloadOf('FAILED'),
    };

    const counts = await cleanUpStaleState({ chunkRows: 1_000 });

    expect(counts).toMatchObject({ runDiffs: 6_000, taskPayloads: 2 });
    const diffRuns = await db().$queryRaw<{ run_id: string; rows: bigint }[]>`
      SELECT run_id, count(*) AS rows FROM run_diff GROUP BY run_id`;
    expect(diffRuns).toEqual([{ run_id: running.id, rows: 3_000n }]);
    const payloads = await db().taskPayload.findMany({ select: { taskId: true } });
    expect(payloads.map((payload) => payload.taskId).sort()).toEqual([tasks.queued, tasks.running].sort());
    expect(await db().task.count({ where: { id: { in: Object.values(tasks) } } })).toBe(4);

    // Once the run ends, its diff goes on the next pass.
    await db().syncRun.update({ where: { id: running.id }, data: { status: 'SUCCEEDED' } });
    expect((await cleanUpStaleState()).runDiffs).toBe(3_000);
    expect(await db().runDiff.count()).toBe(0);
  });
});

describe('platform job history', () => {
  test('finished jobs go after the history period; running and recent ones stay', async () => {
    const scenario = await suite.metaSyncScenario(['ada@example.com']);
    const syncId = decodeGlobalID(scenario.sync.id).id;
    const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000);
    const job = (status: 'RUNNING' | 'SUCCEEDED' | 'FAILED', finishedAt: Date | null) =>
      db().platformJob.create({
        data: { syncId, platform: 'GOOGLE', resourceName: `jobs/${status}/${finishedAt?.getTime()}`, action: 'ADD', status, finishedAt },
      });
    const old = [
      await job('SUCCEEDED', daysAgo(PLATFORM_JOB_HISTORY_DAYS + 1)),
      await job('FAILED', daysAgo(PLATFORM_JOB_HISTORY_DAYS + 5)),
    ];
    const kept = [await job('SUCCEEDED', daysAgo(PLATFORM_JOB_HISTORY_DAYS - 1)), await job('RUNNING', null)];

    expect((await cleanUpStaleState()).platformJobs).toBe(old.length);
    const left = await db().platformJob.findMany({ where: { syncId }, select: { id: true } });
    expect(left.map((row) => row.id).sort()).toEqual(kept.map((row) => row.id).sort());
  });

  test("a job's members go in chunks: those left on a finished job, and all of a deleted sync's; an open job keeps its own", async () => {
    const scenario = await suite.metaSyncScenario(['ada@example.com']);
    const deleted = await suite.metaSyncScenario(['grace@example.com']);
    const syncId = decodeGlobalID(scenario.sync.id).id;
    const deletedSyncId = decodeGlobalID(deleted.sync.id).id;
    const jobWithMembers = async (sync: string, status: 'RUNNING' | 'SUCCEEDED', count: number) => {
      const job = await db().platformJob.create({
        data: { syncId: sync, platform: 'GOOGLE', resourceName: `jobs/${status}`, action: 'ADD', status, memberCount: count },
      });
      await db().$executeRaw`
        INSERT INTO platform_job_member (job_id, contact_id)
        SELECT ${job.id}::uuid, n FROM generate_series(1, ${count}::int) AS n`;
      return job.id;
    };
    const finished = await jobWithMembers(syncId, 'SUCCEEDED', 9_000);
    const open = await jobWithMembers(syncId, 'RUNNING', 10);
    const ofDeleted = await jobWithMembers(deletedSyncId, 'RUNNING', 6_000);
    await db().audienceSync.update({ where: { id: deletedSyncId }, data: { deletedAt: new Date() } });
    const members = (jobId: string) => db().platformJobMember.count({ where: { jobId } });

    const left: number[] = [];
    await cleanUpStaleState({ chunkRows: 4_000, onChunk: async () => void left.push((await members(finished)) + (await members(ofDeleted))) });
    // Each statement removed at most a chunk.
    expect(left[0]).toBe(11_000);
    expect(left.every((count, i) => i === 0 || left[i - 1]! - count <= 4_000)).toBe(true);
    expect(left.at(-1)).toBe(0);
    expect([await members(finished), await members(ofDeleted), await members(open)]).toEqual([0, 0, 10]);
    expect(await db().platformJob.count({ where: { id: ofDeleted } })).toBe(0);
  });
});

describe('queued runs whose job was lost', () => {
  test('housekeeping re-enqueues a run that waited too long with nothing of its sync running; a fresh one is left alone', async () => {
    const scenario = await suite.metaSyncScenario(['ada@example.com', 'grace@example.com']);
    const syncId = decodeGlobalID(scenario.sync.id).id;
    // As if the process died between committing the run and enqueueing its job.
    const requested = (await requestSyncRun(syncId, 'MANUAL', false))!;
    const other = await suite.metaSyncScenario(['alan@example.com']);
    const fresh = (await requestSyncRun(decodeGlobalID(other.sync.id).id, 'MANUAL', false))!;
    await db().$executeRaw`
      UPDATE sync_run SET created_at = now() - make_interval(secs => ${STRANDED_AFTER_SECONDS + 60})
      WHERE id = ${requested.run.id}::uuid`;

    await scheduler().now(CLEANUP_JOB);

    const run = await waitForRunEnd(suite.gateway, encodeGlobalID('SyncRun', requested.run.id));
    expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 2 });
    expect(await db().syncRun.findUniqueOrThrow({ where: { id: fresh.run.id } })).toMatchObject({ status: 'QUEUED' });
  });
});
