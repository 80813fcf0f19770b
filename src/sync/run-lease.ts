import { db, directTransaction, type DirectSql } from '../infra/db.js';
import { Prisma, type AudienceSync, type Destination, type SyncRun } from '../generated/prisma/client.js';
import { logger } from '../infra/logger.js';

// Who may change a run. A claim hands the run to one execution and raises its lease generation (the
// fencing token); every write that execution makes is fenced: it checks, in its own transaction, that
// the run still carries that generation, is running and its lease has not lapsed. An execution that
// was paused past its lease (a GC pause, a frozen VM, a partition) therefore cannot change anything
// once it wakes, whether or not another execution has taken over, and a finished run never changes.

/** Thrown by a fenced write of an execution that no longer holds its run. */
export class RunLost extends Error {
  constructor(readonly fence: RunFence) {
    super(`Run ${fence.runId} is no longer held by this execution (lease generation ${fence.generation})`);
    this.name = 'RunLost';
  }
}

export interface RunFence {
  runId: string;
  syncId: string;
  /** The lease generation the claim gave this execution. */
  generation: number;
}

export type ClaimedRun = SyncRun & { sync: AudienceSync & { destination: Destination } };

/**
 * Makes the caller's transaction fenced (call it before the transaction commits; its effects then
 * commit only if the run is still held). The sync's row is locked FOR KEY SHARE: a claim of any of
 * the sync's runs locks it FOR UPDATE, so no claim can happen between this check and the commit, while
 * fenced transactions of one execution do not wait on each other. The run is read in a statement of
 * its own, whose snapshot follows the lock, and its lease is compared with the clock, not with the
 * transaction's start. https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-ROWS
 */
export async function checkFence(sql: DirectSql, fence: RunFence): Promise<void> {
  await sql(Prisma.sql`SELECT 1 FROM audience_sync WHERE id = ${fence.syncId}::uuid FOR KEY SHARE`);
  const held = await sql(Prisma.sql`
    SELECT 1 FROM sync_run
    WHERE id = ${fence.runId}::uuid AND lease_generation = ${fence.generation}
      AND status = 'RUNNING' AND lease_expires_at > clock_timestamp()`);
  if (held.length === 0) throw new RunLost(fence);
}

/** Runs `work` in one fenced transaction on a direct connection (see directTransaction). */
export function fencedDirectTransaction<T>(fence: RunFence, work: (sql: DirectSql) => Promise<T>): Promise<T> {
  return directTransaction(async (sql) => {
    await checkFence(sql, fence);
    return work(sql);
  });
}

/** Runs statements in one fenced transaction on a direct connection; returns each one's rows. */
export function fencedSql<Row = Record<string, unknown>>(fence: RunFence, ...statements: Prisma.Sql[]): Promise<Row[][]> {
  return fencedDirectTransaction(fence, async (sql) => {
    const results: Row[][] = [];
    for (const statement of statements) results.push(await sql<Row>(statement));
    return results;
  });
}

/** Runs `work` in one fenced Prisma transaction. */
export function fencedTransaction<T>(
  fence: RunFence,
  work: (tx: Prisma.TransactionClient) => Promise<T>,
  options?: { timeout?: number },
): Promise<T> {
  return db().$transaction(async (tx) => {
    await checkFence((statement) => tx.$queryRaw(statement), fence);
    return work(tx);
  }, options);
}

/**
 * Marks the run RUNNING for a new execution if it is queued, or held by an execution whose lease
 * lapsed, and no other run of the sync is running; raises its lease generation. The sync's row lock
 * makes the check and the claim one step, and waits for fenced transactions in progress. The run's
 * tasks follow it to RUNNING in the same transaction. Its phase is `computing`: what an execution does
 * first is the diff (a resumed run's afresh).
 */
export async function claimRun(
  runId: string,
  leaseSeconds: number,
): Promise<{ run: ClaimedRun; fence: RunFence; tasks: { id: string; workspaceId: string }[] } | 'busy' | 'skipped'> {
  return db().$transaction(async (tx) => {
    const [run] = await tx.$queryRaw<{ sync_id: string }[]>`SELECT sync_id FROM sync_run WHERE id = ${runId}::uuid`;
    if (!run) return 'skipped';
    await tx.$executeRaw`SELECT 1 FROM audience_sync WHERE id = ${run.sync_id}::uuid FOR UPDATE`;
    const [claimed] = await tx.$queryRaw<{ lease_generation: number }[]>`
      UPDATE sync_run r
      SET status = 'RUNNING', phase = 'computing', started_at = COALESCE(r.started_at, now()),
          lease_expires_at = clock_timestamp() + make_interval(secs => ${leaseSeconds}),
          lease_generation = r.lease_generation + 1
      WHERE r.id = ${runId}::uuid
        AND (r.status = 'QUEUED' OR (r.status = 'RUNNING' AND r.lease_expires_at < clock_timestamp()))
        AND NOT EXISTS (SELECT 1 FROM sync_run o
                        WHERE o.sync_id = r.sync_id AND o.id <> r.id
                          AND o.status = 'RUNNING' AND o.lease_expires_at >= clock_timestamp())
      RETURNING r.lease_generation`;
    if (!claimed) {
      const current = await tx.syncRun.findUniqueOrThrow({ where: { id: runId } });
      return current.status === 'QUEUED' || current.status === 'RUNNING' ? 'busy' : 'skipped';
    }
    const tasks = await tx.task.updateManyAndReturn({
      where: { runId, status: { in: ['QUEUED', 'RUNNING'] } },
      data: { status: 'RUNNING' },
      select: { id: true, workspaceId: true },
    });
    const claimedRun = await tx.syncRun.findUniqueOrThrow({
      where: { id: runId },
      include: { sync: { include: { destination: true } } },
    });
    return { run: claimedRun, fence: { runId, syncId: run.sync_id, generation: claimed.lease_generation }, tasks };
  });
}

export interface RunLease {
  /** Resolves while the lease is held with time to spare, renewing it first when its last renewal is
   * overdue (the process was paused, or the database slow); throws RunLost once it is not. Called
   * before every platform call, so an execution that lost its run stops sending. */
  ensureHeld(): Promise<void>;
  stop(): void;
}

/**
 * Renews the run's lease every third of it for as long as this execution works on the run — through
 * a long diff or a platform's long pause as much as between batches. A process that dies stops
 * renewing, so its run lapses and another worker resumes it. A renewal is fenced like any write:
 * once the lease lapsed, or another execution claimed the run, this one has lost it for good.
 */
export function keepLease(fence: RunFence, leaseSeconds: number): RunLease {
  const leaseMs = leaseSeconds * 1000;
  let renewedAt = performance.now();
  let lost = false;
  let renewing: Promise<unknown> | undefined;
  /** Resolves with the error of a renewal that did not reach the database, if it failed so. */
  const renew = () =>
    (renewing ??= (async () => {
      const startedAt = performance.now();
      try {
        const renewed = await db().$executeRaw`
          UPDATE sync_run SET lease_expires_at = clock_timestamp() + make_interval(secs => ${leaseSeconds})
          WHERE id = ${fence.runId}::uuid AND lease_generation = ${fence.generation}
            AND status = 'RUNNING' AND lease_expires_at > clock_timestamp()`;
        if (renewed === 1) renewedAt = startedAt;
        else lost = true;
        return undefined;
      } catch (error) {
        logger.warn({ err: error, runId: fence.runId }, 'Could not renew the lease of a sync run');
        return error;
      } finally {
        renewing = undefined;
      }
    })());
  const timer = setInterval(renew, leaseMs / 3);
  return {
    async ensureHeld() {
      if (!lost && performance.now() - renewedAt > leaseMs / 2) {
        const failure = await renew();
        if (!lost && failure) throw failure;
      }
      if (lost) throw new RunLost(fence);
    },
    stop: () => clearInterval(timer),
  };
}
