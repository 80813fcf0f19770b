import type { z } from 'zod';
import type { Platform } from '../generated/prisma/enums.js';
import { logger } from '../infra/logger.js';
import { apiVersionNotices } from '../infra/metrics.js';
import { secretBox } from '../infra/secrets.js';
import { versionNotice, type VersionNotice, type VersionTable } from './api-versions.js';
import { DestinationError, type DestinationConnector, type FieldMapping } from './destination.js';
import {
  META_API_VERSIONS,
  META_FIELDS,
  createMetaConnector,
  metaConfigSchema,
  metaCredentialsSchema,
} from './meta/connector.js';
import { createGoogleConnector } from './google/connector.js';
import {
  GOOGLE_ADS_API_VERSIONS,
  GOOGLE_FIELDS,
  googleConfigSchema,
  googleCredentialsSchema,
  missingDeveloperToken,
} from './google/settings.js';
import {
  LINKEDIN_API_VERSIONS,
  LINKEDIN_FIELDS,
  createLinkedInConnector,
  linkedInConfigSchema,
  linkedInCredentialsSchema,
} from './linkedin/connector.js';
import {
  WEBHOOK_FIELDS,
  createWebhookConnector,
  webhookConfigSchema,
  webhookCredentialsSchema,
} from './webhook/connector.js';
import { X_FIELDS, createXConnector, xConfigSchema, xCredentialsSchema } from './x/connector.js';

/** What the gateway needs to know about a platform to validate, store and use a destination. */
export interface PlatformSpec<Config = unknown, Credentials = unknown> {
  configSchema: z.ZodType<Config>;
  credentialsSchema: z.ZodType<Credentials>;
  /** The secret whose last characters identify the stored credentials. */
  mainSecret(credentials: Credentials): string;
  /** Used when a sync is created without a field mapping. */
  defaultFieldMapping: FieldMapping[];
  /** Destination fields a field mapping may target. */
  destinationFields: readonly string[];
  /** Added to the message refusing a mapping to another field, e.g. why a common identifier is missing. */
  mappingHint?: string;
  /** The platform API version the config selects, for its sunset; none when the platform's API has
   * no version to choose. */
  apiVersion?(config: Config): { table: VersionTable; version: string } | null;
  /** What the config and credentials need of each other, checked when a destination is saved: the
   * problem, at a path below the input (e.g. `credentials.developerToken`), or null. */
  settingsProblem?(config: Config, credentials: Credentials): { path: string; message: string } | null;
  create(config: Config, credentials: Credentials): DestinationConnector;
}

function spec<Config, Credentials>(value: PlatformSpec<Config, Credentials>): PlatformSpec {
  return value as unknown as PlatformSpec;
}

/** Every platform has a connector: the type makes a missing one a compile error. */
const specs: Record<Platform, PlatformSpec> = {
  META: spec({
    configSchema: metaConfigSchema,
    credentialsSchema: metaCredentialsSchema,
    mainSecret: (credentials) => credentials.accessToken,
    defaultFieldMapping: [
      { sourceField: 'email', destinationField: 'EMAIL' },
      { sourceField: 'phone', destinationField: 'PHONE' },
    ],
    destinationFields: META_FIELDS,
    apiVersion: (config) => ({ table: META_API_VERSIONS, version: config.apiVersion }),
    create: createMetaConnector,
  }),
  GOOGLE: spec({
    configSchema: googleConfigSchema,
    credentialsSchema: googleCredentialsSchema,
    mainSecret: (credentials) => ('refreshToken' in credentials ? credentials.refreshToken : credentials.accessToken),
    defaultFieldMapping: [
      { sourceField: 'email', destinationField: 'EMAIL' },
      { sourceField: 'phone', destinationField: 'PHONE' },
    ],
    destinationFields: GOOGLE_FIELDS,
    // The Data Manager API has one version (v1), with no sunset announced.
    apiVersion: (config) =>
      config.api === 'ADS_API' ? { table: GOOGLE_ADS_API_VERSIONS, version: config.adsApiVersion } : null,
    settingsProblem: (config, credentials) =>
      missingDeveloperToken(config, credentials) ? { path: 'credentials.developerToken', message: missingDeveloperToken(config, credentials)! } : null,
    create: createGoogleConnector,
  }),
  LINKEDIN: spec({
    configSchema: linkedInConfigSchema,
    credentialsSchema: linkedInCredentialsSchema,
    mainSecret: (credentials) => credentials.accessToken,
    defaultFieldMapping: [{ sourceField: 'email', destinationField: 'SHA256_EMAIL' }],
    destinationFields: LINKEDIN_FIELDS,
    mappingHint: 'LinkedIn does not match on phone numbers',
    apiVersion: (config) => ({ table: LINKEDIN_API_VERSIONS, version: config.apiVersion }),
    create: createLinkedInConnector,
  }),
  WEBHOOK: spec({
    configSchema: webhookConfigSchema,
    credentialsSchema: webhookCredentialsSchema,
    mainSecret: (credentials) => credentials.signingSecret,
    defaultFieldMapping: [
      { sourceField: 'email', destinationField: 'EMAIL_SHA256' },
      { sourceField: 'phone', destinationField: 'PHONE_SHA256' },
    ],
    destinationFields: WEBHOOK_FIELDS,
    create: createWebhookConnector,
  }),
  X: spec({
    configSchema: xConfigSchema,
    credentialsSchema: xCredentialsSchema,
    // The token pair changes when the user reconnects; the consumer secret stays the app's.
    mainSecret: (credentials) => credentials.accessTokenSecret,
    defaultFieldMapping: [
      { sourceField: 'email', destinationField: 'email' },
      { sourceField: 'phone', destinationField: 'phone_number' },
    ],
    destinationFields: X_FIELDS,
    create: createXConnector,
  }),
};

export function platformSpec(platform: Platform): PlatformSpec {
  return specs[platform];
}

export class MissingCredentialsError extends Error {
  override name = 'MissingCredentialsError';
}

/** Whether the API version a destination's config selects is switched off, or soon will be, at
 * `now`; null when it has time left, or when the platform has no version to choose. */
export function apiVersionNotice(destination: { platform: Platform; config: unknown }, now: Date): VersionNotice | null {
  const platform = platformSpec(destination.platform);
  const config = platform.configSchema.safeParse(destination.config);
  if (!config.success) return null;
  const selected = platform.apiVersion?.(config.data);
  return selected ? versionNotice(selected.table, selected.version, now) : null;
}

/**
 * Before a run: a destination whose API version the platform has switched off is refused (its calls
 * would only fail with an opaque platform error), and one whose version is switched off within
 * SUNSET_WARNING_DAYS is allowed; both are logged and counted for operators.
 */
export function checkApiVersion(
  destination: { id: string; platform: Platform; config: unknown },
  now: Date,
): void {
  const notice = apiVersionNotice(destination, now);
  if (!notice) return;
  apiVersionNotices.inc({ platform: destination.platform, api_version: notice.version, state: notice.state });
  logger.warn(
    { destinationId: destination.id, platform: destination.platform, apiVersion: notice.version, sunset: notice.sunset },
    notice.message,
  );
  if (notice.state === 'sunset') {
    throw new DestinationError(notice.message, {
      platform: destination.platform,
      code: 'API_VERSION_SUNSET',
      retryable: false,
    });
  }
}

/** Builds the connector of a stored destination, decrypting its credentials. */
export function connectorFor(destination: {
  platform: Platform;
  config: unknown;
  credentials: string | null;
}): DestinationConnector {
  const platform = platformSpec(destination.platform);
  if (!destination.credentials) {
    throw new MissingCredentialsError('The destination has no credentials: add them with updateDestination');
  }
  const credentials = platform.credentialsSchema.parse(JSON.parse(secretBox().open(destination.credentials)));
  // Stored settings are checked again: the operator may have changed what is allowed (custom platform URLs).
  const config = platform.configSchema.safeParse(destination.config);
  if (!config.success) {
    const problems = config.error.issues.map((issue) => [...issue.path, issue.message].join(': ')).join('; ');
    throw new DestinationError(`The destination's config is not allowed on this gateway (${problems}) — change it with updateDestination`, {
      platform: destination.platform,
      retryable: false,
    });
  }
  return platform.create(config.data, credentials);
}
