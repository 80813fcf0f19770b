import { randomUUID } from 'node:crypto';
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
import { Prisma, type SyncRun } from '../generated/prisma/client.js';
import { logger } from '../infra/logger.js';
import { membersSent, platformErrors, syncRunsFinished } from '../infra/metrics.js';
import { desiredSide, loadDesiredMembersSource } from './desired-members.js';
import { completeDiffBasis, diffTrackingOf } from './change-tracking.js';
import {
  clearRunDiff,
  clearRunDiffRange,
  countSyncedMembers,
  materializeRunDiff,
  pagePlanFor,
  readContactsPage,
  readRemovesPage,
  type DiffCounts,
  type DiffContact,
} from './membership-diff.js';
import type { Clock } from '../infra/clock.js';
import type { RetryPolicy } from '../infra/retry-policy.js';
import { callWithRetries } from './platform-retry.js';
import { readPlatformAudienceAfterRun, recordPlatformRequest } from './platform-audience.js';
import { recordPlatformJob } from './platform-jobs.js';
import { publishRunUpdated, publishSyncUpdated, publishTaskUpdated } from '../infra/change-events.js';
import {
  addsToRecord,
  confirmBatch,
  recordAddsInDoubt,
  recordRemovesInDoubt,
  type BatchAction,
} from './batches-in-doubt.js';
import { RunCancelled, cancelRequested, cancelledMessage } from './cancel-run.js';
import { PLATFORM_NAMES, elapsed, trackRunActivity, type RunActivity } from './run-activity.js';
import {
  RunLost,
  checkFence,
  claimRun,
  fencedDirectTransaction,
  fencedSql,
  fencedTransaction,
  keepLease,
  type ClaimedRun,
  type RunFence,
  type RunLease,
} from './run-lease.js';

export interface RunOptions {
  retryPolicy: RetryPolicy;
  /** Today, for the destination's API version sunset. */
  clock: Clock;
  /** How long the run's claim lasts without a heartbeat before another worker may resume it. */
  leaseSeconds: number;
  /** DIFF_SPLIT_SPAN: the record span from which the diff is taken in two halves at once. */
  diffSplitSpan: bigint;
}

/** `busy`: another run of the same sync holds it; try again shortly. `lost`: this execution's lease
 * lapsed (or another execution claimed the run) and it stopped without writing; the run is resumed
 * by whoever claims it next. */
export type RunExecution = 'finished' | 'busy' | 'skipped' | 'lost';

/** One execution's hold on its run: every write goes through the fence, every platform call first
 * makes sure the lease is still held. */
interface Execution {
  run: ClaimedRun;
  fence: RunFence;
  lease: RunLease;
  activity: RunActivity;
  diffSplitSpan: bigint;
  /** The basis this execution's diff took (see change-tracking.ts), completed if the run applies all of it. */
  basis: string | null;
  /** Members of this execution's diff it left as they were: unusable, or refused by the platform. */
  left: number;
}

/**
 * Runs a queued sync run to its end. Safe to call more than once for one run (the job system is
 * at-least-once): a finished run is skipped, a run whose worker died is resumed. Each batch is
 * recorded in doubt before it is sent and confirmed once the destination accepted it, so a resumed
 * run (and every later one) knows what may have been applied and converges exactly.
 */
export async function executeSyncRun(runId: string, options: RunOptions): Promise<RunExecution> {
  const claim = await claimRun(runId, options.leaseSeconds);
  if (claim === 'busy' || claim === 'skipped') return claim;
  const { run, fence } = claim;
  for (const task of claim.tasks) publishTaskUpdated(task);
  publishRunUpdated(run);
  const execution: Execution = {
    run,
    fence,
    lease: keepLease(fence, options.leaseSeconds),
    activity: trackRunActivity(fence, () => publishRunUpdated(run)),
    diffSplitSpan: options.diffSplitSpan,
    basis: null,
    left: 0,
  };
  try {
    if (run.sync.deletedAt) {
      await finishRun(execution, 'CANCELLED', { errorMessage: 'The sync was deleted before this run started' });
      return 'finished';
    }
    // Asked to stop while no execution held it (its worker died): it stops before doing anything.
    if (run.cancelRequestedAt) {
      await finishRun(execution, 'CANCELLED', {});
      return 'finished';
    }
    try {
      const counts = await syncMembers(execution, options);
      // The destination's members are counted while the platform is read: this execution writes no
      // member after its last batch. A run with nothing to change leaves the platform's numbers as
      // the last read found them. Members still in doubt (a refused batch's, or those no mode of this
      // sync resolves) are not counted. A MIRROR run that applied all of its diff left one record
      // row, confirmed, per member desired when the diff was taken: those are not counted again.
      const counting = run.dryRun
        ? Promise.resolve(null)
        : run.sync.mode === 'MIRROR' && execution.left === 0
          ? Promise.resolve(counts.desired)
          : countSyncedMembers(run.syncId, execution.diffSplitSpan);
      // Awaited below; handled now, so that a failure while the platform is read is not an unhandled rejection.
      counting.catch(() => undefined);
      if (!run.dryRun && counts.toAdd + counts.toUpdate + counts.toRemove > 0) {
        await readPlatformAudienceAfterRun(run.syncId, options.clock);
      }
      await finishRun(execution, 'SUCCEEDED', { syncedCount: await counting });
    } catch (error) {
      if (error instanceof RunLost) throw error;
      if (error instanceof RunCancelled) await finishRun(execution, 'CANCELLED', {});
      else await finishRun(execution, 'FAILED', describeFailure(run, error));
    }
  } catch (error) {
    if (!(error instanceof RunLost)) throw error;
    logger.warn(
      { runId: run.id, syncId: run.syncId, leaseGeneration: fence.generation },
      'Lost the sync run: its lease lapsed or another execution claimed it; this execution stopped without writing',
    );
    return 'lost';
  } finally {
    execution.lease.stop();
    execution.activity.stop();
  }
  return 'finished';
}

interface RunContext extends Execution {
  connector: DestinationConnector;
  mapping: FieldMapping[];
  platformAudienceId: string;
  plan: DiffCounts;
  /** When the diff was taken: what this run records is recorded as synced then. */
  diffTakenAt: string;
  options: RunOptions;
  done: number;
}

async function syncMembers(execution: Execution, options: RunOptions): Promise<DiffCounts> {
  const { run, fence } = execution;
  const { sync } = run;
  const connector = connectorFor(sync.destination);
  checkApiVersion(sync.destination, options.clock.now());
  const mapping = sync.fieldMapping as unknown as FieldMapping[];

  const source = await loadDesiredMembersSource(sync.id);
  const diffRun = { id: run.id, syncId: sync.id, mode: sync.mode };
  const { takenAt, basis, followedChanges, ...plan } = await materializeRunDiff(
    diffRun,
    desiredSide(source),
    execution.diffSplitSpan,
    run.dryRun ? 'keep' : diffTrackingOf(sync, source),
    (sql) => checkFence(sql, fence),
  );
  execution.basis = basis;
  logger.debug({ runId: run.id, diff: followedChanges ? 'changes since the last run' : 'whole audience' }, 'Diff taken');
  await updateProgress(execution, {
    totalMembers: plan.desired,
    plannedAdds: plan.toAdd,
    plannedUpdates: plan.toUpdate,
    plannedRemoves: plan.toRemove,
    // Next, the platform audience is made ready.
    ...(run.dryRun ? {} : { phase: 'preparing' }),
  });

  if (await cancelRequested(run.id)) throw new RunCancelled(run.id);
  if (run.dryRun) {
    await updateProgress(execution, { membersAdded: plan.toAdd, membersRemoved: plan.toRemove });
    return plan;
  }

  const platformAudienceId = await callPlatform(
    execution,
    options.retryPolicy,
    () =>
      connector.ensureAudience({
        platformAudienceId: sync.platformAudienceId,
        name: sync.platformAudienceName ?? sync.name,
      }),
    `preparing the audience on ${PLATFORM_NAMES[connector.platform]}`,
  );
  if (platformAudienceId !== sync.platformAudienceId) {
    await fencedTransaction(fence, (tx) => tx.audienceSync.update({ where: { id: sync.id }, data: { platformAudienceId } }));
  }

  const context: RunContext = {
    ...execution,
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
  execution.left = context.left;
  return plan;
}

function sendAdds(context: RunContext): Promise<void> {
  const { run, connector } = context;
  return upload(context, {
    phase: 'adding',
    action: 'add',
    total: context.plan.toAdd,
    readPage: (after) =>
      readContactsPage(run, 'add', after, connector.maxBatchSize, pagePlanFor(context.plan.toAdd, context.plan.desired)),
    keyOf: (row) => row.id,
    isRecorded: (row) => row.synced !== null,
    // A member in doubt is confirmed by sending again what its batch sent, so that the record keeps
    // the identifiers the destination may hold; UPSERT sends the current ones (its update).
    encode: (row) =>
      row.synced && run.sync.mode !== 'UPSERT' ? { contactId: row.id, identifiers: row.synced } : encodeContact(context, row),
    unusableReason: (row) => unusableReason(context, row),
    send: (members, session) => connector.addMembers(context.platformAudienceId, members, session),
    confirm: (members, outcome, previous) => [
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
    action: 'add',
    total: context.plan.toUpdate,
    readPage: (after) =>
      readContactsPage(run, 'update', after, connector.maxBatchSize, pagePlanFor(context.plan.toUpdate, context.plan.desired)),
    keyOf: (row) => row.id,
    isRecorded: () => true,
    unusableReason: (row) => unusableReason(context, row),
    encode: (row) => {
      const member = encodeContact(context, row);
      return member && row.synced && sameIdentifiers(member.identifiers, row.synced) ? 'unchanged' : member;
    },
    send: (members, session) => connector.addMembers(context.platformAudienceId, members, session),
    confirm: (members, outcome) => recordPlatformJob(run, connector.platform, 'ADD', members, outcome),
  });
  // Candidates whose identifiers had not changed are checked: they stay out of the next run's candidates.
  await fencedSql(
    context.fence,
    Prisma.sql`
      UPDATE synced_member s SET synced_at = ${context.diffTakenAt}::timestamp
      FROM run_diff r
      WHERE r.run_id = ${run.id}::uuid AND r.action = 'update'
        AND s.sync_id = ${run.syncId}::uuid AND s.contact_id = r.contact_id AND s.synced_at < ${context.diffTakenAt}::timestamp`,
  );
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
    action: 'remove',
    total: context.plan.toRemove,
    // The members synced when the diff was taken: the removes, and the desired ones not added.
    readPage: (after) =>
      readRemovesPage(
        run,
        after,
        connector.maxBatchSize,
        pagePlanFor(context.plan.toRemove, context.plan.toRemove + context.plan.desired - context.plan.toAdd),
      ),
    keyOf: (row) => row.contactId,
    encode: (row) => row,
    send: (members, session) => connector.removeMembers(context.platformAudienceId, members, session),
    confirm: (members, outcome, previous) => [
      clearRunDiffRange(run.id, 'remove', previous, members.at(-1)!.contactId),
      ...recordPlatformJob(run, connector.platform, 'REMOVE', members, outcome),
    ],
  });
}

interface UploadSteps<Row> {
  phase: 'adding' | 'updating' | 'removing';
  /** What the batches do to the destination's members, as recorded in doubt. */
  action: BatchAction;
  /** Members the plan expects, for the platform's upload session. */
  total: number;
  readPage(after: bigint): Promise<Row[]>;
  keyOf(row: Row): bigint;
  /** Adds: whether the member already has a synced_member row (in doubt, or an update's). */
  isRecorded?(row: Row): boolean;
  /** Null for a member none of whose mapped identifiers is usable: it is counted unusable (with
   * `unusableReason`), not sent. `unchanged` for an update candidate whose identifiers are those
   * already synced: not sent. */
  encode(row: Row): EncodedMember | null | 'unchanged';
  unusableReason?(row: Row): UnusableReason;
  send(members: EncodedMember[], session: UploadSession): Promise<BatchOutcome>;
  /** The statements, besides the batch's confirmation and counters, that record an accepted batch,
   * whose diff rows are those after contact id `previous` up to its last member's. */
  confirm(members: EncodedMember[], outcome: BatchOutcome, previous: bigint): Prisma.Sql[];
}

/**
 * Sends one side of the diff in full batches, each through three steps: recorded in doubt, sent,
 * confirmed (with its counters, in one transaction). A batch is read two ahead of the one being
 * sent, so each batch knows whether it is the upload's last, and the next batch is recorded while
 * one is sent; confirmations run while the next batches are sent. Every step is fenced.
 */
async function upload<Row>(context: RunContext, steps: UploadSteps<Row>): Promise<void> {
  const batchSize = context.connector.maxBatchSize;
  const session = uploadSession(steps.total);
  const pending: EncodedMember[] = [];
  let after = 0n;
  let exhausted = false;
  let unusable: Record<string, number> = {};
  let unchanged = 0;
  // The contact ids, among those pending, of adds that already have a synced_member row.
  const resent = new Set<bigint>();

  // Fills `pending` with two batches, or up to the end of the diff.
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
        else if (member) {
          pending.push(member);
          if (steps.isRecorded?.(row)) resent.add(member.contactId);
        } else {
          const reason = steps.unusableReason?.(row) ?? 'UNUSABLE_VALUE';
          unusable[reason] = (unusable[reason] ?? 0) + 1;
        }
      }
      // A short page ended the scan: another read would only scan the rest of the audience again.
      if (rows.length < batchSize) exhausted = true;
    }
  };
  const recorded = async (statement: Prisma.Sql): Promise<bigint> => {
    const [[batch]] = (await fencedSql<{ id: string }>(context.fence, statement)) as [[{ id: string }]];
    return BigInt(batch.id);
  };
  const record = async (members: EncodedMember[]): Promise<bigint> => {
    if (steps.action === 'remove') return recorded(recordRemovesInDoubt(context.run, members));
    const adds = addsToRecord(members, resent);
    try {
      return await recorded(recordAddsInDoubt(context.run, adds, context.diffTakenAt, 'fail'));
    } catch (error) {
      // A member was recorded since its page was read (a failed platform job's removal undone
      // meanwhile): the batch is recorded again, its conflicts resolved, in a transaction of its own.
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
      return recorded(recordAddsInDoubt(context.run, adds, context.diffTakenAt, 'update'));
    }
  };
  // Awaited later; handled now, so that a failure before then is not an unhandled rejection.
  const handled = <T>(promise: Promise<T>) => {
    promise.catch(() => undefined);
    return promise;
  };

  // The side's phase is shown as it starts, with the progress made so far.
  await fencedSql(context.fence, countersUpdate(context, {}, steps.phase));
  afterBatch(context);
  const batches = Math.max(1, Math.ceil(steps.total / batchSize));
  const platformName = PLATFORM_NAMES[context.connector.platform];

  await readAhead();
  let batch = pending.splice(0, batchSize);
  let recording = batch.length > 0 ? handled(record(batch)) : null;
  // Checked before each batch is sent, while it is recorded: a cancelled run stops once what it sent
  // is confirmed. The batch recorded meanwhile stays in doubt unsent; the next run resolves it, as
  // after a crash.
  let cancelling = handled(cancelRequested(context.run.id));
  let sent = 0;
  let lastConfirmed = 0n;
  const confirming: Promise<void>[] = [];
  try {
    while (recording) {
      const [batchId, cancelled] = await Promise.all([recording, cancelling]);
      if (cancelled) {
        await drain(confirming);
        throw new RunCancelled(context.run.id);
      }
      // Whatever is still pending was read ahead in full: when nothing is, the diff is exhausted.
      // A retried batch is the same batch to the platform: same place in the upload session.
      const place = session.next(pending.length === 0);
      const sending = batch;
      batch = pending.splice(0, batchSize);
      recording = batch.length > 0 ? handled(record(batch)) : null;
      const what = `${steps.phase}: batch ${place.batchSeq} of ${Math.max(batches, place.batchSeq)} to ${platformName}`;
      const [outcome, reading] = await Promise.allSettled([
        callPlatform(context, context.options.retryPolicy, () => steps.send(sending, place), what),
        readAhead(),
      ]);
      if (outcome.status === 'rejected') throw outcome.reason;
      if (reading.status === 'rejected') throw reading.reason;
      if (confirming.length >= CONFIRMATIONS_IN_FLIGHT) await confirming.shift();
      if (outcome.value.refused) {
        // The platform refuses this kind of change as a whole (not these members): the rest of the
        // upload would be refused too. Everything left stays pending (this batch stays in doubt),
        // and the run says why.
        await drain(confirming);
        await refuseRest(context, Math.max(steps.total - sent, sending.length), outcome.value.refused, steps.phase);
        return;
      }
      sent += sending.length;
      const confirmation = confirmSent(context, steps, sending, batchId, outcome.value, lastConfirmed, {
        unusable,
        unchanged,
      });
      unusable = {};
      unchanged = 0;
      lastConfirmed = sending.at(-1)!.contactId;
      // The batch that started a platform job commits after the job's other batches: once the job
      // shows as running (and may be found finished), all of its members are recorded.
      if (outcome.value.platformJob?.started) await drain(confirming);
      confirming.push(handled(confirmation()));
      if (recording) cancelling = handled(cancelRequested(context.run.id));
    }
    await drain(confirming);
  } catch (error) {
    // The steps in flight when another one failed: let them end before the run is failed.
    await Promise.allSettled([...confirming, recording, cancelling]);
    throw error;
  }
  if (total(unusable) > 0 || unchanged > 0) {
    context.done += total(unusable) + unchanged;
    context.left += total(unusable);
    await fencedSql(context.fence, countersUpdate(context, { unusable }, steps.phase));
  }
}

/** PostgreSQL's error code for a duplicate key. */
const UNIQUE_VIOLATION = '23505';

/** Batch confirmations that may run at once. */
const CONFIRMATIONS_IN_FLIGHT = 2;

/** The transaction that records a batch the destination accepted: its confirmation, its diff rows
 * done, and the run's counters (members skipped while reading it count as done too). */
function confirmSent<Row>(
  context: RunContext,
  steps: UploadSteps<Row>,
  batch: EncodedMember[],
  batchId: bigint,
  outcome: BatchOutcome,
  previous: bigint,
  skipped: { unusable: Record<string, number>; unchanged: number },
): () => Promise<void> {
  membersSent.inc(
    { platform: context.connector.platform, action: METRIC_ACTIONS[steps.phase] },
    batch.length - outcome.invalid,
  );
  context.done += batch.length + total(skipped.unusable) + skipped.unchanged;
  context.left += total(skipped.unusable);
  const statements = [
    ...confirmBatch(context.run, steps.action, batchId, batch),
    ...steps.confirm(batch, outcome, previous),
    ...recordPlatformRequest(context.run, batchId, outcome),
    countersUpdate(
      context,
      {
        [PHASE_COUNTERS[steps.phase]]: batch.length - outcome.invalid,
        invalid: outcome.invalid,
        unusable: skipped.unusable,
        invalidSamples: outcome.invalidSamples,
        identifierCounts: identifierCounts(batch),
      },
      steps.phase,
      outcome.received,
    ),
  ];
  return async () => {
    await fencedSql(context.fence, ...statements);
    afterBatch(context);
  };
}

/** Waits for the confirmations in flight, oldest first; each leaves the list once it has succeeded. */
async function drain(confirming: Promise<void>[]): Promise<void> {
  while (confirming.length > 0) {
    await confirming[0];
    confirming.shift();
  }
}

const METRIC_ACTIONS = { adding: 'add', updating: 'update', removing: 'remove' } as const;
/** The run counter each phase's accepted members add to. */
const PHASE_COUNTERS = { adding: 'added', updating: 'updated', removing: 'removed' } as const;

/** A sent batch's members per identifier type (EMAIL, PHONE…). */
function identifierCounts(batch: EncodedMember[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const member of batch) {
    for (const type in member.identifiers) counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

async function refuseRest(
  context: RunContext,
  refused: number,
  reason: string,
  phase: UploadSteps<unknown>['phase'],
): Promise<void> {
  context.done += refused;
  context.left += refused;
  await fencedSql(
    context.fence,
    Prisma.sql`
      UPDATE sync_run SET members_refused = members_refused + ${refused}, refusal_reason = ${reason}
      WHERE id = ${context.run.id}::uuid`,
    countersUpdate(context, {}, phase),
  );
  afterBatch(context);
}

/**
 * A platform call with retries; pauses are recorded on the run and shown live as phase `waiting`.
 * Every attempt first makes sure the execution still holds its run: one that lost it sends nothing.
 */
function callPlatform<T>(execution: Execution, policy: RetryPolicy, call: () => Promise<T>, what: string): Promise<T> {
  let attempt = 0;
  return callWithRetries(
    async () => {
      await execution.lease.ensureHeld();
      const retry = ++attempt > 1 ? `, attempt ${attempt}` : '';
      execution.activity.set((seconds) => `${what}${retry}${elapsed(seconds)}`);
      return call();
    },
    {
      policy,
      onRetry: (error, waitMs) => {
        platformErrors.inc({ platform: error.details.platform, kind: 'retried' });
        const platform = PLATFORM_NAMES[error.details.platform];
        const waitSeconds = Math.ceil(waitMs / 1000);
        execution.activity.set((seconds) => `waiting ${Math.max(waitSeconds - seconds, 0)} s for ${platform}`);
        return updateProgress(execution, { phase: 'waiting' });
      },
      onWaited: (ms) =>
        fencedSql(execution.fence, Prisma.sql`UPDATE sync_run SET waited_ms = waited_ms + ${ms} WHERE id = ${execution.run.id}::uuid`),
    },
  );
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

/** Why the mapping cannot send a member: none of its mapped fields has a value, or none of the values
 * passes the platform's rules. */
export type UnusableReason = 'NO_MAPPED_VALUE' | 'UNUSABLE_VALUE';

function unusableReason(context: RunContext, row: DiffContact): UnusableReason {
  return context.mapping.some(({ sourceField }) => row[sourceField]) ? 'UNUSABLE_VALUE' : 'NO_MAPPED_VALUE';
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((sum, count) => sum + count, 0);

/** A jsonb object of counts with `delta` added, key by key. */
function mergedCounts(column: Prisma.Sql, delta: Record<string, number>): Prisma.Sql {
  return Prisma.sql`(
    SELECT COALESCE(jsonb_object_agg(type, total), '{}'::jsonb)
    FROM (SELECT type, sum(count::int) AS total
          FROM (SELECT * FROM jsonb_each_text(${column})
                UNION ALL SELECT * FROM jsonb_each_text(${JSON.stringify(delta)}::jsonb)) AS t(type, count)
          GROUP BY type) AS s)`;
}

/** The counters update committed with a batch's confirmation, so counts stay exact across crashes. */
function countersUpdate(
  context: RunContext,
  delta: {
    added?: number;
    updated?: number;
    removed?: number;
    invalid?: number;
    invalidSamples?: string[];
    identifierCounts?: Record<string, number>;
    unusable?: Record<string, number>;
  },
  phase: string,
  /** What the platform reported receiving; null leaves `members_received` as it is (null until one reports). */
  received: number | null = null,
) {
  const planned = context.plan.toAdd + context.plan.toUpdate + context.plan.toRemove;
  const progress = planned === 0 ? 1 : Math.min(context.done / planned, 1);
  return Prisma.sql`
    UPDATE sync_run r
    SET members_added = members_added + ${delta.added ?? 0},
        members_removed = members_removed + ${delta.removed ?? 0},
        members_updated = members_updated + ${delta.updated ?? 0},
        members_invalid = members_invalid + ${delta.invalid ?? 0},
        members_unusable = members_unusable + ${total(delta.unusable ?? {})},
        unusable_counts = ${mergedCounts(Prisma.sql`r.unusable_counts`, delta.unusable ?? {})},
        invalid_samples = (invalid_samples || ${delta.invalidSamples ?? []}::text[])[1:${MAX_INVALID_SAMPLES}],
        members_received = COALESCE(members_received + ${received}::int, members_received, ${received}::int),
        identifier_counts = ${mergedCounts(Prisma.sql`r.identifier_counts`, delta.identifierCounts ?? {})},
        phase = ${phase}, progress = ${progress}
    WHERE id = ${context.run.id}::uuid`;
}

function afterBatch(context: RunContext): void {
  publishRunUpdated(context.run);
}

/** The sync_run column of each field updateProgress writes. */
const PROGRESS_COLUMNS = {
  phase: 'phase',
  totalMembers: 'total_members',
  plannedAdds: 'planned_adds',
  plannedUpdates: 'planned_updates',
  plannedRemoves: 'planned_removes',
  membersAdded: 'members_added',
  membersRemoved: 'members_removed',
} as const;

/** Fenced, like every write of the run; in one statement, without Prisma's round trips. */
async function updateProgress(execution: Execution, data: Partial<Pick<SyncRun, keyof typeof PROGRESS_COLUMNS>>): Promise<void> {
  const assignments = Object.entries(data).map(
    ([field, value]) => Prisma.sql`${Prisma.raw(PROGRESS_COLUMNS[field as keyof typeof PROGRESS_COLUMNS])} = ${value}`,
  );
  await fencedSql(
    execution.fence,
    Prisma.sql`UPDATE sync_run SET ${Prisma.join(assignments)} WHERE id = ${execution.run.id}::uuid`,
  );
  publishRunUpdated(execution.run);
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

/** A timestamp(3) column's value for `date`: its UTC wall time (a designated zone is ignored by the cast). */
const utc = (date: Date) => Prisma.sql`${date.toISOString()}::timestamp`;

/**
 * Ends the run, fenced: a run that another execution holds, or that has ended, is left as it is. In one
 * transaction on a direct connection: each statement is one round trip, where Prisma's took four.
 */
async function finishRun(
  execution: Execution,
  status: 'SUCCEEDED' | 'FAILED' | 'CANCELLED',
  outcome: { syncedCount?: number | null } & Partial<Failure>,
): Promise<void> {
  const { run } = execution;
  const finishedAt = new Date();
  const affectsSync = !run.dryRun && status !== 'CANCELLED';
  /** The members the destination holds for certain, counted by a run that succeeded. */
  const syncedCount = outcome.syncedCount ?? null;
  const errorMessage = outcome.errorMessage ?? null;
  // The run's tasks end in the same transaction: no one sees a finished run whose task still runs,
  // and a crash cannot leave tasks running after their run was recorded as finished.
  const tasks = await fencedDirectTransaction(execution.fence, async (sql) => {
    type Finished = Pick<
      SyncRun,
      'membersAdded' | 'membersRemoved' | 'membersUpdated' | 'membersInvalid' | 'membersRefused' | 'totalMembers' | 'dryRun'
    > & { cancelledByName: string | null };
    const [finished] = await sql<Finished>(Prisma.sql`
      UPDATE sync_run
      SET status = ${status}::"SyncRunStatus", phase = ${status.toLowerCase()},
          progress = ${status === 'SUCCEEDED' ? Prisma.sql`1` : Prisma.sql`progress`},
          finished_at = ${utc(finishedAt)}, lease_expires_at = NULL, activity = NULL, error_message = ${errorMessage},
          error_details = ${outcome.errorDetails ? Prisma.sql`${JSON.stringify(outcome.errorDetails)}::jsonb` : Prisma.sql`error_details`}
      WHERE id = ${run.id}::uuid
      RETURNING members_added AS "membersAdded", members_removed AS "membersRemoved", members_updated AS "membersUpdated",
                members_invalid AS "membersInvalid", members_refused AS "membersRefused", total_members AS "totalMembers",
                dry_run AS "dryRun", cancelled_by_name AS "cancelledByName"`);
    await sql(clearRunDiff(run.id));
    // Members left unusable or refused stay different from what the audience asks, with no change to
    // find them by: the next run diffs in full.
    if (status === 'SUCCEEDED' && execution.basis && execution.left === 0) {
      await sql(completeDiffBasis(run.syncId, execution.basis, run.sync.mode === 'MIRROR' ? syncedCount : null));
    }
    if (syncedCount !== null) {
      // The status is checked now, not against the one the run started with: a pause made meanwhile stands.
      await sql(Prisma.sql`
        UPDATE audience_sync
        SET last_synced_at = ${utc(finishedAt)}, last_synced_count = ${syncedCount}, status_error = NULL,
            status = CASE WHEN status = 'ERROR' THEN 'ACTIVE'::"SyncStatus" ELSE status END, updated_at = ${utc(finishedAt)}
        WHERE id = ${run.syncId}::uuid`);
    } else if (affectsSync) {
      await sql(Prisma.sql`
        UPDATE audience_sync SET status = 'ERROR', status_error = ${errorMessage}, updated_at = ${utc(finishedAt)}
        WHERE id = ${run.syncId}::uuid AND status IN ('ACTIVE', 'ERROR', 'DRAFT')`);
    }
    const { cancelledByName, ...counts } = finished!;
    const result = { status, ...counts };
    const taskError = status === 'CANCELLED' && !errorMessage ? cancelledMessage({ cancelledByName }) : errorMessage;
    return sql<{ id: string; workspaceId: string }>(Prisma.sql`
      UPDATE task
      SET status = ${status === 'SUCCEEDED' ? 'COMPLETED' : 'FAILED'}::"TaskStatus", result = ${JSON.stringify(result)}::jsonb,
          error = ${taskError}, completed_at = ${utc(new Date())}
      WHERE run_id = ${run.id}::uuid AND status IN ('QUEUED', 'RUNNING')
      RETURNING id, workspace_id AS "workspaceId"`);
  });
  for (const task of tasks) publishTaskUpdated(task);
  publishRunUpdated(run);
  if (affectsSync) publishSyncUpdated({ id: run.syncId, workspaceId: run.workspaceId });
  syncRunsFinished.inc({ status, platform: run.sync.destination.platform });
  logger.info({ runId: run.id, syncId: run.syncId, status }, 'Sync run finished');
}
