import { db, directTransaction } from '../infra/db.js';
import { Prisma, type Task } from '../generated/prisma/client.js';
import { logger } from '../infra/logger.js';
import { secretBox } from '../infra/secrets.js';
import { publishTaskUpdated } from '../infra/change-events.js';
import type { RetryPolicy } from '../infra/retry-policy.js';
import { importCsvMembers } from './csv-import.js';
import { syncAudienceMembers } from './sync-audiences.js';
import { TaskFailure, decodeTaskPayload, type Checkpoint, type TaskRun } from './task-run.js';
import { notifyTaskEnd, type TaskNotification } from './task-notification.js';

export const SYNC_AUDIENCES_TASK = 'SYNC_AUDIENCES';
export const IMPORT_MEMBERS_TASK = 'IMPORT_AUDIENCE_MEMBERS';
/** Tasks that change audience members: a workspace's run one at a time, oldest first. */
const MEMBER_TASK_KINDS = [SYNC_AUDIENCES_TASK, IMPORT_MEMBERS_TASK];

/** Creates a QUEUED task with its payload (one statement, so one transaction). */
export async function createMemberTask(
  workspaceId: string,
  kind: string,
  payload: Uint8Array<ArrayBuffer>,
  options: { notifyUrl?: string | null; notifySecret?: string | null; total?: number | null } = {},
): Promise<Task> {
  return db().task.create({
    data: {
      workspaceId,
      kind,
      notifyUrl: options.notifyUrl ?? null,
      notifySecret: options.notifySecret ? secretBox().seal(options.notifySecret) : null,
      total: options.total ?? null,
      payload: { create: { content: payload } },
    },
  });
}

type TaskHandler = (run: TaskRun, parameters: unknown, file: Buffer) => Promise<unknown>;

const HANDLERS: Record<string, TaskHandler> = {
  [SYNC_AUDIENCES_TASK]: syncAudienceMembers,
  [IMPORT_MEMBERS_TASK]: importCsvMembers,
};

const json = (value: unknown) => value as Prisma.InputJsonValue;

/**
 * Runs a member task from its payload. Safe to run again (jobs are at-least-once): an ended task is
 * only notified, if that is still due; a task that was interrupted resumes from its last committed
 * step, so nothing is applied or counted twice. Starting raises the task's lease generation (its
 * fencing token): an earlier execution still at work (paused past its job lock, or handed the same
 * job) stops at its next step without applying it, and cannot end the task. Returns 'busy' while an
 * older member task of the workspace has not ended (the caller tries again later).
 */
export async function runMemberTask(
  taskId: string,
  options: { notifyRetry: RetryPolicy },
): Promise<'done' | 'busy'> {
  const task = await db().task.findUnique({ where: { id: taskId } });
  if (!task) return 'done';
  if (task.status === 'COMPLETED' || task.status === 'FAILED') {
    await notifyIfDue(task, options.notifyRetry);
    return 'done';
  }
  const older = await db().task.count({
    where: {
      workspaceId: task.workspaceId,
      kind: { in: MEMBER_TASK_KINDS },
      status: { in: ['QUEUED', 'RUNNING'] },
      OR: [{ createdAt: { lt: task.createdAt } }, { createdAt: task.createdAt, id: { lt: task.id } }],
    },
  });
  if (older > 0) return 'busy';

  // Waits for a step another execution is committing (it holds the row), and resumes after it.
  const [started] = await db().task.updateManyAndReturn({
    where: { id: taskId, status: { in: ['QUEUED', 'RUNNING'] } },
    data: { status: 'RUNNING', startedAt: task.startedAt ?? new Date(), leaseGeneration: { increment: 1 } },
  });
  if (!started) return 'done';
  publishTaskUpdated(started);

  let ended: Task;
  try {
    const handler = HANDLERS[task.kind];
    const payload = await db().taskPayload.findUnique({ where: { taskId } });
    if (!handler || !payload) throw new Error(`Task ${taskId} of kind ${task.kind} has no handler or no payload`);
    const { parameters, file } = decodeTaskPayload(payload.content);
    const result = await handler(taskRun(started), parameters, file);
    ended = await endTask(started, { status: 'COMPLETED', result: json(result), progress: 1 });
  } catch (error) {
    try {
      if (error instanceof TaskSuperseded) throw error;
      if (!(error instanceof TaskFailure)) logger.error({ err: error, taskId, kind: task.kind }, 'Task failed');
      const message =
        error instanceof TaskFailure
          ? error.message
          : 'The task stopped on an internal error (see the gateway log); what it had committed stays applied. Send it again.';
      ended = await endTask(started, { status: 'FAILED', error: message });
    } catch (ending) {
      if (!(ending instanceof TaskSuperseded)) throw ending;
      logger.warn({ taskId, leaseGeneration: started.leaseGeneration }, 'Another execution took this task over; this one stopped without applying its step');
      return 'done';
    }
  }
  await notifyIfDue(ended, options.notifyRetry);
  return 'done';
}

const progressOf = ({ processed, total }: Checkpoint<unknown>) => (total > 0 ? Math.min(1, processed / total) : 0);

/** Thrown when another execution of the task (the job system is at-least-once) started after this
 * one: this one's step is rolled back and it stops, leaving the task to the other. */
class TaskSuperseded extends Error {}

/** The statement that locks the task's row for a step and tells whether this execution still holds it. */
const lockTask = (task: Task) => Prisma.sql`
  SELECT 1 FROM task
  WHERE id = ${task.id}::uuid AND lease_generation = ${task.leaseGeneration} AND status = 'RUNNING'
  FOR UPDATE`;

function checkHeld(task: Task, locked: unknown[]): void {
  if (locked.length === 0) throw new TaskSuperseded(`Task ${task.id} was taken over by another execution`);
}

function taskRun(task: Task): TaskRun {
  // Each step first locks the task's row and checks this execution still holds it: two executions of
  // one task never both apply a step, and one that was taken over applies none.
  const committed = <Result>(checkpoint: Checkpoint<Result>) => {
    publishTaskUpdated(task);
    return checkpoint;
  };
  return {
    workspaceId: task.workspaceId,
    processed: task.processed,
    result: task.result,
    async commit(apply) {
      const checkpoint = await db().$transaction(
        async (tx) => {
          checkHeld(task, await tx.$queryRaw(lockTask(task)));
          const reached = await apply(tx);
          await tx.task.update({
            where: { id: task.id },
            data: { processed: reached.processed, total: reached.total, progress: progressOf(reached), result: json(reached.result) },
          });
          return reached;
        },
        { timeout: 120_000 },
      );
      return committed(checkpoint);
    },
    async commitMembers(apply) {
      const checkpoint = await directTransaction(async (sql) => {
        checkHeld(task, await sql(lockTask(task)));
        const reached = await apply(sql);
        await sql(Prisma.sql`
          UPDATE task SET processed = ${reached.processed}, total = ${reached.total}, progress = ${progressOf(reached)},
                          result = ${JSON.stringify(reached.result)}::jsonb
          WHERE id = ${task.id}::uuid`);
        return reached;
      });
      return committed(checkpoint);
    },
  };
}

/** Ends the task and drops its payload, in one transaction, if this execution still holds it. */
async function endTask(task: Task, data: Prisma.TaskUpdateInput): Promise<Task> {
  const ended = await db().$transaction(async (tx) => {
    checkHeld(task, await tx.$queryRaw(lockTask(task)));
    await tx.taskPayload.deleteMany({ where: { taskId: task.id } });
    return tx.task.update({ where: { id: task.id }, data: { ...data, completedAt: new Date() } });
  });
  publishTaskUpdated(ended);
  return ended;
}

const notificationOf = (result: unknown) =>
  result && typeof result === 'object' && 'notification' in result ? result.notification : undefined;

/** Calls the task's notifyUrl unless it has no such URL or was already called; records the outcome in
 * `result.notification`. A failed notification never changes the task's status. */
async function notifyIfDue(task: Task, retry: RetryPolicy): Promise<void> {
  if (!task.notifyUrl || notificationOf(task.result) !== undefined) return;
  const secret = task.notifySecret ? secretBox().open(task.notifySecret) : null;
  const notification: TaskNotification = await notifyTaskEnd(task, { url: task.notifyUrl, secret }, retry);
  if (!notification.delivered) {
    logger.warn({ taskId: task.id, attempts: notification.attempts, reason: notification.error }, 'Task notification failed');
  }
  const base = task.result && typeof task.result === 'object' && !Array.isArray(task.result) ? task.result : {};
  const updated = await db().task.update({
    where: { id: task.id },
    data: { result: json({ ...base, notification }) },
  });
  publishTaskUpdated(updated);
}
