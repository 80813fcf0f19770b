import { randomUUID } from 'node:crypto';
import { db } from '../infra/db.js';
import {
  DestinationError,
  type BatchOutcome,
  type DestinationConnector,
  type EncodedMember,
  type PlatformJobState,
} from '../destinations/destination.js';
import { MissingCredentialsError, connectorFor } from '../destinations/registry.js';
import { Prisma } from '../generated/prisma/client.js';
import type { Platform } from '../generated/prisma/enums.js';
import { publishSyncUpdated } from '../infra/change-events.js';
import { logger } from '../infra/logger.js';
import { forgetDiffBasis } from './change-tracking.js';

// Platforms that apply an upload later, in a job of their own (the Google Ads API), report the job
// with each batch added to it. Each batch's members are recorded against the job (platform_job_member)
// in the transaction that records them as synced; the batch that starts the job marks it RUNNING.
// The job is followed here until it ends: a failed job's members, or those of a job its run never
// started, are recorded as they were before. The members are kept only while the job is open; jobs
// of deleted syncs go with the sync's other state (src/sync/cleanup.ts) and are not checked meanwhile.

export type PlatformJobAction = 'ADD' | 'REMOVE';

/** Slowest pace of checks on one job: Google's jobs take from minutes to a day. */
const MAX_CHECK_INTERVAL_SECONDS = 30 * 60;
/** Jobs checked per pass; the rest wait for the next pass. */
const CHECKS_PER_PASS = 100;
/** Members one statement un-records (or deletes) at most when a job ends: a million-member job
 * goes in short statements, without one huge transaction. */
const JOB_MEMBER_CHUNK_ROWS = 10_000;
/** Why a job its run never started is undone. */
const NEVER_STARTED = 'the run that sent it ended before starting it, so Google never applied it';

/** The statements recording a batch's members against the job the platform added them to (and,
 * for the batch that started the job, that it runs), to commit with the batch's state; none when
 * the platform applied the batch at once. */
export function recordPlatformJob(
  run: { id: string; syncId: string },
  platform: Platform,
  action: PlatformJobAction,
  members: EncodedMember[],
  outcome: BatchOutcome,
): Prisma.Sql[] {
  const job = outcome.platformJob;
  if (!job) return [];
  const contactIds = members.map((member) => member.contactId);
  // A removal's identifiers are kept, to record the member again if the job fails.
  const stored =
    action === 'REMOVE'
      ? Prisma.sql`unnest(${contactIds}::bigint[], ${members.map((member) => JSON.stringify(member.identifiers))}::jsonb[])`
      : Prisma.sql`unnest(${contactIds}::bigint[], NULL::jsonb[])`;
  return [
    Prisma.sql`
      INSERT INTO platform_job AS j (id, sync_id, run_id, platform, resource_name, action, status, member_count)
      VALUES (${randomUUID()}::uuid, ${run.syncId}::uuid, ${run.id}::uuid, ${platform}::"Platform",
              ${job.resourceName}, ${action}, ${job.started ? 'RUNNING' : 'PENDING'}::"PlatformJobStatus", ${members.length})
      ON CONFLICT (sync_id, resource_name) DO UPDATE
      SET member_count = j.member_count + EXCLUDED.member_count,
          status = CASE WHEN j.status = 'PENDING' THEN EXCLUDED.status ELSE j.status END`,
    Prisma.sql`
      INSERT INTO platform_job_member (job_id, contact_id, identifiers)
      SELECT j.id, t.contact_id, t.identifiers
      FROM platform_job j, ${stored} AS t(contact_id, identifiers)
      WHERE j.sync_id = ${run.syncId}::uuid AND j.resource_name = ${job.resourceName}
      ON CONFLICT (job_id, contact_id) DO UPDATE SET identifiers = EXCLUDED.identifiers`,
  ];
}

interface ClaimedJob {
  id: string;
  sync_id: string;
  resource_name: string;
  status: 'PENDING' | 'RUNNING';
}

/**
 * One pass over the platform jobs that are due a check: those running, and those still pending
 * whose run is over (it died, or failed, before starting the job). A job is due `minIntervalMs` after
 * it was created, then each time half its age has passed since the last check (at most every 30
 * minutes): checks thin out as a job takes longer. Claiming a job sets its `checkedAt`, in one
 * update that skips rows another worker holds, so no two workers check one job at once.
 *
 * Returns the syncs to run again now: those whose last run left changes pending because a job was
 * running on their list, when that job has succeeded.
 */
export async function checkPlatformJobs(options: { minIntervalMs: number }): Promise<{ syncsToRun: string[] }> {
  const minSeconds = options.minIntervalMs / 1000;
  const claimed = await db().$queryRaw<ClaimedJob[]>`
    UPDATE platform_job j SET checked_at = now()
    FROM (
      SELECT id FROM platform_job
      WHERE (status = 'RUNNING'
             OR (status = 'PENDING' AND NOT EXISTS (SELECT 1 FROM sync_run r
                                                    WHERE r.id = platform_job.run_id AND r.status = 'RUNNING')))
        AND NOT EXISTS (SELECT 1 FROM audience_sync s WHERE s.id = platform_job.sync_id AND s.deleted_at IS NOT NULL)
        AND COALESCE(checked_at, created_at) <= now() - LEAST(
              make_interval(secs => ${MAX_CHECK_INTERVAL_SECONDS}),
              GREATEST(make_interval(secs => ${minSeconds}), (COALESCE(checked_at, created_at) - created_at) / 2))
      ORDER BY COALESCE(checked_at, created_at)
      LIMIT ${CHECKS_PER_PASS}
      FOR UPDATE SKIP LOCKED
    ) due
    WHERE j.id = due.id
    RETURNING j.id, j.sync_id, j.resource_name, j.status`;

  const connectors = new Map<string, Promise<DestinationConnector | null>>();
  const succeededOn = new Set<string>();
  const endedOn = new Set<string>();
  for (const job of claimed) {
    if (!connectors.has(job.sync_id)) connectors.set(job.sync_id, connectorOf(job.sync_id));
    const connector = await connectors.get(job.sync_id);
    const state = connector && (await stateOf(connector, job));
    let ended = false;
    if (state?.status === 'SUCCEEDED' && (await markSucceeded(job.id))) {
      succeededOn.add(job.sync_id);
      ended = true;
    }
    if (state?.status === 'FAILED') ended = await undoJob(job.id, state.reason);
    if (state?.status === 'PENDING' && job.status === 'PENDING') ended = await undoJob(job.id, NEVER_STARTED);
    if (ended) endedOn.add(job.sync_id);
    // Started by a run that ended before recording so: followed from now on.
    if (state?.status === 'RUNNING' && job.status === 'PENDING') {
      await db().$executeRaw`UPDATE platform_job SET status = 'RUNNING' WHERE id = ${job.id}::uuid AND status = 'PENDING'`;
    }
  }
  await announceSettlement([...endedOn]);
  return { syncsToRun: succeededOn.size > 0 ? await syncsWaitingOnList([...succeededOn]) : [] };
}

/** A job that ended changes its sync's pendingChanges and settledAt (and, failed, its status): its
 * subscribers read the sync again. */
async function announceSettlement(syncIds: string[]): Promise<void> {
  if (syncIds.length === 0) return;
  const syncs = await db().audienceSync.findMany({ where: { id: { in: syncIds } }, select: { id: true, workspaceId: true } });
  for (const sync of syncs) publishSyncUpdated(sync);
}

/** The connector of a sync that still exists: read again here, just before the platform is asked,
 * since the sync may have been deleted after its jobs were claimed. */
async function connectorOf(syncId: string): Promise<DestinationConnector | null> {
  const sync = await db().audienceSync.findUnique({ where: { id: syncId }, include: { destination: true } });
  if (!sync || sync.deletedAt) return null;
  try {
    return connectorFor(sync.destination);
  } catch (error) {
    if (!(error instanceof MissingCredentialsError || error instanceof DestinationError)) throw error;
    logger.warn({ syncId, reason: error.message }, 'Cannot check platform jobs of the sync yet');
    return null;
  }
}

/** The job's state, or null when the platform cannot say now (it is checked again later). */
async function stateOf(connector: DestinationConnector, job: ClaimedJob): Promise<PlatformJobState | null> {
  if (!connector.checkJob) return null;
  try {
    return await connector.checkJob(job.resource_name);
  } catch (error) {
    if (!(error instanceof DestinationError)) throw error;
    logger.warn({ platformJobId: job.id, syncId: job.sync_id, reason: error.message }, 'Could not check a platform job');
    return null;
  }
}

async function markSucceeded(jobId: string): Promise<boolean> {
  const marked = await db().$executeRaw`
    UPDATE platform_job SET status = 'SUCCEEDED', finished_at = now()
    WHERE id = ${jobId}::uuid AND status IN ('PENDING', 'RUNNING')`;
  // Members a pass leaves (it died midway) go with the housekeeping.
  let deleted: number;
  do {
    deleted = await db().$executeRaw`
      DELETE FROM platform_job_member WHERE job_id = ${jobId}::uuid AND contact_id = ANY(ARRAY(
        SELECT contact_id FROM platform_job_member WHERE job_id = ${jobId}::uuid
        LIMIT ${JOB_MEMBER_CHUNK_ROWS} FOR UPDATE SKIP LOCKED))`;
  } while (deleted > 0);
  return marked === 1;
}

/**
 * Records the job's members as they were before it, then marks it failed: an add's members are
 * no longer synced (the next run sends them again), a removal's members are synced again (the
 * next run removes them again, if they are still to go). Members a later run has recorded since
 * are left as that run recorded them. Each chunk takes its members off the job and undoes them in
 * one statement, so a pass that dies midway leaves the rest to the next check. The sync shows the
 * failure until a run succeeds. Returns whether this call marked the job failed.
 */
async function undoJob(jobId: string, reason: string): Promise<boolean> {
  let undone: number;
  do {
    undone = await undoChunk(jobId);
  } while (undone > 0);
  const [job] = await db().$queryRaw<FailedJob[]>`
    SELECT sync_id, resource_name, action, member_count AS count, created_at FROM platform_job WHERE id = ${jobId}::uuid`;
  if (!job) return false;
  // One statement, so that nobody sees the job failed while its sync does not say so yet.
  const marked = await db().$queryRaw<unknown[]>`
    WITH failed AS (
      UPDATE platform_job SET status = 'FAILED', error_message = ${reason}, finished_at = now()
      WHERE id = ${jobId}::uuid AND status IN ('PENDING', 'RUNNING')
      RETURNING sync_id),
    erred AS (
      UPDATE audience_sync s SET status = 'ERROR', status_error = ${failureMessage(job, reason)}
      FROM failed WHERE s.id = failed.sync_id AND s.status IN ('ACTIVE', 'ERROR', 'DRAFT'))
    SELECT 1 FROM failed`;
  if (marked.length === 0) return false;
  logger.info({ platformJobId: jobId }, 'A platform job failed or was never started; its members were recorded as not applied');
  return true;
}

/** Takes up to a chunk of members off the job and undoes what it did to them; returns how many. */
async function undoChunk(jobId: string): Promise<number> {
  const [row] = await db().$queryRaw<{ count: number }[]>`
    WITH taken AS (
      DELETE FROM platform_job_member WHERE job_id = ${jobId}::uuid AND contact_id = ANY(ARRAY(
        SELECT contact_id FROM platform_job_member WHERE job_id = ${jobId}::uuid
        LIMIT ${JOB_MEMBER_CHUNK_ROWS} FOR UPDATE SKIP LOCKED))
      RETURNING contact_id, identifiers),
    job AS (SELECT sync_id, action, created_at FROM platform_job WHERE id = ${jobId}::uuid),
    unrecorded AS (
      DELETE FROM synced_member s USING taken, job
      WHERE job.action = 'ADD' AND s.sync_id = job.sync_id AND s.contact_id = taken.contact_id
        AND s.synced_at <= job.created_at),
    restored AS (
      INSERT INTO synced_member (sync_id, contact_id, identifiers)
      SELECT job.sync_id, taken.contact_id, taken.identifiers FROM taken, job
      WHERE job.action = 'REMOVE'
      ON CONFLICT (sync_id, contact_id) DO NOTHING),
    -- The record changed outside a diff: the sync's next run diffs in full (see change-tracking.ts).
    forgotten AS (${forgetDiffBasis(Prisma.sql`(SELECT sync_id FROM job)`)})
    SELECT count(*)::int AS count FROM taken`;
  return row?.count ?? 0;
}

interface FailedJob {
  sync_id: string;
  resource_name: string;
  action: PlatformJobAction;
  count: number;
  created_at: Date;
}

function failureMessage(job: FailedJob, reason: string): string {
  const changes = `${job.count} ${job.action === 'ADD' ? 'addition' : 'removal'}${job.count === 1 ? '' : 's'}`;
  const sent = `${job.created_at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const next = job.action === 'ADD' ? 'The next run sends these members again.' : 'The next run removes these members again.';
  return `The destination did not apply ${changes} sent at ${sent} (job ${job.resource_name}): ${reason}. ${next}`;
}

/** Active syncs on the same destination list as these syncs whose last run is still going or left
 * changes pending: a job on their list has just finished, so they can send what waited for it. */
async function syncsWaitingOnList(syncIds: string[]): Promise<string[]> {
  const rows = await db().$queryRaw<{ id: string }[]>`
    SELECT DISTINCT s.id
    FROM audience_sync finished
    JOIN audience_sync s ON s.destination_id = finished.destination_id
                        AND s.platform_audience_id = finished.platform_audience_id
    JOIN sync_run r ON r.id = s.last_run_id
    WHERE finished.id = ANY(${syncIds}::uuid[]) AND s.deleted_at IS NULL AND s.status = 'ACTIVE'
      AND (r.status = 'RUNNING' OR (r.status = 'SUCCEEDED' AND r.members_refused > 0))`;
  return rows.map((row) => row.id);
}
