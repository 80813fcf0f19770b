import { db } from '../infra/db.js';
import { DestinationError, type PlatformAudienceReport } from '../destinations/destination.js';
import { MissingCredentialsError, connectorFor } from '../destinations/registry.js';
import type { Clock } from '../infra/clock.js';
import { logger } from '../infra/logger.js';

/** What is stored in audience_sync.platform_audience. */
export type StoredPlatformAudience = PlatformAudienceReport & { refreshedAt: string };

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
  const report = await connector.readAudience(sync.platformAudienceId);
  const stored: StoredPlatformAudience = { ...report, refreshedAt: clock.now().toISOString() };
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
