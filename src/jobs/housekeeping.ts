import type { Agenda, Job } from 'agenda';
import { logger } from '../infra/logger.js';
import { cleanUpStaleState } from '../sync/cleanup.js';
import { findStrandedRuns } from '../sync/request-run.js';
import { enqueueSyncRun } from './audience-sync.js';
import { scheduler } from './scheduler.js';

export const CLEANUP_JOB = 'housekeeping.cleanup';
const CLEANUP_EVERY = '15 minutes';

/** Worker side: the recurring cleanup of stale sync state, and the restart of queued runs whose
 * job was lost (one job for all workers). */
export async function defineHousekeepingJobs(agenda: Agenda): Promise<void> {
  agenda.define(
    CLEANUP_JOB,
    async (job: Job) => {
      const counts = await cleanUpStaleState({ onChunk: () => job.touch() });
      if (Object.values(counts).some((count) => count > 0)) logger.info(counts, 'Cleaned up stale sync state');
      const stranded = await findStrandedRuns();
      for (const runId of stranded) await enqueueSyncRun(runId);
      if (stranded.length > 0) logger.warn({ runIds: stranded }, 'Re-enqueued queued runs whose job was lost');
    },
    { concurrency: 1 },
  );
  await agenda.every(CLEANUP_EVERY, CLEANUP_JOB, undefined, { skipImmediate: true });
}

/** Runs the cleanup soon, e.g. once a sync has been deleted. */
export async function requestCleanup(): Promise<void> {
  await scheduler().now(CLEANUP_JOB);
}
