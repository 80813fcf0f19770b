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
 * step, so nothing is applied or counted twice. Returns 'busy' while an older member task of the
 * workspace has not ended (the caller tries again later).
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

  const started = await db().task.update({
    where: { id: taskId },
    data: { status: 'RUNNING', startedAt: task.startedAt ?? new Date() },
  });
  publishTaskUpdated(started);

  let ended: Task;
  try {
    const handler = HANDLERS[task.kind];
    const payload = await db().taskPayload.findUnique({ where: { taskId } });
    if (!handler || !payload) throw new Error(`Task ${taskId} of kind ${task.kind} has no handler or no payload`);
    const { parameters, file } = decodeTaskPayload(payload.content);
    const result = await handler(taskRun(started), parameters, file);
    ended = await endTask(taskId, { status: 'COMPLETED', result: json(result), progress: 1 });
  } catch (error) {
    if (error instanceof TaskSuperseded) {
      logger.warn({ taskId }, 'Another execution of this task moved on; this one stops');
      return 'done';
    }
    if (!(error instanceof TaskFailure)) logger.error({ err: error, taskId, kind: task.kind }, 'Task failed');
    const message =
      error instanceof TaskFailure
        ? error.message
        : 'The task stopped on an internal error (see the gateway log); what it had committed stays applied. Send it again.';
    ended = await endTask(taskId, { status: 'FAILED', error: message });
  }
  await notifyIfDue(ended, options.notifyRetry);
  return 'done';
}

const progressOf = ({ processed, total }: Checkpoint<unknown>) => (total > 0 ? Math.min(1, processed / total) : 0);

/** Thrown when another execution of the task (the job system is at-least-once) committed a step
 * this one had not seen: this one's step is rolled back and it stops, leaving the task to the other. */
class TaskSuperseded extends Error {}

function taskRun(task: Task): TaskRun {
  // What this execution last committed (or resumed from). Each step first locks the task's row and
  // checks it still holds this: two executions of one task never both apply a step.
  let processed = task.processed;
  const checkNotSuperseded = (found: { processed: number } | undefined) => {
    if (found?.processed !== processed) throw new TaskSuperseded(`Task ${task.id} was taken over by another execution`);
  };
  const committed = <Result>(checkpoint: Checkpoint<Result>) => {
    processed = checkpoint.processed;
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
          checkNotSuperseded(
            (await tx.$queryRaw<{ processed: number }[]>`SELECT processed FROM task WHERE id = ${task.id}::uuid FOR UPDATE`)[0],
          );
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
        const [locked] = await sql<{ processed: number }>(
          Prisma.sql`SELECT processed FROM task WHERE id = ${task.id}::uuid FOR UPDATE`,
        );
        checkNotSuperseded(locked);
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

/** Ends the task and drops its payload, in one transaction. */
async function endTask(taskId: string, data: Prisma.TaskUpdateInput): Promise<Task> {
  const [, ended] = await db().$transaction([
    db().taskPayload.deleteMany({ where: { taskId } }),
    db().task.update({ where: { id: taskId }, data: { ...data, completedAt: new Date() } }),
  ]);
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
