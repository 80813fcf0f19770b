import { randomUUID } from 'node:crypto';
import { db } from '../db.js';
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
import { logger } from '../logger.js';

// Platforms that apply a batch later, in a job of their own (the Google Ads API), report the job
// with the batch. It is recorded with the batch's members, in the transaction that records them as
// synced, and followed here until it ends: a failed job's members are recorded as they were before.
// The members are kept only while the job runs; jobs of deleted syncs go with the sync's other
// state (src/sync/cleanup.ts) and are not checked meanwhile.

export type PlatformJobAction = 'ADD' | 'REMOVE';

/** Slowest pace of checks on one job: Google's jobs take from minutes to a day. */
const MAX_CHECK_INTERVAL_SECONDS = 30 * 60;
/** Jobs checked per pass; the rest wait for the next pass. */
const CHECKS_PER_PASS = 100;

/** The statement recording the job a batch started, to commit with the batch's state; none when
 * the platform applied the batch at once. */
export function recordPlatformJob(
  run: { id: string; syncId: string },
  platform: Platform,
  action: PlatformJobAction,
  members: EncodedMember[],
  outcome: BatchOutcome,
): Prisma.Sql[] {
  if (!outcome.platformJob) return [];
  const stored = JSON.stringify(
    members.map((member) => ({ contactId: member.contactId.toString(), identifiers: member.identifiers })),
  );
  return [
    Prisma.sql`
      INSERT INTO platform_job (id, sync_id, run_id, platform, resource_name, action, members)
      VALUES (${randomUUID()}::uuid, ${run.syncId}::uuid, ${run.id}::uuid, ${platform}::"Platform",
              ${outcome.platformJob.resourceName}, ${action}, ${stored}::jsonb)`,
  ];
}

interface ClaimedJob {
  id: string;
  sync_id: string;
  resource_name: string;
}

/**
 * One pass over the running platform jobs that are due a check. A job is due `minIntervalMs` after
 * it started, then each time half its age has passed since the last check (at most every 30
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
      WHERE status = 'RUNNING'
        AND NOT EXISTS (SELECT 1 FROM audience_sync s WHERE s.id = platform_job.sync_id AND s.deleted_at IS NOT NULL)
        AND COALESCE(checked_at, created_at) <= now() - LEAST(
              make_interval(secs => ${MAX_CHECK_INTERVAL_SECONDS}),
              GREATEST(make_interval(secs => ${minSeconds}), (COALESCE(checked_at, created_at) - created_at) / 2))
      ORDER BY COALESCE(checked_at, created_at)
      LIMIT ${CHECKS_PER_PASS}
      FOR UPDATE SKIP LOCKED
    ) due
    WHERE j.id = due.id
    RETURNING j.id, j.sync_id, j.resource_name`;

  const connectors = new Map<string, Promise<DestinationConnector | null>>();
  const succeededOn = new Set<string>();
  for (const job of claimed) {
    if (!connectors.has(job.sync_id)) connectors.set(job.sync_id, connectorOf(job.sync_id));
    const connector = await connectors.get(job.sync_id);
    const state = connector && (await stateOf(connector, job));
    if (state?.status === 'SUCCEEDED' && (await markSucceeded(job.id))) succeededOn.add(job.sync_id);
    if (state?.status === 'FAILED') await undoFailedJob(job.id, state.reason);
  }
  return { syncsToRun: succeededOn.size > 0 ? await syncsWaitingOnList([...succeededOn]) : [] };
}

async function connectorOf(syncId: string): Promise<DestinationConnector | null> {
  const sync = await db().audienceSync.findUnique({ where: { id: syncId }, include: { destination: true } });
  if (!sync) return null;
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
    UPDATE platform_job SET status = 'SUCCEEDED', finished_at = now(), members = '[]'
    WHERE id = ${jobId}::uuid AND status = 'RUNNING'`;
  return marked === 1;
}

/**
 * Marks the job failed and records its members as they were before its batch: an add's members
 * are no longer synced (the next run sends them again), a removal's members are synced again (the
 * next run removes them again, if they are still to go). Members a later batch has recorded since
 * are left as that batch recorded them. The sync shows the failure until a run succeeds.
 */
async function undoFailedJob(jobId: string, reason: string): Promise<void> {
  await db().$transaction(async (tx) => {
    const [job] = await tx.$queryRaw<FailedJob[]>`
      UPDATE platform_job SET status = 'FAILED', error_message = ${reason}, finished_at = now()
      WHERE id = ${jobId}::uuid AND status = 'RUNNING'
      RETURNING sync_id, resource_name, action, jsonb_array_length(members) AS count, created_at`;
    if (!job) return;
    if (job.action === 'ADD') {
      await tx.$executeRaw`
        DELETE FROM synced_member s
        USING platform_job j, jsonb_array_elements(j.members) m
        WHERE j.id = ${jobId}::uuid AND s.sync_id = j.sync_id AND s.contact_id = (m->>'contactId')::bigint
          AND s.synced_at <= j.created_at`;
    } else {
      await tx.$executeRaw`
        INSERT INTO synced_member (sync_id, contact_id, identifiers)
        SELECT j.sync_id, (m->>'contactId')::bigint, m->'identifiers'
        FROM platform_job j, jsonb_array_elements(j.members) m
        WHERE j.id = ${jobId}::uuid
        ON CONFLICT (sync_id, contact_id) DO NOTHING`;
    }
    await tx.$executeRaw`UPDATE platform_job SET members = '[]' WHERE id = ${jobId}::uuid`;
    await tx.$executeRaw`
      UPDATE audience_sync SET status = 'ERROR', status_error = ${failureMessage(job, reason)}
      WHERE id = ${job.sync_id}::uuid AND status IN ('ACTIVE', 'ERROR', 'DRAFT')`;
  });
  logger.info({ platformJobId: jobId }, 'A platform job failed; its batch was recorded as not applied');
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
