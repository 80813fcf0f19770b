import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { SCHEDULED_SYNC_JOB, findSyncScheduleJob } from '../../src/jobs/audience-sync.js';
import { CLEANUP_JOB } from '../../src/jobs/housekeeping.js';
import { scheduler } from '../../src/jobs/scheduler.js';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import type { CreateAudienceSyncInput } from '../generated/graphql.js';
import { createTestDatabase } from '../support/database.js';
import { LOOPBACK_FAKES, startTestGateway, type TestGateway } from '../support/gateway.js';
import { CreateAudienceSync } from '../support/operations.js';
import { runEntryPoint } from '../support/process.js';
import {
  META_TOKEN,
  createAudienceWith,
  createMetaDestination,
  dataOf,
  expectType,
  hashedEmails,
  heldEmails,
} from '../support/scenario.js';
import { waitFor } from '../support/wait.js';
import { HOUR_MS, wallClock } from '../support/wall-clock.js';

// Schedules on the real Agenda and PostgreSQL: across a restart, and with several workers.

async function createScheduledSync(
  gateway: TestGateway,
  ids: { audienceId: string; destinationId: string },
  schedule: CreateAudienceSyncInput['schedule'],
) {
  const result = dataOf(
    await gateway.execute(CreateAudienceSync, { input: { name: `Scheduled ${randomBytes(3).toString('hex')}`, ...ids, schedule } }),
  );
  return decodeGlobalID(expectType(result.createAudienceSync, 'CreateAudienceSyncSuccess').audienceSync.id).id;
}

/** Sets the schedule jobs of `syncIds` due now, as if their next occurrence had come. */
async function makeDue(syncIds: string[]) {
  const updated = await db().$executeRaw`
    UPDATE agenda_jobs SET next_run_at = now()
    WHERE name = ${SCHEDULED_SYNC_JOB} AND data->>'syncId' = ANY(${syncIds}::text[])`;
  expect(updated).toBe(syncIds.length);
}

/** How many times a schedule asked for a run of each sync: one task per request, coalesced or not. */
async function scheduleRequests(syncIds: string[]) {
  const rows = await db().$queryRaw<{ sync_id: string; requests: number }[]>`
    SELECT r.sync_id::text, count(t.id)::int AS requests
    FROM sync_run r JOIN task t ON t.run_id = r.id
    WHERE r.trigger = 'SCHEDULE' AND r.sync_id = ANY(${syncIds}::uuid[])
    GROUP BY r.sync_id`;
  return Object.fromEntries(syncIds.map((id) => [id, rows.find((row) => row.sync_id === id)?.requests ?? 0]));
}

const eventually = (condition: () => Promise<boolean>, what: string) =>
  waitFor(condition, Boolean, { what, timeoutMs: 30_000, intervalMs: 100 });

async function withFakeMeta<T>(work: (fake: FakeMeta) => Promise<T>): Promise<T> {
  const fake = await startFakeMeta({ accessToken: META_TOKEN });
  try {
    return await work(fake);
  } finally {
    await fake.close();
  }
}

test('cron and frequency schedules survive a restart, and a due one fires a SCHEDULE run', async () => {
  const database = await createTestDatabase();
  const settings = { DATABASE_URL: database.url, SECRETS_KEY: randomBytes(32).toString('base64') };
  const emails = ['ada@example.com', 'grace@example.com'];
  try {
    await withFakeMeta(async (fake) => {
      const first = await startTestGateway(settings);
      const createdAt = Date.now();
      const destination = await createMetaDestination(first, fake);
      const audienceId = async (members: string[]) => (await createAudienceWith(first, members)).id;
      const cronSync = await createScheduledSync(
        first,
        { audienceId: await audienceId(emails), destinationId: destination.id },
        { cron: '30 6 * * *', timezone: 'America/New_York' },
      );
      const frequencySync = await createScheduledSync(
        first,
        { audienceId: await audienceId([]), destinationId: destination.id },
        { frequency: 'WEEKLY', timezone: 'Asia/Tokyo' },
      );
      const before = { cron: await findSyncScheduleJob(cronSync), frequency: await findSyncScheduleJob(frequencySync) };
      await first.stop();

      const second = await startTestGateway(settings);
      try {
        const after = { cron: await findSyncScheduleJob(cronSync), frequency: await findSyncScheduleJob(frequencySync) };
        for (const kind of ['cron', 'frequency'] as const) {
          expect(after[kind]).toMatchObject({
            repeatInterval: before[kind]!.repeatInterval,
            repeatTimezone: before[kind]!.repeatTimezone,
            nextRunAt: before[kind]!.nextRunAt,
          });
        }
        // Next runs on the wall clock of each sync's zone, the first occurrence after the syncs were made.
        const cronNext = new Date(after.cron!.nextRunAt!);
        expect(wallClock(cronNext, 'America/New_York')).toMatchObject({ hour: 6, minute: 30, second: 0 });
        expect(cronNext.getTime() - createdAt).toBeLessThanOrEqual(24 * HOUR_MS);
        const frequencyNext = new Date(after.frequency!.nextRunAt!);
        expect(wallClock(frequencyNext, 'Asia/Tokyo')).toEqual({ weekday: 'Mon', hour: 0, minute: 0, second: 0 });
        expect(frequencyNext.getTime() - createdAt).toBeLessThanOrEqual(7 * 24 * HOUR_MS);
        // No schedule was duplicated by the restart, nor the recurring cleanup.
        expect((await scheduler().queryJobs({ name: SCHEDULED_SYNC_JOB })).total).toBe(2);
        const cleanups = (await scheduler().queryJobs({ name: CLEANUP_JOB })).jobs.filter((job) => job.repeatInterval);
        expect(cleanups).toHaveLength(1);

        await makeDue([cronSync]);

        await eventually(
          async () => (await db().syncRun.count({ where: { syncId: cronSync, trigger: 'SCHEDULE', status: 'SUCCEEDED' } })) === 1,
          'the scheduled run',
        );
        expect(heldEmails(fake)).toEqual(hashedEmails(emails));
        expect(await scheduleRequests([cronSync, frequencySync])).toEqual({ [cronSync]: 1, [frequencySync]: 0 });
        // The job moved on to the following 06:30 in New York.
        const fired = (await findSyncScheduleJob(cronSync))!;
        expect(fired.lastRunAt).toBeDefined();
        expect(new Date(fired.nextRunAt!).getTime()).toBeGreaterThan(Date.now());
        expect(wallClock(new Date(fired.nextRunAt!), 'America/New_York')).toMatchObject({ hour: 6, minute: 30 });
      } finally {
        await second.stop();
      }
    });
  } finally {
    await database.drop();
  }
}, 120_000);

test('with two worker processes on one database, each occurrence fires exactly once', async () => {
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'asg-schedules-'));
  const settings = { DATABASE_URL: database.url, SECRETS_KEY: randomBytes(32).toString('base64') };
  // This process only serves the API: the two worker processes are the only ones running jobs.
  const gateway = await startTestGateway({ ...settings, ROLES: 'gateway' });
  const workerEnv = { ...settings, ...LOOPBACK_FAKES, DATA_DIR: dataDir, PORT: '0', JOB_POLL_INTERVAL_MS: '200', LOG_LEVEL: 'info' };
  const workers = [runEntryPoint('build/worker.js', workerEnv), runEntryPoint('build/worker.js', workerEnv)];
  try {
    await Promise.all(workers.map((worker) => worker.waitFor(/Worker listening/)));
    await withFakeMeta(async (fake) => {
      const destination = await createMetaDestination(gateway, fake);
      const schedules: CreateAudienceSyncInput['schedule'][] = [
        { cron: '0 0 1 1 *', timezone: 'Pacific/Auckland' },
        { cron: '0 0 1 1 *' },
        { cron: '15 3 1 1 *', timezone: 'Europe/Paris' },
        { frequency: 'WEEKLY', timezone: 'America/Los_Angeles' },
        { frequency: 'DAILY', timezone: 'Asia/Kolkata' },
        { cadenceHours: 720 },
      ];
      const syncIds: string[] = [];
      for (const [index, schedule] of schedules.entries()) {
        const audience = await createAudienceWith(gateway, [`member${index}@example.com`]);
        syncIds.push(await createScheduledSync(gateway, { audienceId: audience.id, destinationId: destination.id }, schedule));
      }

      for (const occurrence of [1, 2]) {
        await makeDue(syncIds);
        await eventually(
          async () => Object.values(await scheduleRequests(syncIds)).every((count) => count >= occurrence),
          `occurrence ${occurrence} of every schedule`,
        );
        // Both workers poll every 200 ms: this leaves each of them many chances to fire an occurrence again.
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        expect(await scheduleRequests(syncIds)).toEqual(Object.fromEntries(syncIds.map((id) => [id, occurrence])));
        await eventually(
          async () => (await db().syncRun.count({ where: { status: { in: ['QUEUED', 'RUNNING'] } } })) === 0,
          'the runs to end',
        );
      }
      expect(await db().syncRun.count({ where: { trigger: 'SCHEDULE', status: 'SUCCEEDED' } })).toBe(2 * syncIds.length);
    });
  } finally {
    for (const worker of workers) expect(await worker.stop('SIGTERM')).toBe(0);
    await gateway.stop();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}, 180_000);
