import { db } from '../infra/db.js';
import { DestinationError, type BatchOutcome, type PlatformAudienceReport } from '../destinations/destination.js';
import { Prisma } from '../generated/prisma/client.js';
import { MissingCredentialsError, connectorFor } from '../destinations/registry.js';
import type { Clock } from '../infra/clock.js';
import { logger } from '../infra/logger.js';

/** What is stored in audience_sync.platform_audience: the report with both match rate bounds set
 * (a platform's one number is both). Reads written before the bounds existed lack them. */
export type StoredPlatformAudience = PlatformAudienceReport & {
  matchRateLowerBound: number | null;
  matchRateUpperBound: number | null;
  refreshedAt: string;
};

/** The statement, committed with a batch's confirmation, that keeps the platform request id of the
 * sync's latest batch (confirmations may commit out of order: an earlier batch never replaces a
 * later one's); none when the platform gave no id. */
export function recordPlatformRequest(run: { syncId: string }, batchId: bigint, outcome: BatchOutcome): Prisma.Sql[] {
  if (outcome.platformRequestId === undefined) return [];
  return [
    Prisma.sql`
      UPDATE audience_sync
      SET last_platform_request_id = ${outcome.platformRequestId}, last_platform_request_batch = ${batchId}
      WHERE id = ${run.syncId}::uuid
        AND (last_platform_request_batch IS NULL OR last_platform_request_batch < ${batchId})`,
  ];
}

/** Why a sync's platform audience cannot be read. */
export class PlatformAudienceUnavailable extends Error {
  override name = 'PlatformAudienceUnavailable';
}

/**
 * Reads what the platform reports about the sync's audience now and stores it with the time it was
 * read. Throws PlatformAudienceUnavailable when there is nothing to read (no platform audience yet,
 * or a destination that reports nothing), DestinationError when the platform fails.
 */
export async function refreshPlatformAudience(syncId: string, clock: Clock): Promise<StoredPlatformAudience> {
  const sync = await db().audienceSync.findUniqueOrThrow({ where: { id: syncId }, include: { destination: true } });
  if (!sync.platformAudienceId) {
    throw new PlatformAudienceUnavailable('The sync has no platform audience yet: it is created by its first run');
  }
  const connector = connectorFor(sync.destination);
  if (!connector.readAudience) {
    throw new PlatformAudienceUnavailable(`${sync.destination.platform} destinations report nothing about the audience`);
  }
  const report = await connector.readAudience(sync.platformAudienceId, { lastPlatformRequestId: sync.platformRequestId });
  const stored: StoredPlatformAudience = {
    ...report,
    matchRateLowerBound: report.matchRateLowerBound === undefined ? report.matchRate : report.matchRateLowerBound,
    matchRateUpperBound: report.matchRateUpperBound === undefined ? report.matchRate : report.matchRateUpperBound,
    refreshedAt: clock.now().toISOString(),
  };
  await db().audienceSync.update({ where: { id: syncId }, data: { platformAudience: { ...stored } } });
  return stored;
}

/** At the end of a run that sent its changes, reads the platform audience, so that the run ends
 * with it; a failure to read is logged and leaves the run as it is. */
export async function readPlatformAudienceAfterRun(syncId: string, clock: Clock): Promise<void> {
  try {
    await refreshPlatformAudience(syncId, clock);
  } catch (error) {
    if (error instanceof PlatformAudienceUnavailable) return;
    if (!(error instanceof DestinationError || error instanceof MissingCredentialsError)) throw error;
    logger.warn({ syncId, reason: error.message }, 'Could not read the platform audience after a run');
  }
}
