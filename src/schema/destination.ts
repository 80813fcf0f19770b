import { z } from 'zod';
import { db } from '../infra/db.js';
import { DestinationError } from '../destinations/destination.js';
import { MissingCredentialsError, apiVersionNotice, connectorFor, platformSpec } from '../destinations/registry.js';
import { Platform } from '../generated/prisma/enums.js';
import { secretBox, secretHint } from '../infra/secrets.js';
import { builder } from './builder.js';
import { DestinationConfigInput, DestinationConfigRef, storedConfig } from './destination-config.js';
import { DestinationCredentialsInput, connectorCredentials } from './destination-credentials.js';
import { ConflictError, NotFoundError, ValidationError, parseInput } from './errors.js';
import { parseGlobalId } from './global-id.js';
import { PLATFORM_MEMBERS, chosenMember, requireMember, withoutNulls } from './platform-settings.js';

export const PlatformEnum = builder.enumType(Platform, {
  name: 'Platform',
  description: 'The kind of destination an audience is sent to.',
  values: {
    META: { description: 'Meta (Facebook, Instagram) custom audiences.' },
    GOOGLE: { description: 'Google Ads Customer Match.' },
    LINKEDIN: { description: 'LinkedIn Matched Audiences.' },
    X: { description: 'X tailored audiences.' },
    WEBHOOK: { description: 'Signed JSON batches POSTed to a URL of yours.' },
  },
});

export const DestinationRef = builder.prismaNode('Destination', {
  description: 'Where audiences are sent: an ad account on a platform, or a webhook.',
  id: { field: 'id' },
  // Select mode: a query loads only the columns its fields use (https://pothos-graphql.dev/docs/plugins/prisma/selections).
  select: { id: true },
  nullable: true,
  findUnique: (id, context) => ({ id, workspaceId: context.viewer?.workspaceId ?? '', deletedAt: null }),
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name.' }),
    platform: t.expose('platform', { type: PlatformEnum, description: 'The platform this destination sends to.' }),
    config: t.field({
      type: DestinationConfigRef,
      description: 'The non-secret settings, typed by platform (with the defaults the platform applies). Secrets are never returned.',
      select: { platform: true, config: true },
      resolve: (destination) => storedConfig(destination),
    }),
    credentialsConfigured: t.boolean({
      description: 'Whether credentials are stored. Credentials are write-only and never returned.',
      select: { credentials: true },
      resolve: (destination) => destination.credentials !== null,
    }),
    warnings: t.stringList({
      description:
        'What needs attention before it stops working, e.g. "Meta API v25.0 is switched off on 2027-02-23: set ' +
        'apiVersion to v27.0" from 60 days before a platform switches off the API version the config uses.',
      select: { platform: true, config: true },
      resolve: (destination, _args, context) => {
        context.readsTheClock = true;
        return apiVersionWarnings(destination, context.clock.now());
      },
    }),
    credentialsHint: t.exposeString('credentialsHint', {
      nullable: true,
      description: 'The last 4 characters of the main secret, to recognise which credentials are stored.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the destination was created.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the destination last changed.' }),
  }),
});

builder.queryField('destinations', (t) =>
  t.prismaConnection({
    type: 'Destination',
    cursor: 'id',
    description: 'The destinations of your workspace, newest first.',
    authScopes: { workspace: true },
    args: { platform: t.arg({ type: PlatformEnum, required: false, description: 'Only this platform.' }) },
    resolve: (query, _root, args, context) =>
      db().destination.findMany({
        ...query,
        where: {
          workspaceId: context.viewer!.workspaceId,
          deletedAt: null,
          ...(args.platform ? { platform: args.platform } : {}),
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      }),
  }),
);

const nameSchema = z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters');

const CreateDestinationInput = builder.inputType('CreateDestinationInput', {
  description: 'A new destination. Its platform is the member of `config` given.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name, 1–255 characters.' }),
    config: t.field({
      type: DestinationConfigInput,
      required: true,
      description: 'The platform and its non-secret settings, e.g. `{ meta: { adAccountId: "act_1234567890" } }`.',
    }),
    credentials: t.field({
      type: DestinationCredentialsInput,
      required: false,
      description: 'Secrets for the same platform as `config`; can be added later with updateDestination.',
    }),
  }),
});

const UpdateDestinationInput = builder.inputType('UpdateDestinationInput', {
  description: 'Changes to a destination; omitted fields stay as they are. The platform cannot change.',
  fields: (t) => ({
    name: t.string({ required: false, description: 'Display name, 1–255 characters.' }),
    config: t.field({
      type: DestinationConfigInput,
      required: false,
      description: "Replaces the non-secret settings (omitted settings take their defaults); the member of the destination's platform.",
    }),
    credentials: t.field({
      type: DestinationCredentialsInput,
      required: false,
      description: "Replaces the stored secrets; the member of the destination's platform.",
    }),
  }),
});

function apiVersionWarnings(destination: { platform: Platform; config: unknown }, now: Date): string[] {
  const notice = apiVersionNotice(destination, now);
  return notice ? [notice.message] : [];
}

/** The credentials of `platform` given in the input, as the connector reads them, checked by its rules. */
function parseCredentials(platform: Platform, input: object) {
  const given = chosenMember(input);
  requireMember(given.platform, platform, 'input.credentials');
  const member = PLATFORM_MEMBERS[platform];
  const root = `input.credentials.${member}`;
  const { credentials, inputPath } = connectorCredentials(member, withoutNulls(given.settings) as Record<string, unknown>);
  const parsed = platformSpec(platform).credentialsSchema.safeParse(credentials);
  if (parsed.success) return parsed.data;
  throw new ValidationError(
    parsed.error.issues.map((issue) => ({ field: [root, ...inputPath(issue.path)].join('.'), message: issue.message })),
  );
}

/**
 * Validates config and credentials by the platform connector's own rules, and against each other (with the
 * stored credentials when no new ones are given), and seals the credentials. Issues name the field of the
 * typed input (`input.config.meta.apiVersion`). A config selecting an API version the platform has switched
 * off by `now` is refused, naming the version to use.
 */
function prepareSettings(
  platform: Platform,
  config: unknown,
  credentialsInput: object | null | undefined,
  now: Date,
  storedCredentials: string | null = null,
) {
  const spec = platformSpec(platform);
  const member = PLATFORM_MEMBERS[platform];
  const parsedConfig = parseInput(spec.configSchema, config, `input.config.${member}`);
  const notice = apiVersionNotice({ platform, config: parsedConfig }, now);
  if (notice?.state === 'sunset') throw ValidationError.of(`input.config.${member}.${notice.field}`, notice.message);
  const parsedCredentials = credentialsInput ? parseCredentials(platform, credentialsInput) : undefined;
  const effectiveCredentials =
    parsedCredentials ??
    (storedCredentials ? spec.credentialsSchema.parse(JSON.parse(secretBox().open(storedCredentials))) : undefined);
  const problem = effectiveCredentials === undefined ? null : spec.settingsProblem?.(parsedConfig, effectiveCredentials);
  if (problem) {
    const [part, ...path] = problem.path.split('.');
    throw ValidationError.of(['input', part, member, ...path].join('.'), problem.message);
  }
  if (parsedCredentials === undefined) return { config: parsedConfig, credentials: undefined };
  return {
    config: parsedConfig,
    credentials: {
      credentials: secretBox().seal(JSON.stringify(parsedCredentials)),
      credentialsHint: secretHint(spec.mainSecret(parsedCredentials)),
    },
  };
}

builder.mutationField('createDestination', (t) =>
  t.field({
    type: DestinationRef,
    description: 'Creates a destination on the platform of the `config` member given.',
    authScopes: { write: true },
    errors: { types: [ValidationError], dataField: { name: 'destination', description: 'The new destination.' } },
    args: { input: t.arg({ type: CreateDestinationInput, required: true, description: 'The destination.' }) },
    resolve: async (_root, { input }, context) => {
      const name = parseInput(nameSchema, input.name, 'input.name');
      const { platform, settings } = chosenMember(input.config);
      const prepared = prepareSettings(platform, withoutNulls(settings), input.credentials, context.clock.now());
      return db().destination.create({
        data: {
          workspaceId: context.viewer!.workspaceId,
          name,
          platform,
          config: prepared.config as object,
          ...prepared.credentials,
        },
      });
    },
  }),
);

builder.mutationField('updateDestination', (t) =>
  t.field({
    type: DestinationRef,
    description: 'Changes a destination. Runs already under way keep the settings they started with.',
    authScopes: { write: true },
    errors: {
      types: [ValidationError, NotFoundError],
      dataField: { name: 'destination', description: 'The destination as changed.' },
    },
    args: {
      id: t.arg.id({ required: true, description: 'The destination to change.' }),
      input: t.arg({ type: UpdateDestinationInput, required: true, description: 'The changes.' }),
    },
    resolve: async (_root, { id, input }, context) => {
      const existing = await db().destination.findFirst({
        where: { id: parseGlobalId(id, 'Destination', 'id'), workspaceId: context.viewer!.workspaceId, deletedAt: null },
      });
      if (!existing) throw new NotFoundError('id', 'destination');
      const name = input.name === undefined || input.name === null ? undefined : parseInput(nameSchema, input.name, 'input.name');
      let config = existing.config;
      if (input.config) {
        const given = chosenMember(input.config);
        requireMember(given.platform, existing.platform, 'input.config');
        config = withoutNulls(given.settings) as typeof config;
      }
      const settings = prepareSettings(existing.platform, config, input.credentials, context.clock.now(), existing.credentials);
      return db().destination.update({
        where: { id: existing.id },
        data: { name, config: settings.config as object, ...settings.credentials },
      });
    },
  }),
);

const DeleteDestinationSuccess = builder.objectRef<{ deletedId: string }>('DeleteDestinationSuccess').implement({
  description: 'The destination was deleted.',
  fields: (t) => ({ deletedId: t.exposeID('deletedId', { description: 'The global id of the deleted destination.' }) }),
});

builder.mutationField('deleteDestination', (t) =>
  t.field({
    type: DeleteDestinationSuccess,
    description: 'Deletes a destination. Refused while syncs still send to it: delete those first.',
    authScopes: { write: true },
    errors: { types: [ValidationError, NotFoundError, ConflictError], directResult: true },
    args: { id: t.arg.id({ required: true, description: 'The destination to delete.' }) },
    resolve: async (_root, { id }, context) => {
      await db().$transaction(async (tx) => {
        const existing = await tx.destination.findFirst({
          where: { id: parseGlobalId(id, 'Destination', 'id'), workspaceId: context.viewer!.workspaceId, deletedAt: null },
        });
        if (!existing) throw new NotFoundError('id', 'destination');
        // Locks the row so that no sync can be created against it while we check.
        await tx.$executeRaw`SELECT 1 FROM destination WHERE id = ${existing.id}::uuid FOR UPDATE`;
        const syncs = await tx.audienceSync.count({ where: { destinationId: existing.id, deletedAt: null } });
        if (syncs > 0) {
          throw new ConflictError(`${syncs} sync(s) still send to this destination: delete them first`);
        }
        await tx.destination.update({ where: { id: existing.id }, data: { deletedAt: new Date() } });
      });
      return { deletedId: String(id) };
    },
  }),
);

const TestDestinationSuccess = builder
  .objectRef<{ destinationId: string; ok: boolean; message: string; retryable: boolean; warnings: string[] }>(
    'TestDestinationSuccess',
  )
  .implement({
    description: 'The outcome of checking a destination: whether it can be used, and if not, what is wrong.',
    fields: (t) => ({
      destination: t.prismaField({
        type: 'Destination',
        description: 'The destination checked.',
        resolve: (query, result) => db().destination.findUniqueOrThrow({ ...query, where: { id: result.destinationId } }),
      }),
      ok: t.exposeBoolean('ok', { description: 'True when the credentials work and the account is usable.' }),
      message: t.exposeString('message', { description: 'What was checked, or what is wrong and how to fix it.' }),
      retryable: t.exposeBoolean('retryable', {
        description: 'True when the problem looks temporary (the platform is down or throttling): try again later.',
      }),
      warnings: t.exposeStringList('warnings', {
        description: 'What needs attention soon, as in `Destination.warnings` (an API version about to be switched off).',
      }),
    }),
  });

builder.mutationField('testDestination', (t) =>
  t.field({
    type: TestDestinationSuccess,
    description: 'Checks the credentials and reachability of a destination without changing anything on it.',
    authScopes: { write: true },
    errors: { types: [ValidationError, NotFoundError], directResult: true },
    args: { id: t.arg.id({ required: true, description: 'The destination to check.' }) },
    resolve: async (_root, { id }, context) => {
      const destination = await db().destination.findFirst({
        where: { id: parseGlobalId(id, 'Destination', 'id'), workspaceId: context.viewer!.workspaceId, deletedAt: null },
      });
      if (!destination) throw new NotFoundError('id', 'destination');
      const notice = apiVersionNotice(destination, context.clock.now());
      const result = { destinationId: destination.id, ok: false, retryable: false, warnings: notice ? [notice.message] : [] };
      // The platform would refuse the calls, with a less helpful message.
      if (notice?.state === 'sunset') return { ...result, message: notice.message };
      try {
        return { ...result, ok: true, message: await connectorFor(destination).checkAccess() };
      } catch (error) {
        if (error instanceof DestinationError) {
          return { ...result, message: error.message, retryable: error.details.retryable };
        }
        if (error instanceof MissingCredentialsError) return { ...result, message: error.message };
        throw error;
      }
    },
  }),
);
