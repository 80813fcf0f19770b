import type { z } from 'zod';
import type { Platform } from '../generated/prisma/enums.js';
import { secretBox } from '../infra/secrets.js';
import { DestinationError, type DestinationConnector, type FieldMapping } from './destination.js';
import { META_FIELDS, createMetaConnector, metaConfigSchema, metaCredentialsSchema } from './meta/connector.js';
import { GOOGLE_FIELDS, createGoogleConnector, googleConfigSchema, googleCredentialsSchema } from './google/connector.js';
import {
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
    create: createGoogleConnector,
  }),
  LINKEDIN: spec({
    configSchema: linkedInConfigSchema,
    credentialsSchema: linkedInCredentialsSchema,
    mainSecret: (credentials) => credentials.accessToken,
    defaultFieldMapping: [{ sourceField: 'email', destinationField: 'SHA256_EMAIL' }],
    destinationFields: LINKEDIN_FIELDS,
    mappingHint: 'LinkedIn does not match on phone numbers',
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
