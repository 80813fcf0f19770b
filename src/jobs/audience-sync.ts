import type { Agenda, Job } from 'agenda';
import { logger } from '../infra/logger.js';
import { publishSyncUpdated } from '../infra/change-events.js';
import { requestSyncRun } from '../sync/request-run.js';
import { executeSyncRun } from '../sync/execute-run.js';
import { FREQUENCY_CRON } from '../sync/schedule.js';
import type { ScheduleFrequency } from '../generated/prisma/enums.js';
import type { Clock } from '../infra/clock.js';
import type { RetryPolicy } from '../infra/retry-policy.js';
import { scheduler, whileHoldingLock } from './scheduler.js';

export const RUN_SYNC_JOB = 'audience-sync.run';
export const SCHEDULED_SYNC_JOB = 'audience-sync.scheduled';

const BUSY_RETRY_MS = 2_000;

interface RunJobData {
  runId: string;
}
interface ScheduledJobData {
  syncId: string;
}

/** Worker side: runs queued sync runs, and turns schedule occurrences into runs. */
export function defineAudienceSyncJobs(
  agenda: Agenda,
  options: { concurrency: number; retryPolicy: RetryPolicy; leaseSeconds: number; diffSplitSpan: bigint; clock: Clock },
): void {
  agenda.define<RunJobData>(
    RUN_SYNC_JOB,
    async (job: Job<RunJobData>) => {
      // A killed worker's run is picked up again once the lock lapses, and resumes from the state
      // it had committed.
      const execution = await whileHoldingLock(job, options.leaseSeconds * 1000, () =>
        executeSyncRun(job.attrs.data.runId, {
          retryPolicy: options.retryPolicy,
          leaseSeconds: options.leaseSeconds,
          diffSplitSpan: options.diffSplitSpan,
          clock: options.clock,
        }),
      );
      // Another run of the same sync holds it: come back once it has had time to finish. An
      // execution that lost its run comes back too: if no other worker took the run over, the lease
      // has lapsed and the next claim resumes it.
      if (execution === 'busy' || execution === 'lost') {
        await scheduler().schedule(new Date(Date.now() + BUSY_RETRY_MS), RUN_SYNC_JOB, job.attrs.data);
      }
    },
    { concurrency: options.concurrency, lockLifetime: options.leaseSeconds * 1000 },
  );
  agenda.define<ScheduledJobData>(SCHEDULED_SYNC_JOB, async (job: Job<ScheduledJobData>) => {
    const { syncId } = job.attrs.data;
    const requested = await requestSyncRun(syncId, 'SCHEDULE', false);
    // Agenda saved this occurrence's next run before calling us: subscribers see it now.
    if (requested) publishSyncUpdated({ id: syncId, workspaceId: requested.run.workspaceId });
    // The sync is gone (a schedule saved by a transaction that then rolled back): drop the schedule.
    if (!requested) await scheduler().cancel({ name: SCHEDULED_SYNC_JOB, data: { syncId } });
    else if (!requested.coalesced) await enqueueSyncRun(requested.run.id);
  });
}

export async function enqueueSyncRun(runId: string): Promise<void> {
  await scheduler().now<RunJobData>(RUN_SYNC_JOB, { runId });
}

export interface SyncSchedule {
  id: string;
  status: string;
  deletedAt: Date | null;
  scheduleCron: string | null;
  scheduleTimezone: string | null;
  scheduleFrequency: ScheduleFrequency | null;
  cadenceHours: number;
}

/** Makes the sync's recurring job match its schedule and status: one job per active sync with a
 * schedule, none otherwise. */
export async function applySyncSchedule(sync: SyncSchedule): Promise<void> {
  await scheduler().cancel({ name: SCHEDULED_SYNC_JOB, data: { syncId: sync.id } });
  const runsOnSchedule = sync.deletedAt === null && (sync.status === 'ACTIVE' || sync.status === 'ERROR');
  if (!runsOnSchedule) return;
  const interval =
    sync.scheduleCron ??
    (sync.scheduleFrequency ? FREQUENCY_CRON[sync.scheduleFrequency] : null) ??
    (sync.cadenceHours > 0 ? `${sync.cadenceHours} hours` : null);
  if (!interval) return;
  await scheduler()
    .create<ScheduledJobData>(SCHEDULED_SYNC_JOB, { syncId: sync.id })
    .repeatEvery(interval, { timezone: sync.scheduleTimezone ?? 'UTC', skipImmediate: true })
    .save();
  logger.debug({ syncId: sync.id, interval }, 'Sync schedule applied');
}

/** When the scheduler runs the sync's schedule next; null when it has none. */
export async function nextScheduledRunAt(syncId: string): Promise<Date | null> {
  const job = await findSyncScheduleJob(syncId);
  return job?.nextRunAt ? new Date(job.nextRunAt) : null;
}

/** The scheduled job of a sync, if any (for tests and diagnostics). */
export async function findSyncScheduleJob(syncId: string) {
  const { jobs } = await scheduler().queryJobs({ name: SCHEDULED_SYNC_JOB, data: { syncId } });
  return jobs[0];
}
