import type { Agenda } from 'agenda';
import { checkPlatformJobs } from '../sync/platform-jobs.js';
import { requestSyncRun } from '../sync/request-run.js';
import { enqueueSyncRun } from './audience-sync.js';

export const CHECK_PLATFORM_JOBS_JOB = 'platform-jobs.check';

/** Worker side: follows the jobs platforms apply batches in (one recurring job for all workers), and
 * runs again the syncs that waited for one to finish. */
export async function definePlatformJobChecks(agenda: Agenda, options: { pollMs: number }): Promise<void> {
  agenda.define(
    CHECK_PLATFORM_JOBS_JOB,
    async () => {
      const { syncsToRun } = await checkPlatformJobs({ minIntervalMs: options.pollMs });
      for (const syncId of syncsToRun) {
        const requested = await requestSyncRun(syncId, 'PLATFORM_JOB', false);
        if (requested && !requested.coalesced) await enqueueSyncRun(requested.run.id);
      }
    },
    { concurrency: 1 },
  );
  await agenda.every(options.pollMs, CHECK_PLATFORM_JOBS_JOB, undefined, { skipImmediate: true });
}
