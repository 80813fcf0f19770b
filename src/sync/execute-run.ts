import { randomUUID } from 'node:crypto';
import { db, sqlDirect } from '../infra/db.js';
import {
  DestinationError,
  type BatchOutcome,
  type DestinationConnector,
  type EncodedIdentifiers,
  type EncodedMember,
  type UploadSession,
  type FieldMapping,
} from '../destinations/destination.js';
import { MissingCredentialsError, checkApiVersion, connectorFor } from '../destinations/registry.js';
import { Prisma, type AudienceSync, type Destination, type SyncRun } from '../generated/prisma/client.js';
import { logger } from '../infra/logger.js';
import { membersSent, platformErrors, syncRunsFinished } from '../infra/metrics.js';
import { loadDesiredMembersSource, desiredMembersSql } from './desired-members.js';
import {
  clearRunDiff,
  clearRunDiffRange,
  materializeRunDiff,
  readContactsPage,
  readRemovesPage,
  type DiffCounts,
  type DiffContact,
} from './membership-diff.js';
import type { Clock } from '../infra/clock.js';
import type { RetryPolicy } from '../infra/retry-policy.js';
import { callWithRetries } from './platform-retry.js';
import { recordPlatformJob } from './platform-jobs.js';
import { publishRunUpdated, publishTaskUpdated } from '../infra/change-events.js';

export interface RunOptions {
  retryPolicy: RetryPolicy;
  /** Today, for the destination's API version sunset. */
  clock: Clock;
  /** How long the run's claim lasts without a heartbeat before another worker may resume it. */
  leaseSeconds: number;
}

/** `busy`: another run of the same sync holds it; try again shortly. */
export type RunExecution = 'finished' | 'busy' | 'skipped';

type ClaimedRun = SyncRun & { sync: AudienceSync & { destination: Destination } };

/**
 * Runs a queued sync run to its end. Safe to call more than once for one run (the job system is
 * at-least-once): a finished run is skipped, a run whose worker died is resumed, and each batch's
 * state is committed only after the destination accepted it, so a resumed run converges exactly.
 */
export async function executeSyncRun(runId: string, options: RunOptions): Promise<RunExecution> {
  const claim = await claimRun(runId, options.leaseSeconds);
  if (claim === 'busy' || claim === 'skipped') return claim;
  const run = claim;
  const lease = keepLeaseAlive(run.id, options);
  try {
    for (const task of await setTasksStatus(db(), run.id, 'RUNNING')) publishTaskUpdated(task);
    publishRunUpdated(run);
    if (run.sync.deletedAt) {
      await finishRun(run, 'CANCELLED', { errorMessage: 'The sync was deleted before this run started' });
      return 'finished';
    }
    const counts = await syncMembers(run, options);
    await finishRun(run, 'SUCCEEDED', { counts });
  } catch (error) {
    await finishRun(run, 'FAILED', describeFailure(run, error));
  } finally {
    lease.stop();
  }
  return 'finished';
}

/**
 * Renews the run's lease every third of it for as long as this process works on the run — through a
 * long diff or a platform's long pause as much as between batches. A process that dies stops
 * renewing, so its run lapses and another worker resumes it.
 */
function keepLeaseAlive(runId: string, options: RunOptions): { stop(): void } {
  const renew = () =>
    db()
      .$executeRaw`
        UPDATE sync_run SET lease_expires_at = now() + make_interval(secs => ${options.leaseSeconds})
        WHERE id = ${runId}::uuid AND status = 'RUNNING'`
      .catch((error: unknown) => logger.warn({ err: error, runId }, 'Could not renew the lease of a sync run'));
  const timer = setInterval(renew, (options.leaseSeconds * 1000) / 3);
  return { stop: () => clearInterval(timer) };
}

/** Marks the run RUNNING if it is queued, or abandoned by a dead worker, and no other run of the
 * sync is running; the sync's row lock makes the check and the claim one step. */
async function claimRun(runId: string, leaseSeconds: number): Promise<ClaimedRun | 'busy' | 'skipped'> {
  return db().$transaction(async (tx) => {
    const [run] = await tx.$queryRaw<{ sync_id: string }[]>`SELECT sync_id FROM sync_run WHERE id = ${runId}::uuid`;
    if (!run) return 'skipped';
    await tx.$executeRaw`SELECT 1 FROM audience_sync WHERE id = ${run.sync_id}::uuid FOR UPDATE`;
    const claimed = await tx.$executeRaw`
      UPDATE sync_run r
      SET status = 'RUNNING', phase = 'starting', started_at = COALESCE(r.started_at, now()),
          lease_expires_at = now() + make_interval(secs => ${leaseSeconds})
      WHERE r.id = ${runId}::uuid
        AND (r.status = 'QUEUED' OR (r.status = 'RUNNING' AND r.lease_expires_at < now()))
        AND NOT EXISTS (SELECT 1 FROM sync_run o
                        WHERE o.sync_id = r.sync_id AND o.id <> r.id
                          AND o.status = 'RUNNING' AND o.lease_expires_at >= now())`;
    if (claimed === 0) {
      const current = await tx.syncRun.findUniqueOrThrow({ where: { id: runId } });
      return current.status === 'QUEUED' || current.status === 'RUNNING' ? 'busy' : 'skipped';
    }
    return tx.syncRun.findUniqueOrThrow({ where: { id: runId }, include: { sync: { include: { destination: true } } } });
  });
}

interface RunContext {
  run: ClaimedRun;
  connector: DestinationConnector;
  mapping: FieldMapping[];
  platformAudienceId: string;
  plan: DiffCounts;
  /** When the diff was taken: what this run commits is recorded as synced then. */
  diffTakenAt: string;
  options: RunOptions;
  done: number;
}

async function syncMembers(run: ClaimedRun, options: RunOptions): Promise<DiffCounts> {
  const { sync } = run;
  await updateProgress(run, { phase: 'preparing' });
  const connector = connectorFor(sync.destination);
  checkApiVersion(sync.destination, options.clock.now());
  const mapping = sync.fieldMapping as unknown as FieldMapping[];

  await updateProgress(run, { phase: 'computing' });
  const desired = desiredMembersSql(await loadDesiredMembersSource(sync.id));
  const diffRun = { id: run.id, syncId: sync.id, mode: sync.mode };
  const { takenAt, ...plan } = await materializeRunDiff(db(), diffRun, desired);
  await db().$executeRaw`UPDATE sync_run SET total_members = ${plan.desired} WHERE id = ${run.id}::uuid`;
  publishRunUpdated(run);

  if (run.dryRun) {
    await updateProgress(run, { membersAdded: plan.toAdd, membersRemoved: plan.toRemove });
    return plan;
  }

  const platformAudienceId = await callPlatform(run, options.retryPolicy, () =>
    connector.ensureAudience({
      platformAudienceId: sync.platformAudienceId,
      name: sync.platformAudienceName ?? sync.name,
    }),
  );
  if (platformAudienceId !== sync.platformAudienceId) {
    await db().audienceSync.update({ where: { id: sync.id }, data: { platformAudienceId } });
  }

  const context: RunContext = {
    run,
    connector,
    mapping,
    platformAudienceId,
    plan,
    diffTakenAt: takenAt,
    options,
    done: 0,
  };
  if (plan.toAdd > 0) await sendAdds(context);
  if (plan.toUpdate > 0) await sendUpdates(context);
  if (plan.toRemove > 0) await sendRemoves(context);
  return plan;
}

function sendAdds(context: RunContext): Promise<void> {
  const { run, connector } = context;
  return upload(context, {
    phase: 'adding',
    total: context.plan.toAdd,
    readPage: (after) => readContactsPage(run, 'add', after, connector.maxBatchSize),
    keyOf: (row) => row.id,
    encode: (row) => encodeContact(context, row),
    send: (members, session) => connector.addMembers(context.platformAudienceId, members, session),
    commit: (members, outcome, previous) => [
      Prisma.sql`
        INSERT INTO synced_member (sync_id, contact_id, identifiers, synced_at)
        SELECT ${run.syncId}::uuid, contact_id, identifiers, ${context.diffTakenAt}::timestamp
        FROM unnest(${members.map((member) => member.contactId)}::bigint[],
                    ${members.map((member) => JSON.stringify(member.identifiers))}::jsonb[]) AS t(contact_id, identifiers)
        ON CONFLICT (sync_id, contact_id) DO UPDATE SET identifiers = EXCLUDED.identifiers, synced_at = EXCLUDED.synced_at`,
      clearRunDiffRange(run.id, 'add', previous, members.at(-1)!.contactId),
      ...recordPlatformJob(run, connector.platform, 'ADD', members, outcome),
    ],
  });
}

/** UPSERT: re-sends, as adds, the members whose mapped identifiers changed since they were synced. */
async function sendUpdates(context: RunContext): Promise<void> {
  const { run, connector } = context;
  await upload(context, {
    phase: 'updating',
    total: context.plan.toUpdate,
    readPage: (after) => readContactsPage(run, 'update', after, connector.maxBatchSize),
    keyOf: (row) => row.id,
    encode: (row) => {
      const member = encodeContact(context, row);
      return member && row.synced && sameIdentifiers(member.identifiers, row.synced) ? 'unchanged' : member;
    },
    send: (members, session) => connector.addMembers(context.platformAudienceId, members, session),
    commit: (members, outcome) => [
      Prisma.sql`
        UPDATE synced_member s SET identifiers = t.identifiers, synced_at = ${context.diffTakenAt}::timestamp
        FROM unnest(${members.map((member) => member.contactId)}::bigint[],
                    ${members.map((member) => JSON.stringify(member.identifiers))}::jsonb[]) AS t(contact_id, identifiers)
        WHERE s.sync_id = ${run.syncId}::uuid AND s.contact_id = t.contact_id`,
      ...recordPlatformJob(run, connector.platform, 'ADD', members, outcome),
    ],
  });
  // Candidates whose identifiers had not changed are checked: they stay out of the next run's candidates.
  await db().$executeRaw`
    UPDATE synced_member s SET synced_at = ${context.diffTakenAt}::timestamp
    FROM run_diff r
    WHERE r.run_id = ${run.id}::uuid AND r.action = 'update'
      AND s.sync_id = ${run.syncId}::uuid AND s.contact_id = r.contact_id AND s.synced_at < ${context.diffTakenAt}::timestamp`;
}

function encodeContact(context: RunContext, row: DiffContact): EncodedMember | null {
  const identifiers = context.connector.encode(row, context.mapping);
  return identifiers ? { contactId: row.id, identifiers } : null;
}

function sameIdentifiers(a: EncodedIdentifiers, b: EncodedIdentifiers): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

function sendRemoves(context: RunContext): Promise<void> {
  const { run, connector } = context;
  return upload(context, {
    phase: 'removing',
    total: context.plan.toRemove,
    readPage: (after) => readRemovesPage(run, after, connector.maxBatchSize),
    keyOf: (row) => row.contactId,
    encode: (row) => row,
    send: (members, session) => connector.removeMembers(context.platformAudienceId, members, session),
    commit: (members, outcome, previous) => [
      Prisma.sql`
        DELETE FROM synced_member
        WHERE sync_id = ${run.syncId}::uuid AND contact_id = ANY(${members.map((member) => member.contactId)}::bigint[])`,
      clearRunDiffRange(run.id, 'remove', previous, members.at(-1)!.contactId),
      ...recordPlatformJob(run, connector.platform, 'REMOVE', members, outcome),
    ],
  });
}

interface UploadSteps<Row> {
  phase: 'adding' | 'updating' | 'removing';
  /** Members the plan expects, for the platform's upload session. */
  total: number;
  readPage(after: bigint): Promise<Row[]>;
  keyOf(row: Row): bigint;
  /** Null for a member none of whose mapped identifiers is usable: it is counted invalid, not sent.
   * `unchanged` for an update candidate whose identifiers are those already synced: not sent. */
  encode(row: Row): EncodedMember | null | 'unchanged';
  send(members: EncodedMember[], session: UploadSession): Promise<BatchOutcome>;
  /** The statements that record an accepted batch's state, whose diff rows are those after contact
   * id `previous` up to its last member's; they commit together with the run's counters. */
  commit(members: EncodedMember[], outcome: BatchOutcome, previous: bigint): Prisma.Sql[];
}

/**
 * Sends one side of the diff in full batches. A batch is read ahead of the one being sent (while it
 * is sent), so each batch knows whether it is the upload's last; each accepted batch commits its
 * state and counters in one transaction.
 */
async function upload<Row>(context: RunContext, steps: UploadSteps<Row>): Promise<void> {
  const batchSize = context.connector.maxBatchSize;
  const session = uploadSession(steps.total);
  const pending: EncodedMember[] = [];
  let after = 0n;
  let exhausted = false;
  let unusable = 0;
  let unchanged = 0;

  // Fills `pending` with the batch after the next one, or up to the end of the diff.
  const readAhead = async () => {
    while (!exhausted && pending.length < 2 * batchSize) {
      const rows = await steps.readPage(after);
      if (rows.length === 0) {
        exhausted = true;
        break;
      }
      after = steps.keyOf(rows.at(-1)!);
      for (const row of rows) {
        const member = steps.encode(row);
        if (member === 'unchanged') unchanged++;
        else if (member) pending.push(member);
        else unusable++;
      }
      // A short page ended the scan: another read would only scan the rest of the audience again.
      if (rows.length < batchSize) exhausted = true;
    }
  };

  await readAhead();
  let sent = 0;
  let lastCommitted = 0n;
  // Each batch's commit runs while the next ones are read and sent; batches touch disjoint rows, so
  // two commits may run at once (the run's counters row takes them in turn).
  const committing: Promise<void>[] = [];
  try {
    while (pending.length > 0) {
      const batch = pending.splice(0, batchSize);
      // Whatever is still pending was read ahead in full: when nothing is, the diff is exhausted.
      // A retried batch is the same batch to the platform: same place in the upload session.
      const place = session.next(pending.length === 0);
      const [sending, reading] = await Promise.allSettled([
        callPlatform(context.run, context.options.retryPolicy, () => steps.send(batch, place)),
        readAhead(),
      ]);
      if (sending.status === 'rejected') throw sending.reason;
      if (reading.status === 'rejected') throw reading.reason;
      const outcome = sending.value;
      if (committing.length >= COMMITS_IN_FLIGHT) await committing.shift();
      if (outcome.refused) {
        // The platform refuses this kind of change as a whole (not these members): the rest of the
        // upload would be refused too. Everything left stays pending, and the run says why.
        await drain(committing);
        await refuseRest(context, Math.max(steps.total - sent, batch.length), outcome.refused, steps.phase);
        return;
      }
      sent += batch.length;
      membersSent.inc(
        { platform: context.connector.platform, action: METRIC_ACTIONS[steps.phase] },
        batch.length - outcome.invalid,
      );
      context.done += batch.length + unusable + unchanged;
      const statements = [
        ...steps.commit(batch, outcome, lastCommitted),
        progressUpdate(
          context,
          {
            [PHASE_COUNTERS[steps.phase]]: batch.length - outcome.invalid,
            invalid: outcome.invalid + unusable,
            invalidSamples: outcome.invalidSamples,
          },
          steps.phase,
          outcome.received,
        ),
        identifierCountsUpdate(context, batch),
      ];
      unusable = 0;
      unchanged = 0;
      lastCommitted = batch.at(-1)!.contactId;
      // The batch that started a platform job commits after the job's other batches: once the job
      // shows as running (and may be found finished), all of its members are recorded.
      if (outcome.platformJob?.started) await drain(committing);
      const commit = sqlDirect(...statements).then(() => afterBatch(context));
      // Awaited later; handled now, so that a failure before then is not an unhandled rejection.
      commit.catch(() => undefined);
      committing.push(commit);
    }
    await drain(committing);
  } catch (error) {
    // The batches being committed when another step failed: let them finish before the run is failed.
    await Promise.allSettled(committing);
    throw error;
  }
  if (unusable > 0 || unchanged > 0) {
    context.done += unusable + unchanged;
    await sqlDirect(progressUpdate(context, { invalid: unusable }, steps.phase));
  }
}

/** Batch commits that may run at once. */
const COMMITS_IN_FLIGHT = 2;

/** Waits for the commits in flight, oldest first; each leaves the list once it has succeeded. */
async function drain(committing: Promise<void>[]): Promise<void> {
  while (committing.length > 0) {
    await committing[0];
    committing.shift();
  }
}

const METRIC_ACTIONS = { adding: 'add', updating: 'update', removing: 'remove' } as const;
/** The run counter each phase's accepted members add to. */
const PHASE_COUNTERS = { adding: 'added', updating: 'updated', removing: 'removed' } as const;

/** Adds a sent batch's members to the run's counts per identifier type (EMAIL, PHONE…). */
function identifierCountsUpdate(context: RunContext, batch: EncodedMember[]) {
  const counts: Record<string, number> = {};
  for (const member of batch) {
    for (const type of Object.keys(member.identifiers)) counts[type] = (counts[type] ?? 0) + 1;
  }
  return Prisma.sql`
    UPDATE sync_run r
    SET identifier_counts = (
      SELECT COALESCE(jsonb_object_agg(type, total), '{}'::jsonb)
      FROM (SELECT type, sum(count::int) AS total
            FROM (SELECT * FROM jsonb_each_text(r.identifier_counts)
                  UNION ALL SELECT * FROM jsonb_each_text(${JSON.stringify(counts)}::jsonb)) AS t(type, count)
            GROUP BY type) AS s)
    WHERE r.id = ${context.run.id}::uuid`;
}

async function refuseRest(
  context: RunContext,
  refused: number,
  reason: string,
  phase: UploadSteps<unknown>['phase'],
): Promise<void> {
  context.done += refused;
  await sqlDirect(
    Prisma.sql`
      UPDATE sync_run SET members_refused = members_refused + ${refused}, refusal_reason = ${reason}
      WHERE id = ${context.run.id}::uuid`,
    progressUpdate(context, {}, phase),
  );
  afterBatch(context);
}

/** A platform call with retries; pauses are recorded on the run and shown live as phase `waiting`. */
function callPlatform<T>(run: SyncRun, policy: RetryPolicy, call: () => Promise<T>): Promise<T> {
  return callWithRetries(call, {
    policy,
    onRetry: (error) => {
      platformErrors.inc({ platform: error.details.platform, kind: 'retried' });
      return updateProgress(run, { phase: 'waiting' });
    },
    onWaited: (ms) => db().$executeRaw`UPDATE sync_run SET waited_ms = waited_ms + ${ms} WHERE id = ${run.id}::uuid`,
  });
}

/** One upload (a run's adds or its removes) as the platform sees it: a fresh id per execution, so
 * a resumed run never reuses a half-finished session. */
function uploadSession(estimatedTotal: number) {
  const id = randomUUID();
  let batchSeq = 0;
  return {
    next: (lastBatch: boolean): UploadSession => ({ id, batchSeq: ++batchSeq, lastBatch, estimatedTotal }),
  };
}

/** How many rejected rows a run keeps as examples. */
const MAX_INVALID_SAMPLES = 20;

/** The counters update committed with a batch's state, so counts stay exact across crashes. */
function progressUpdate(
  context: RunContext,
  delta: { added?: number; updated?: number; removed?: number; invalid?: number; invalidSamples?: string[] },
  phase: string,
  /** What the platform reported receiving; null leaves `members_received` as it is (null until one reports). */
  received: number | null = null,
) {
  const planned = context.plan.toAdd + context.plan.toUpdate + context.plan.toRemove;
  const progress = planned === 0 ? 1 : Math.min(context.done / planned, 1);
  return Prisma.sql`
    UPDATE sync_run
    SET members_added = members_added + ${delta.added ?? 0},
        members_removed = members_removed + ${delta.removed ?? 0},
        members_updated = members_updated + ${delta.updated ?? 0},
        members_invalid = members_invalid + ${delta.invalid ?? 0},
        invalid_samples = (invalid_samples || ${delta.invalidSamples ?? []}::text[])[1:${MAX_INVALID_SAMPLES}],
        members_received = COALESCE(members_received + ${received}::int, members_received, ${received}::int),
        phase = ${phase}, progress = ${progress}
    WHERE id = ${context.run.id}::uuid`;
}

function afterBatch(context: RunContext): void {
  publishRunUpdated(context.run);
}

async function updateProgress(
  run: SyncRun,
  data: Partial<Pick<SyncRun, 'phase' | 'totalMembers' | 'membersAdded' | 'membersRemoved'>>,
): Promise<void> {
  await db().syncRun.update({ where: { id: run.id }, data });
  publishRunUpdated(run);
}

interface Failure {
  errorMessage: string;
  errorDetails?: Prisma.InputJsonObject;
}

/** A message the user can act on; internal errors are logged, not shown. */
function describeFailure(run: SyncRun, error: unknown): Failure {
  if (error instanceof DestinationError) {
    platformErrors.inc({ platform: error.details.platform, kind: error.details.retryable ? 'gave_up' : 'fatal' });
    return { errorMessage: error.message, errorDetails: { ...error.details } as Prisma.InputJsonObject };
  }
  if (error instanceof MissingCredentialsError) return { errorMessage: error.message };
  logger.error({ err: error, runId: run.id, syncId: run.syncId }, 'Sync run failed on an internal error');
  return { errorMessage: `The gateway hit an internal error running this sync (run ${run.id}); it has been logged` };
}

async function finishRun(
  run: ClaimedRun,
  status: 'SUCCEEDED' | 'FAILED' | 'CANCELLED',
  outcome: { counts?: DiffCounts } & Partial<Failure>,
): Promise<void> {
  const finishedAt = new Date();
  const affectsSync = !run.dryRun && status !== 'CANCELLED';
  // The run's tasks end in the same transaction: no one sees a finished run whose task still runs,
  // and a crash cannot leave tasks running after their run was recorded as finished.
  const tasks = await db().$transaction(async (tx) => {
    const finished = await tx.syncRun.update({
      where: { id: run.id },
      data: {
        status,
        phase: status.toLowerCase(),
        progress: status === 'SUCCEEDED' ? 1 : undefined,
        finishedAt,
        leaseExpiresAt: null,
        errorMessage: outcome.errorMessage ?? null,
        errorDetails: outcome.errorDetails,
      },
    });
    await clearRunDiff(tx, run.id);
    if (affectsSync && status === 'SUCCEEDED') {
      const syncedCount = await tx.syncedMember.count({ where: { syncId: run.syncId } });
      await tx.audienceSync.update({
        where: { id: run.syncId },
        data: { lastSyncedAt: finishedAt, lastSyncedCount: syncedCount, statusError: null },
      });
      // Checked now, not against the status the run started with: a pause made meanwhile stands.
      await tx.audienceSync.updateMany({ where: { id: run.syncId, status: 'ERROR' }, data: { status: 'ACTIVE' } });
    } else if (affectsSync) {
      await tx.audienceSync.updateMany({
        where: { id: run.syncId, status: { in: ['ACTIVE', 'ERROR', 'DRAFT'] } },
        data: { status: 'ERROR', statusError: outcome.errorMessage ?? null },
      });
    }
    return setTasksStatus(tx, run.id, status === 'SUCCEEDED' ? 'COMPLETED' : 'FAILED', {
      result: {
        status,
        membersAdded: finished.membersAdded,
        membersRemoved: finished.membersRemoved,
        membersUpdated: finished.membersUpdated,
        membersInvalid: finished.membersInvalid,
        membersRefused: finished.membersRefused,
        totalMembers: finished.totalMembers,
        dryRun: finished.dryRun,
      },
      error: outcome.errorMessage ?? null,
    });
  });
  for (const task of tasks) publishTaskUpdated(task);
  publishRunUpdated(run);
  syncRunsFinished.inc({ status, platform: run.sync.destination.platform });
  logger.info({ runId: run.id, syncId: run.syncId, status }, 'Sync run finished');
}

/** Tasks follow the run they started. Returns the tasks changed, to announce once committed. */
async function setTasksStatus(
  client: Prisma.TransactionClient,
  runId: string,
  status: 'RUNNING' | 'COMPLETED' | 'FAILED',
  outcome?: { result: Prisma.InputJsonObject; error: string | null },
): Promise<{ id: string; workspaceId: string }[]> {
  return client.task.updateManyAndReturn({
    where: { runId, status: { in: ['QUEUED', 'RUNNING'] } },
    data: {
      status,
      ...(outcome ? { result: outcome.result, error: outcome.error, completedAt: new Date() } : {}),
    },
    select: { id: true, workspaceId: true },
  });
}
