import { z } from 'zod';
import { db } from '../infra/db.js';
import { SOURCE_FIELDS, type FieldMapping } from '../destinations/destination.js';
import { platformSpec } from '../destinations/registry.js';
import type { AudienceSync, Prisma } from '../generated/prisma/client.js';
import { ScheduleFrequency, SyncMode, SyncStatus } from '../generated/prisma/enums.js';
import { applySyncSchedule, enqueueSyncRun, nextScheduledRunAt } from '../jobs/audience-sync.js';
import { filter, map, pipe } from 'graphql-yoga';
import { publishSyncUpdated } from '../infra/change-events.js';
import { logger } from '../infra/logger.js';
import { eventBus, type SyncEvent } from '../infra/pubsub.js';
import { loadOncePerEvent } from './event-loads.js';
import { requestCleanup } from '../jobs/housekeeping.js';
import { deleteSyncs } from '../sync/delete-syncs.js';
import { requestSyncRun } from '../sync/request-run.js';
import { FREQUENCY_CRON, MAX_CADENCE_HOURS, cronProblem, isTimeZone } from '../sync/schedule.js';
import { AudienceRef } from './audience.js';
import { builder } from './builder.js';
import { ConflictError, NotFoundError, PlatformError, ValidationError, parseInput } from './errors.js';
import { DestinationError } from '../destinations/destination.js';
import { MissingCredentialsError } from '../destinations/registry.js';
import {
  PlatformAudienceUnavailable,
  refreshPlatformAudience,
  type StoredPlatformAudience,
} from '../sync/platform-audience.js';
import { parseGlobalId } from './global-id.js';
import { SyncRunStatusEnum, TriggerAudienceSyncSuccess, requireWorkspace } from './sync-run.js';
import {
  SPLIT_GROUP_DESCRIPTION,
  SUPPRESSION_DESCRIPTION,
  checkSyncTargeting,
  saveSuppressions,
  syncTargetingSchema,
} from './sync-targeting.js';

// APPEND_ONLY is an input alias of ADD with an internal value of its own, which no sync ever holds:
// graphql-js serializes an internal value to one name only, so reads keep saying ADD.
export const SyncModeEnum = builder.enumType({ ...SyncMode, APPEND_ONLY: 'APPEND_ONLY' } as const, {
  name: 'SyncMode',
  description: 'How a sync changes the destination audience.',
  values: {
    MIRROR: { description: 'Keep the destination exactly in sync: add new members, remove members who left.' },
    ADD: { description: 'Only add new members; never remove.' },
    REMOVE: { description: 'Only remove members who left the audience.' },
    UPSERT: { description: 'Add new members and update existing ones.' },
    APPEND_ONLY: {
      description: 'Input alias of ADD; a sync created or updated with it reads back as ADD.',
      deprecationReason: 'Use ADD, which it stands for.',
    },
  },
});

/** A mode as given, with the APPEND_ONLY alias resolved to ADD. */
const syncModeSchema = z
  .enum([...Object.values(SyncMode), 'APPEND_ONLY'])
  .transform((mode): SyncMode => (mode === 'APPEND_ONLY' ? 'ADD' : mode));

export const SyncStatusEnum = builder.enumType(SyncStatus, {
  name: 'SyncStatus',
  description: 'Whether a sync runs.',
  values: {
    DRAFT: { description: 'Configured but not running yet.' },
    ACTIVE: { description: 'Runs on its schedule and on demand.' },
    PAUSED: { description: 'Does not run; its schedule is suspended.' },
    ERROR: { description: 'Its last run failed (see `statusError`); it keeps running on schedule.' },
  },
});

const FieldMappingRef = builder.objectRef<FieldMapping>('FieldMapping').implement({
  description: 'Which contact field feeds which destination identifier.',
  fields: (t) => ({
    sourceField: t.exposeString('sourceField', { description: `A contact field: ${SOURCE_FIELDS.join(', ')}.` }),
    destinationField: t.exposeString('destinationField', {
      description: 'The identifier on the destination, e.g. EMAIL or PHONE for Meta.',
    }),
  }),
});

export const ScheduleFrequencyEnum = builder.enumType(ScheduleFrequency, {
  name: 'ScheduleFrequency',
  description: "A fixed rhythm for a sync's runs, in the schedule's time zone.",
  values: {
    HOURLY: { description: `At the top of every hour (cron "${FREQUENCY_CRON.HOURLY}").` },
    DAILY: { description: `Every day at midnight (cron "${FREQUENCY_CRON.DAILY}").` },
    WEEKLY: { description: `Every Monday at midnight (cron "${FREQUENCY_CRON.WEEKLY}").` },
  },
});

type ScheduleShape = Pick<AudienceSync, 'scheduleCron' | 'scheduleTimezone' | 'scheduleFrequency' | 'cadenceHours'>;

const SyncScheduleRef = builder.objectRef<ScheduleShape>('SyncSchedule').implement({
  description: 'When a sync runs by itself: on a cron expression or a frequency in a time zone, or every N hours.',
  fields: (t) => ({
    cron: t.exposeString('scheduleCron', { nullable: true, description: 'Five-field cron expression.' }),
    frequency: t.expose('scheduleFrequency', {
      type: ScheduleFrequencyEnum,
      nullable: true,
      description: 'Hourly, daily or weekly, in `timezone`.',
    }),
    timezone: t.exposeString('scheduleTimezone', {
      nullable: true,
      description: 'IANA time zone of `cron` or `frequency`.',
    }),
    cadenceHours: t.exposeInt('cadenceHours', {
      description: `Hours between runs, 0–${MAX_CADENCE_HOURS}; 0 means manual only (unless \`cron\` or \`frequency\` is set).`,
    }),
  }),
});

const PlatformAudienceRef = builder.objectRef<StoredPlatformAudience>('PlatformAudience').implement({
  description:
    "What the platform reports about the audience, read after each successful run and by refreshPlatformAudience. " +
    'A field is null where the platform reports nothing.',
  fields: (t) => ({
    sizeLowerBound: t.int({
      nullable: true,
      description: "How many people the platform matched, at least (Meta gives a range; others one number, as both bounds).",
      resolve: (audience) => audience.sizeLowerBound,
    }),
    sizeUpperBound: t.int({
      nullable: true,
      description: 'How many people the platform matched, at most.',
      resolve: (audience) => audience.sizeUpperBound,
    }),
    matchRate: t.float({
      nullable: true,
      description: 'The share (0–1) of the members sent that the platform matched, where it reports one number: Google Ads API lists, ' +
        'and LinkedIn (its matchedCount / inputCount, both over the last 7 days). Null where the platform reports only a range ' +
        '(the Data Manager API): see matchRateLowerBound and matchRateUpperBound.',
      resolve: (audience) => audience.matchRate,
    }),
    matchRateLowerBound: t.float({
      nullable: true,
      description: 'The match rate (0–1) is at least this: the low end of the range the platform reports (the Data Manager ' +
        "API's match rate range of the last upload, e.g. 0.51 for 51–60%), or matchRate where it reports one number.",
      resolve: (audience) => audience.matchRateLowerBound ?? audience.matchRate,
    }),
    matchRateUpperBound: t.float({
      nullable: true,
      description: 'The match rate (0–1) is at most this: the high end of the range the platform reports, or matchRate where ' +
        'it reports one number.',
      resolve: (audience) => audience.matchRateUpperBound ?? audience.matchRate,
    }),
    status: t.string({
      nullable: true,
      description: "The platform's status of the audience, in its terms (LinkedIn READY, Google OPEN, Meta's operation status).",
      resolve: (audience) => audience.status,
    }),
    statusDetail: t.string({
      nullable: true,
      description: "What the platform says more (Meta's delivery status, X's reasons it cannot be targeted yet).",
      resolve: (audience) => audience.statusDetail,
    }),
    refreshedAt: t.field({
      type: 'DateTime',
      description: 'When the platform was asked.',
      resolve: (audience) => new Date(audience.refreshedAt),
    }),
  }),
});

export const AudienceSyncRef = builder.prismaNode('AudienceSync', {
  description: 'Keeps an audience in sync with a destination.',
  id: { field: 'id' },
  // Select mode: a query loads only the columns its fields use (https://pothos-graphql.dev/docs/plugins/prisma/selections).
  select: { id: true },
  nullable: true,
  findUnique: (id, context) => ({ id, workspaceId: context.viewer?.workspaceId ?? '', deletedAt: null }),
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name.' }),
    description: t.exposeString('description', { nullable: true, description: 'What this sync is for.' }),
    audience: t.relation('audience', { description: 'The audience sent.' }),
    destination: t.relation('destination', { description: 'Where it is sent.' }),
    mode: t.expose('mode', { type: SyncModeEnum, description: 'How the destination audience is changed.' }),
    fieldMapping: t.field({
      type: [FieldMappingRef],
      description: 'Which contact fields are sent, as which identifiers.',
      select: { fieldMapping: true },
      resolve: (sync) => sync.fieldMapping as unknown as FieldMapping[],
    }),
    schedule: t.field({
      type: SyncScheduleRef,
      description: 'When the sync runs by itself.',
      select: { scheduleCron: true, scheduleTimezone: true, scheduleFrequency: true, cadenceHours: true },
      resolve: (sync) => sync,
    }),
    status: t.expose('status', { type: SyncStatusEnum, description: 'Whether the sync runs.' }),
    statusError: t.exposeString('statusError', {
      nullable: true,
      description: 'Why the last run failed, while `status` is ERROR.',
    }),
    platformAudienceName: t.exposeString('platformAudienceName', {
      nullable: true,
      description: 'The audience name on the ad platform (defaults to the sync name).',
    }),
    platformAudienceId: t.exposeString('platformAudienceId', {
      nullable: true,
      description: 'The audience id on the ad platform, once the first run created it (or as given).',
    }),
    lastSyncedAt: t.expose('lastSyncedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When a run last succeeded.',
    }),
    lastSyncedCount: t.exposeInt('lastSyncedCount', {
      nullable: true,
      description: 'How many members the destination held after the last successful run.',
    }),
    lastRun: t.relation('lastRun', { nullable: true, description: 'The most recently requested run.' }),
    pendingChanges: t.field({
      type: 'NonNegativeInt',
      description:
        'Members whose change has not reached the platform yet: those in platform jobs still open (the Google Ads API ' +
        "applies uploads in jobs of its own) and those the last run's platform refused for now (see " +
        '`SyncRun.refusalReason`), which a later run sends. 0 once the destination holds what the last run computed.',
      select: SETTLEMENT_SELECT,
      resolve: (sync) => settlementOf(sync).pendingChanges,
    }),
    settledAt: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        "When the last run's changes had all reached the platform: the end of the run, or of the last platform job it " +
        'started, whichever is later. Null while `pendingChanges` is above 0, while a run is going, and when the last run ' +
        'did not succeed.',
      select: SETTLEMENT_SELECT,
      resolve: (sync) => settlementOf(sync).settledAt,
    }),
    nextRunAt: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        "When the sync's schedule runs it next, as the job scheduler holds it; null for a sync that runs only on " +
        'demand, and while it is paused, a draft, or deleted.',
      select: { id: true, status: true, deletedAt: true },
      resolve: (sync) => ('nextRunAt' in sync ? (sync as SyncWithNextRun).nextRunAt : nextRunOf(sync)),
    }),
    platformAudience: t.field({
      type: PlatformAudienceRef,
      nullable: true,
      description: 'What the platform last reported about the audience; null until read, and for webhooks.',
      select: { platformAudience: true },
      resolve: (sync) => (sync.platformAudience as StoredPlatformAudience | null) ?? null,
    }),
    splitGroup: t.exposeString('splitGroup', { nullable: true, description: SPLIT_GROUP_DESCRIPTION }),
    suppressionAudiences: t.field({
      type: [AudienceRef],
      description: SUPPRESSION_DESCRIPTION,
      select: (_args, _context, nestedSelection) => ({
        suppressions: { where: { audience: { deletedAt: null } }, select: { audience: nestedSelection(true) } },
      }),
      resolve: (sync) => sync.suppressions.map((suppression) => suppression.audience),
    }),
    runs: t.relatedConnection('runs', {
      cursor: 'id',
      description: 'Runs, newest first. `status: FAILED` lists the error history.',
      args: { status: t.arg({ type: SyncRunStatusEnum, required: false, description: 'Only runs in this status.' }) },
      query: (args) => ({
        where: args.status ? { status: args.status } : {},
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      }),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the sync was created.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the sync last changed.' }),
  }),
});

/** What pendingChanges and settledAt read: the last run with its platform jobs, and the sync's open jobs. */
const SETTLEMENT_SELECT = {
  lastRun: { select: { status: true, membersRefused: true, finishedAt: true, platformJobs: { select: { finishedAt: true } } } },
  platformJobs: { where: { status: { in: ['PENDING', 'RUNNING'] } }, select: { memberCount: true } },
} satisfies Prisma.AudienceSyncSelect;

type SettlementSource = Prisma.AudienceSyncGetPayload<{ select: typeof SETTLEMENT_SELECT }>;

function settlementOf(sync: SettlementSource): { pendingChanges: number; settledAt: Date | null } {
  const run = sync.lastRun;
  const refused = run?.status === 'SUCCEEDED' ? run.membersRefused : 0;
  const pendingChanges = sync.platformJobs.reduce((sum, job) => sum + job.memberCount, refused);
  if (pendingChanges > 0 || run?.status !== 'SUCCEEDED' || !run.finishedAt) return { pendingChanges, settledAt: null };
  const ends = [run.finishedAt, ...run.platformJobs.flatMap((job) => (job.finishedAt ? [job.finishedAt] : []))];
  return { pendingChanges, settledAt: new Date(Math.max(...ends.map((end) => end.getTime()))) };
}

/** A sync loaded for its subscribers, with its next run already read. */
type SyncWithNextRun = AudienceSync & { nextRunAt: Date | null };

function nextRunOf(sync: Pick<AudienceSync, 'id' | 'status' | 'deletedAt'>): Promise<Date | null> | null {
  const scheduled = sync.deletedAt === null && (sync.status === 'ACTIVE' || sync.status === 'ERROR');
  return scheduled ? nextScheduledRunAt(sync.id) : null;
}

/** The sync an event names, with its next run, loaded once per event on this gateway. */
function loadSyncOf(event: SyncEvent): Promise<SyncWithNextRun | null> {
  return loadOncePerEvent('sync', event, async () => {
    try {
      const sync = await db().audienceSync.findFirst({ where: { id: event.id, deletedAt: null } });
      return sync && { ...sync, nextRunAt: await nextRunOf(sync) };
    } catch (error) {
      logger.warn({ err: error, syncId: event.id }, 'Could not load a sync for its subscribers');
      return null;
    }
  });
}

builder.subscriptionField('audienceSyncUpdated', (t) =>
  t.field({
    type: AudienceSyncRef,
    nullable: false,
    description:
      'The syncs of your workspace, each time one changes: status, statusError, lastSyncedAt, lastSyncedCount, ' +
      'lastRun, nextRunAt. A result identical to the previous one is not sent again.',
    args: { syncId: t.arg.id({ required: false, description: 'Only this sync.' }) },
    subscribe: (_root, args, context) => {
      const workspaceId = requireWorkspace(context);
      const syncId = args.syncId == null ? null : parseGlobalId(args.syncId, 'AudienceSync', 'syncId');
      return pipe(
        eventBus().subscribe('workspace:syncUpdated', workspaceId),
        filter((event: SyncEvent) => event.workspaceId === workspaceId && (syncId === null || event.syncId === syncId)),
        map(loadSyncOf),
        filter((sync: SyncWithNextRun | null): sync is SyncWithNextRun => sync?.workspaceId === workspaceId),
      );
    },
    resolve: (sync) => sync as SyncWithNextRun,
  }),
);

builder.queryField('audienceSyncs', (t) =>
  t.prismaConnection({
    type: 'AudienceSync',
    cursor: 'id',
    description: 'The syncs of your workspace, newest first.',
    authScopes: { workspace: true },
    args: {
      status: t.arg({ type: SyncStatusEnum, required: false, description: 'Only syncs in this status.' }),
      audienceId: t.arg.id({ required: false, description: 'Only syncs of this audience.' }),
      destinationId: t.arg.id({ required: false, description: 'Only syncs to this destination.' }),
    },
    resolve: (query, _root, args, context) =>
      db().audienceSync.findMany({
        ...query,
        where: {
          workspaceId: context.viewer!.workspaceId,
          deletedAt: null,
          ...(args.status ? { status: args.status } : {}),
          ...(args.audienceId ? { audienceId: parseGlobalId(args.audienceId, 'Audience', 'audienceId') } : {}),
          ...(args.destinationId
            ? { destinationId: parseGlobalId(args.destinationId, 'Destination', 'destinationId') }
            : {}),
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      }),
  }),
);

const FieldMappingInput = builder.inputType('FieldMappingInput', {
  description: 'Which contact field feeds which destination identifier.',
  fields: (t) => ({
    sourceField: t.string({ required: true, description: `A contact field: ${SOURCE_FIELDS.join(', ')}.` }),
    destinationField: t.string({ required: true, description: 'An identifier the destination accepts.' }),
  }),
});

const SyncScheduleInput = builder.inputType('SyncScheduleInput', {
  description:
    'One of `cron` or `frequency` (each with an optional `timezone`, UTC by default), or `cadenceHours`.',
  fields: (t) => ({
    cron: t.string({ required: false, description: 'Five-field cron expression, e.g. "0 */4 * * *".' }),
    frequency: t.field({
      type: ScheduleFrequencyEnum,
      required: false,
      description: 'Hourly, daily or weekly, in `timezone`.',
    }),
    timezone: t.string({
      required: false,
      description: 'IANA time zone for `cron` or `frequency`, e.g. "Europe/Paris".',
    }),
    cadenceHours: t.int({
      required: false,
      description: `Hours between runs, 0–${MAX_CADENCE_HOURS}; 0 means manual only.`,
    }),
  }),
});

const nameSchema = z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters');
const descriptionSchema = z.string().trim().max(2000, 'must be at most 2,000 characters').nullish();
const audienceNameSchema = z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters');

const scheduleSchema = z
  .object({
    cron: z
      .string()
      .nullish()
      .superRefine((cron, issues) => {
        const problem = cron == null ? null : cronProblem(cron);
        if (problem) issues.addIssue({ code: 'custom', message: problem });
      }),
    timezone: z
      .string()
      .nullish()
      .refine((zone) => zone == null || isTimeZone(zone), 'is not an IANA time zone such as "Europe/Paris"'),
    frequency: z.enum(ScheduleFrequency).nullish(),
    cadenceHours: z.number().int().min(0).max(MAX_CADENCE_HOURS, `must be between 0 and ${MAX_CADENCE_HOURS}`).nullish(),
  })
  .superRefine((schedule, issues) => {
    if (schedule.cron != null && schedule.cadenceHours != null) {
      issues.addIssue({ code: 'custom', path: ['cadenceHours'], message: 'give either cron or cadenceHours, not both' });
    }
    if (schedule.frequency != null && schedule.cron != null) {
      issues.addIssue({ code: 'custom', path: ['frequency'], message: 'give either frequency or cron, not both' });
    }
    if (schedule.frequency != null && (schedule.cadenceHours ?? 0) > 0) {
      issues.addIssue({
        code: 'custom',
        path: ['frequency'],
        message: 'give either frequency or cadenceHours, not both',
      });
    }
    if (schedule.timezone != null && schedule.cron == null && schedule.frequency == null) {
      issues.addIssue({ code: 'custom', path: ['timezone'], message: 'only applies to a cron or frequency schedule' });
    }
  })
  .transform((schedule) => {
    const zoned = schedule.cron != null || schedule.frequency != null;
    return {
      scheduleCron: schedule.cron?.trim() ?? null,
      scheduleFrequency: schedule.frequency ?? null,
      scheduleTimezone: zoned ? (schedule.timezone ?? 'UTC') : null,
      cadenceHours: schedule.cadenceHours ?? 0,
    };
  });

const fieldMappingSchema = z
  .array(
    z.object({
      sourceField: z.enum(SOURCE_FIELDS, { message: `must be one of ${SOURCE_FIELDS.join(', ')}` }),
      destinationField: z.string().trim().min(1, 'must not be empty'),
    }),
  )
  .min(1, 'map at least one field')
  .max(20, 'map at most 20 fields');

const settableStatus = z.enum(['DRAFT', 'ACTIVE', 'PAUSED'], {
  message: 'can be set to DRAFT, ACTIVE or PAUSED (ERROR is set by failed runs)',
});

/** The platform's fields decide which identifiers a mapping may target. */
function checkMappingTargets(mapping: FieldMapping[], platform: Parameters<typeof platformSpec>[0]): void {
  const spec = platformSpec(platform);
  const allowed = spec.destinationFields;
  const hint = spec.mappingHint ? ` (${spec.mappingHint})` : '';
  const issues = mapping.flatMap((entry, index) =>
    allowed.includes(entry.destinationField)
      ? []
      : [
          {
            field: `input.fieldMapping.${index}.destinationField`,
            message: `${platform} accepts ${allowed.join(', ')}${hint}`,
          },
        ],
  );
  if (issues.length > 0) throw new ValidationError(issues);
}

const CreateAudienceSyncInput = builder.inputType('CreateAudienceSyncInput', {
  description: 'A new sync of an audience to a destination.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name, 1–255 characters.' }),
    description: t.string({ required: false, description: 'What the sync is for.' }),
    audienceId: t.id({ required: true, description: 'The audience to send.' }),
    destinationId: t.id({ required: true, description: 'Where to send it.' }),
    mode: t.field({ type: SyncModeEnum, required: false, description: 'MIRROR unless given.' }),
    fieldMapping: t.field({
      type: [FieldMappingInput],
      required: false,
      description: "Which identifiers to send; the platform's usual identifiers (email, phone) unless given.",
    }),
    schedule: t.field({ type: SyncScheduleInput, required: false, description: 'Every 24 hours unless given.' }),
    status: t.field({ type: SyncStatusEnum, required: false, description: 'ACTIVE unless given (DRAFT or PAUSED).' }),
    platformAudienceName: t.string({ required: false, description: 'Audience name on the platform (max 255).' }),
    platformAudienceId: t.string({
      required: false,
      description: 'An existing platform audience to fill instead of creating one.',
    }),
    runOnCreate: t.boolean({ required: false, description: 'Start a first run right away.' }),
    splitGroup: t.string({ required: false, description: SPLIT_GROUP_DESCRIPTION }),
    suppressionAudienceIds: t.idList({ required: false, description: SUPPRESSION_DESCRIPTION }),
  }),
});

const createSchema = z.object({
  name: nameSchema,
  description: descriptionSchema,
  mode: syncModeSchema.nullish(),
  fieldMapping: fieldMappingSchema.nullish(),
  schedule: scheduleSchema.nullish(),
  status: settableStatus.nullish(),
  platformAudienceName: audienceNameSchema.nullish(),
  platformAudienceId: z.string().trim().min(1).max(255).nullish(),
  runOnCreate: z.boolean().nullish(),
  ...syncTargetingSchema,
});

const DEFAULT_SCHEDULE = { scheduleCron: null, scheduleTimezone: null, scheduleFrequency: null, cadenceHours: 24 };

builder.mutationField('createAudienceSync', (t) =>
  t.field({
    type: AudienceSyncRef,
    description: 'Creates a sync. One audience syncs to one destination at most once (else a ConflictError).',
    authScopes: { write: true },
    errors: {
      types: [ValidationError, NotFoundError, ConflictError],
      dataField: { name: 'audienceSync', description: 'The new sync.' },
    },
    args: { input: t.arg({ type: CreateAudienceSyncInput, required: true, description: 'The sync.' }) },
    resolve: async (_root, { input }, context) => {
      const workspaceId = context.viewer!.workspaceId;
      const fields = parseInput(createSchema, input);
      const audienceId = parseGlobalId(input.audienceId, 'Audience', 'input.audienceId');
      const destinationId = parseGlobalId(input.destinationId, 'Destination', 'input.destinationId');

      const sync = await db().$transaction(async (tx) => {
        // Shares the audience's row lock with deleteAudience, which takes it exclusively.
        const [audience] = await tx.$queryRaw<{ id: string }[]>`
          SELECT id FROM audience
          WHERE id = ${audienceId}::uuid AND workspace_id = ${workspaceId}::uuid AND deleted_at IS NULL
          FOR SHARE`;
        if (!audience) throw new NotFoundError('input.audienceId', 'audience');
        const suppressionAudienceIds = await checkSyncTargeting(tx, {
          workspaceId,
          audienceId,
          splitGroup: fields.splitGroup,
          suppressionAudienceIds: fields.suppressionAudienceIds,
        });
        // Shares the destination's row lock with deleteDestination, which takes it exclusively.
        const [destination] = await tx.$queryRaw<{ platform: Parameters<typeof platformSpec>[0] }[]>`
          SELECT platform FROM destination
          WHERE id = ${destinationId}::uuid AND workspace_id = ${workspaceId}::uuid AND deleted_at IS NULL
          FOR SHARE`;
        if (!destination) throw new NotFoundError('input.destinationId', 'destination');
        const fieldMapping = fields.fieldMapping ?? platformSpec(destination.platform).defaultFieldMapping;
        checkMappingTargets(fieldMapping, destination.platform);

        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`sync:${audienceId}:${destinationId}`}))`;
        const existing = await tx.audienceSync.findFirst({ where: { audienceId, destinationId, deletedAt: null } });
        if (existing) {
          throw new ConflictError(`A sync of this audience to this destination already exists ("${existing.name}")`);
        }
        const created = await tx.audienceSync.create({
          data: {
            workspaceId,
            audienceId,
            destinationId,
            name: fields.name,
            description: fields.description,
            mode: fields.mode ?? 'MIRROR',
            fieldMapping: fieldMapping as object[],
            ...(fields.schedule ?? DEFAULT_SCHEDULE),
            status: fields.status ?? 'ACTIVE',
            platformAudienceName: fields.platformAudienceName,
            platformAudienceId: fields.platformAudienceId,
            splitGroup: fields.splitGroup,
          },
        });
        if (suppressionAudienceIds) await saveSuppressions(tx, created.id, suppressionAudienceIds);
        // Inside the transaction: if the schedule cannot be saved, the sync is not created either.
        await applySyncSchedule(created);
        return created;
      });
      publishSyncUpdated(sync);
      if (fields.runOnCreate && sync.status === 'ACTIVE') {
        const requested = await requestSyncRun(sync.id, 'CREATE', false);
        if (requested) await enqueueSyncRun(requested.run.id);
      }
      return sync;
    },
  }),
);

const UpdateAudienceSyncInput = builder.inputType('UpdateAudienceSyncInput', {
  description: 'Changes to a sync; omitted fields stay as they are.',
  fields: (t) => ({
    name: t.string({ required: false, description: 'Display name, 1–255 characters.' }),
    description: t.string({ required: false, description: 'What the sync is for.' }),
    mode: t.field({ type: SyncModeEnum, required: false, description: 'How the destination audience is changed.' }),
    fieldMapping: t.field({ type: [FieldMappingInput], required: false, description: 'Replaces the mapping.' }),
    schedule: t.field({ type: SyncScheduleInput, required: false, description: 'Replaces the schedule.' }),
    status: t.field({
      type: SyncStatusEnum,
      required: false,
      description: 'PAUSED stops the schedule; ACTIVE resumes it.',
    }),
    platformAudienceName: t.string({ required: false, description: 'Audience name on the platform (max 255).' }),
    splitGroup: t.string({ required: false, description: `${SPLIT_GROUP_DESCRIPTION} Null sends the whole audience again.` }),
    suppressionAudienceIds: t.idList({ required: false, description: `Replaces the suppression audiences. ${SUPPRESSION_DESCRIPTION}` }),
  }),
});

const updateSchema = z.object({
  name: nameSchema.nullish(),
  description: descriptionSchema,
  mode: syncModeSchema.nullish(),
  fieldMapping: fieldMappingSchema.nullish(),
  schedule: scheduleSchema.nullish(),
  status: settableStatus.nullish(),
  platformAudienceName: audienceNameSchema.nullish(),
  ...syncTargetingSchema,
});

/** Loads a live sync of the caller's workspace, locking its row for the rest of the transaction. */
async function lockSync(
  tx: Parameters<Parameters<ReturnType<typeof db>['$transaction']>[0]>[0],
  syncId: string,
  workspaceId: string,
  field: string,
) {
  const [locked] = await tx.$queryRaw<{ id: string }[]>`
    SELECT id FROM audience_sync
    WHERE id = ${syncId}::uuid AND workspace_id = ${workspaceId}::uuid AND deleted_at IS NULL
    FOR UPDATE`;
  if (!locked) throw new NotFoundError(field, 'sync');
  return tx.audienceSync.findUniqueOrThrow({ where: { id: syncId }, include: { destination: true } });
}

builder.mutationField('updateAudienceSync', (t) =>
  t.field({
    type: AudienceSyncRef,
    description: 'Changes a sync. Only the fields given change.',
    authScopes: { write: true },
    errors: {
      types: [ValidationError, NotFoundError],
      dataField: { name: 'audienceSync', description: 'The sync as changed.' },
    },
    args: {
      id: t.arg.id({ required: true, description: 'The sync to change.' }),
      input: t.arg({ type: UpdateAudienceSyncInput, required: true, description: 'The changes.' }),
    },
    resolve: async (_root, { id, input }, context) => {
      const fields = parseInput(updateSchema, input);
      const syncId = parseGlobalId(id, 'AudienceSync', 'id');
      const updated = await db().$transaction(async (tx) => {
        const sync = await lockSync(tx, syncId, context.viewer!.workspaceId, 'id');
        if (fields.fieldMapping) checkMappingTargets(fields.fieldMapping, sync.destination.platform);
        const suppressionAudienceIds = await checkSyncTargeting(tx, {
          workspaceId: sync.workspaceId,
          audienceId: sync.audienceId,
          splitGroup: fields.splitGroup,
          suppressionAudienceIds: fields.suppressionAudienceIds,
        });
        if (suppressionAudienceIds) await saveSuppressions(tx, sync.id, suppressionAudienceIds);
        const updated = await tx.audienceSync.update({
          where: { id: sync.id },
          data: {
            name: fields.name ?? undefined,
            description: input.description === undefined ? undefined : fields.description,
            mode: fields.mode ?? undefined,
            fieldMapping: (fields.fieldMapping as object[] | undefined) ?? undefined,
            ...(fields.schedule ?? {}),
            ...(fields.status ? { status: fields.status, statusError: null } : {}),
            platformAudienceName: fields.platformAudienceName ?? undefined,
            splitGroup: input.splitGroup === undefined ? undefined : fields.splitGroup,
          },
        });
        await applySyncSchedule(updated);
        return updated;
      });
      publishSyncUpdated(updated);
      return updated;
    },
  }),
);

const DeleteAudienceSyncSuccess = builder.objectRef<{ deletedId: string }>('DeleteAudienceSyncSuccess').implement({
  description: 'The sync was deleted: it no longer runs or appears in lists. The platform audience is left as it is.',
  fields: (t) => ({ deletedId: t.exposeID('deletedId', { description: 'The global id of the deleted sync.' }) }),
});

builder.mutationField('deleteAudienceSync', (t) =>
  t.field({
    type: DeleteAudienceSyncSuccess,
    description: 'Deletes a sync: it stops running and its queued runs are cancelled. The platform audience stays.',
    authScopes: { write: true },
    errors: { types: [ValidationError, NotFoundError], directResult: true },
    args: { id: t.arg.id({ required: true, description: 'The sync to delete.' }) },
    resolve: async (_root, { id }, context) => {
      const syncId = parseGlobalId(id, 'AudienceSync', 'id');
      await db().$transaction(async (tx) => {
        const sync = await lockSync(tx, syncId, context.viewer!.workspaceId, 'id');
        await deleteSyncs(tx, { id: sync.id });
      });
      // Its synced state goes in the background, in chunks, once the deletion is committed.
      await requestCleanup();
      return { deletedId: String(id) };
    },
  }),
);

builder.mutationField('triggerAudienceSync', (t) =>
  t.field({
    type: TriggerAudienceSyncSuccess,
    description:
      'Queues a run now. While a run is already queued, the request joins it instead of queuing another. ' +
      'With `dryRun`, the run only counts what it would add and remove.',
    authScopes: { write: true },
    errors: { types: [ValidationError, NotFoundError, ConflictError], directResult: true },
    args: {
      id: t.arg.id({ required: true, description: 'The sync to run.' }),
      dryRun: t.arg.boolean({ required: false, description: 'Count only; send nothing.' }),
    },
    resolve: async (_root, { id, dryRun }, context) => {
      const syncId = parseGlobalId(id, 'AudienceSync', 'id');
      const sync = await db().audienceSync.findFirst({
        where: { id: syncId, workspaceId: context.viewer!.workspaceId, deletedAt: null },
      });
      if (!sync) throw new NotFoundError('id', 'sync');
      if (!dryRun && (sync.status === 'PAUSED' || sync.status === 'DRAFT')) {
        throw new ConflictError(`The sync is ${sync.status.toLowerCase()}: set its status to ACTIVE to run it`);
      }
      const requested = await requestSyncRun(sync.id, 'MANUAL', dryRun ?? false);
      if (!requested) throw new NotFoundError('id', 'sync');
      if (!requested.coalesced) await enqueueSyncRun(requested.run.id);
      return requested;
    },
  }),
);


builder.mutationField('refreshPlatformAudience', (t) =>
  t.field({
    type: AudienceSyncRef,
    description: "Reads now what the platform reports about the sync's audience (size, match rate, status).",
    authScopes: { write: true },
    errors: {
      types: [ValidationError, NotFoundError, ConflictError, PlatformError],
      dataField: { name: 'audienceSync', description: 'The sync, with its platformAudience as just read.' },
    },
    args: { id: t.arg.id({ required: true, description: 'The sync whose platform audience to read.' }) },
    resolve: async (_root, { id }, context) => {
      const syncId = parseGlobalId(id, 'AudienceSync', 'id');
      const sync = await db().audienceSync.findFirst({
        where: { id: syncId, workspaceId: context.viewer!.workspaceId, deletedAt: null },
      });
      if (!sync) throw new NotFoundError('id', 'sync');
      try {
        await refreshPlatformAudience(sync.id, context.clock);
      } catch (error) {
        if (error instanceof PlatformAudienceUnavailable || error instanceof MissingCredentialsError) {
          throw new ConflictError(error.message);
        }
        if (error instanceof DestinationError) throw new PlatformError(error.message, error.details.retryable);
        throw error;
      }
      return db().audienceSync.findUniqueOrThrow({ where: { id: sync.id } });
    },
  }),
);
