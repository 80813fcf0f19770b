import type { z } from 'zod';
import type { Platform } from '../generated/prisma/enums.js';
import { secretBox } from '../secrets.js';
import type { DestinationConnector, FieldMapping } from './destination.js';
import { META_FIELDS, createMetaConnector, metaConfigSchema, metaCredentialsSchema } from './meta/connector.js';

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
  create(config: Config, credentials: Credentials): DestinationConnector;
}

function spec<Config, Credentials>(value: PlatformSpec<Config, Credentials>): PlatformSpec {
  return value as unknown as PlatformSpec;
}

const specs: Partial<Record<Platform, PlatformSpec>> = {
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
};

/** The platform's spec, or undefined for a platform whose connector is not built yet. */
export function platformSpec(platform: Platform): PlatformSpec | undefined {
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
  if (!platform) throw new Error(`${destination.platform} destinations are not available yet`);
  if (!destination.credentials) {
    throw new MissingCredentialsError('The destination has no credentials: add them with updateDestination');
  }
  const credentials = platform.credentialsSchema.parse(JSON.parse(secretBox().open(destination.credentials)));
  return platform.create(platform.configSchema.parse(destination.config), credentials);
}
