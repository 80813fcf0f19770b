import type { Agenda, Job } from 'agenda';
import { SYNC_AUDIENCES_TASK, createMemberTask, runMemberTask } from '../workflows/member-tasks.js';
import { db } from '../infra/db.js';
import type { Task } from '../generated/prisma/client.js';
import type { RetryPolicy } from '../infra/retry-policy.js';
import { requestCleanup } from './housekeeping.js';
import { scheduler, whileHoldingLock } from './scheduler.js';

export const RUN_TASK_JOB = 'task.run';

/** How long a task waits before checking again whether the workspace's older tasks have ended. */
const BUSY_RETRY_MS = 1_000;

interface TaskJobData {
  taskId: string;
  kind: string;
}

/** Worker side: runs member tasks (syncAudiences, CSV imports) from their stored payload. */
export function defineTaskJobs(
  agenda: Agenda,
  options: { concurrency: number; leaseSeconds: number; notifyRetry: RetryPolicy },
): void {
  agenda.define<TaskJobData>(
    RUN_TASK_JOB,
    async (job: Job<TaskJobData>) => {
      const outcome = await whileHoldingLock(job, options.leaseSeconds * 1000, () =>
        runMemberTask(job.attrs.data.taskId, { notifyRetry: options.notifyRetry }),
      );
      if (outcome === 'busy') await scheduler().schedule(new Date(Date.now() + BUSY_RETRY_MS), RUN_TASK_JOB, job.attrs.data);
      // Audiences a sync deleted leave synced state behind (of their syncs): it goes in the background.
      else if (job.attrs.data.kind === SYNC_AUDIENCES_TASK) await requestCleanup();
    },
    { concurrency: options.concurrency, lockLifetime: options.leaseSeconds * 1000 },
  );
}

/** Stores a member task with its payload and queues its job. If the job cannot be queued, the task
 * is removed again and the error thrown: nothing is left behind. */
export async function submitMemberTask(...args: Parameters<typeof createMemberTask>): Promise<Task> {
  const task = await createMemberTask(...args);
  try {
    await scheduler().now<TaskJobData>(RUN_TASK_JOB, { taskId: task.id, kind: task.kind });
  } catch (error) {
    await db().task.delete({ where: { id: task.id } });
    throw error;
  }
  return task;
}
