import { GraphQLError } from 'graphql';
import { db } from '../infra/db.js';
import type { SyncRun, Task } from '../generated/prisma/client.js';
import { SyncRunStatus, SyncRunTrigger } from '../generated/prisma/enums.js';
import { filter, map, pipe } from 'graphql-yoga';
import { logger } from '../infra/logger.js';
import { eventBus, type SyncEvent } from '../infra/pubsub.js';
import { cancelSyncRun } from '../sync/cancel-run.js';
import { builder } from './builder.js';
import { DomainError, ErrorInterface, NotFoundError, ValidationError } from './errors.js';
import { loadOncePerEvent } from './event-loads.js';
import { IdentifierCountRef, identifierCountList } from './identifier-count.js';
import type { Context } from './context.js';
import { parseGlobalId } from './global-id.js';

export const SyncRunStatusEnum = builder.enumType(SyncRunStatus, {
  name: 'SyncRunStatus',
  description: 'Where a run is in its life.',
  values: {
    QUEUED: { description: 'Waiting for a worker.' },
    RUNNING: { description: 'Sending; see `phase` and `progress`.' },
    SUCCEEDED: { description: 'Finished; the destination holds what the run meant to send.' },
    FAILED: { description: 'Stopped on an error; see `errorMessage`. What was sent before stays recorded.' },
    CANCELLED: {
      description:
        'Stopped by cancelSyncRun (see `cancelledBy`), or dropped before it ran because the sync was deleted. ' +
        'What a cancelled run sent and the destination confirmed stays recorded.',
    },
  },
});

export const SyncRunTriggerEnum = builder.enumType(SyncRunTrigger, {
  name: 'SyncRunTrigger',
  description: 'What started a run.',
  values: {
    MANUAL: { description: 'triggerAudienceSync.' },
    SCHEDULE: { description: "The sync's schedule." },
    CREATE: { description: 'The sync was created with `runOnCreate`.' },
    API: { description: 'A member-level API call.' },
    PLATFORM_JOB: {
      description: 'A job the platform was running on the same list finished, so members that had to wait are sent.',
    },
  },
});

const UnusableCountRef = builder.objectRef<{ reason: string; count: number }>('UnusableCount').implement({
  description: 'Members a run could not send, for one reason.',
  fields: (t) => ({
    reason: t.exposeString('reason', {
      description: 'NO_MAPPED_VALUE: none of the mapped fields has a value; UNUSABLE_VALUE: none passes the platform rules.',
    }),
    count: t.expose('count', { type: 'NonNegativeInt', description: 'How many members.' }),
  }),
});

export const SyncRunRef = builder.prismaNode('SyncRun', {
  description: 'One execution of a sync, with its live progress and outcome.',
  id: { field: 'id' },
  // Select mode: a query loads only the columns its fields use (https://pothos-graphql.dev/docs/plugins/prisma/selections).
  select: { id: true },
  nullable: true,
  findUnique: (id, context) => ({ id, workspaceId: context.viewer?.workspaceId ?? '' }),
  fields: (t) => ({
    sync: t.relation('sync', { description: 'The sync this run belongs to.' }),
    status: t.expose('status', { type: SyncRunStatusEnum, description: 'Where the run is in its life.' }),
    trigger: t.expose('trigger', { type: SyncRunTriggerEnum, description: 'What started the run.' }),
    dryRun: t.exposeBoolean('dryRun', { description: 'Whether the run only counted, sending nothing.' }),
    phase: t.exposeString('phase', {
      description: 'What the run is doing: queued, computing, preparing, adding, removing, or how it ended.',
    }),
    progress: t.exposeFloat('progress', { description: 'Share of the planned changes done, from 0 to 1.' }),
    membersAdded: t.expose('membersAdded', { type: 'NonNegativeInt', description: 'Members added (or, for a dry run, that would be).' }),
    membersRemoved: t.expose('membersRemoved', { type: 'NonNegativeInt', description: 'Members removed (or, for a dry run, that would be).' }),
    membersUpdated: t.exposeInt('membersUpdated', {
      description:
        'UPSERT: members re-sent because their mapped identifiers changed since they were synced (a dry run does not compare them, so counts none).',
    }),
    identifierCounts: t.field({
      type: [IdentifierCountRef],
      description: 'Members sent, per identifier type present in what was sent (adds, updates and removes together).',
      select: { identifierCounts: true },
      resolve: (run) => identifierCountList(run.identifierCounts),
    }),
    membersReceived: t.expose('membersReceived', {
      type: 'NonNegativeInt',
      nullable: true,
      description:
        "Rows the platform itself reports having received for this run (Meta's `num_received`, summed over batches): " +
        'its own count, which may differ from what the gateway sent. Null when the platform does not report one.',
    }),
    membersFailed: t.expose('membersFailed', { type: 'NonNegativeInt', description: 'Members the destination failed to take.' }),
    membersInvalid: t.expose('membersInvalid', {
      type: 'NonNegativeInt',
      description: 'Rows the platform rejected in this run (see `invalidSamples`); they are not retried.',
    }),
    membersUnusable: t.expose('membersUnusable', {
      type: 'NonNegativeInt',
      description:
        'Audience members the field mapping cannot send (no mapped value, or none the platform would take): never ' +
        'sent, so every run counts them again. `unusableCounts` says why.',
    }),
    unusableCounts: t.field({
      type: [UnusableCountRef],
      description: 'How many members could not be sent, per reason (NO_MAPPED_VALUE, UNUSABLE_VALUE).',
      select: { unusableCounts: true },
      resolve: (run) =>
        Object.entries(run.unusableCounts as Record<string, number>).map(([reason, count]) => ({ reason, count })),
    }),
    invalidSamples: t.exposeStringList('invalidSamples', {
      description: 'Up to 20 examples of rows the platform rejected, as it described them ("value: reason").',
    }),
    membersRefused: t.expose('membersRefused', {
      type: 'NonNegativeInt',
      description:
        'Members the platform refused to change as a whole (see `refusalReason`); they stay pending and later runs retry them.',
    }),
    refusalReason: t.exposeString('refusalReason', {
      nullable: true,
      description: 'Why the platform refused changes, e.g. Meta keeping an audience above its minimum size.',
    }),
    totalMembers: t.expose('totalMembers', { type: 'NonNegativeInt', description: 'Members in the audience when the run computed its changes.' }),
    plannedAdds: t.expose('plannedAdds', {
      type: 'NonNegativeInt',
      nullable: true,
      description:
        'Members the run planned to add when it computed its changes (a resumed run plans what was left); null until then. ' +
        'Sides run in order (adds, updates, removes), so `progress` tells how far each has got.',
    }),
    plannedUpdates: t.expose('plannedUpdates', {
      type: 'NonNegativeInt',
      nullable: true,
      description: 'UPSERT: members the run planned to re-send as changed (see `plannedAdds`); null until computed.',
    }),
    plannedRemoves: t.expose('plannedRemoves', {
      type: 'NonNegativeInt',
      nullable: true,
      description: 'Members the run planned to remove (see `plannedAdds`); null until computed.',
    }),
    waitedSeconds: t.float({
      description: 'Seconds spent waiting on the platform: throttling pauses it asked for, and retry backoff.',
      select: { waitedMs: true },
      resolve: (run) => run.waitedMs / 1000,
    }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When a worker started the run.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When the run ended.' }),
    errorMessage: t.exposeString('errorMessage', { nullable: true, description: 'Why the run failed, in plain words.' }),
    activity: t.exposeString('activity', {
      nullable: true,
      description:
        'What the run is doing right now, in words ("adding: batch 3 of 10 to Meta (4 s)", "waiting 40 s for Meta"); ' +
        'refreshed at least every second while a batch or a pause lasts. Null before the run starts and once it ends.',
    }),
    cancelRequestedAt: t.expose('cancelRequestedAt', {
      type: 'DateTime',
      nullable: true,
      description:
        'When cancelSyncRun was called for this run; a running run stops after its current batch (one that had ' +
        'sent its last batch by then still ends SUCCEEDED).',
    }),
    cancelledBy: t.relation('cancelledBy', {
      nullable: true,
      description: 'The API key that cancelled the run; null when none did, or once that key was deleted (see `cancelledByName`).',
    }),
    cancelledByName: t.exposeString('cancelledByName', {
      nullable: true,
      description: 'The name of the API key that cancelled the run, as it was then.',
    }),
    errorDetails: t.expose('errorDetails', {
      type: 'JSON',
      nullable: true,
      description: 'Machine-readable details of the failure (platform, status, code, retryable).',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the run was requested.' }),
  }),
});

/** What triggerAudienceSync returns. */
export const TriggerAudienceSyncSuccess = builder
  .objectRef<{ run: SyncRun; task: Task; coalesced: boolean }>('TriggerAudienceSyncSuccess')
  .implement({
    description: 'The run is queued.',
    fields: (t) => ({
      task: t.prismaField({
        type: 'Task',
        description: 'Follows the run to its end.',
        resolve: (query, result) => db().task.findUniqueOrThrow({ ...query, where: { id: result.task.id } }),
      }),
      syncRun: t.prismaField({
        type: 'SyncRun',
        description: 'The queued run.',
        resolve: (query, result) => db().syncRun.findUniqueOrThrow({ ...query, where: { id: result.run.id } }),
      }),
      coalesced: t.exposeBoolean('coalesced', {
        description: 'True when a run was already queued and this request joined it.',
      }),
    }),
  });

/** Subscriptions must have a caller; events of other workspaces are dropped. */
export function requireWorkspace(context: Context): string {
  if (context.admin) {
    throw new GraphQLError('The admin token only manages workspaces and API keys: use an API key of the workspace', {
      extensions: { code: 'FORBIDDEN' },
    });
  }
  if (!context.viewer) {
    throw new GraphQLError('Authentication required: send an API key', { extensions: { code: 'UNAUTHENTICATED' } });
  }
  return context.viewer.workspaceId;
}

/** The run an event names, loaded once per event on this gateway (not per subscriber); null when it
 * is gone or could not be read. */
function loadRunOf(event: SyncEvent): Promise<SyncRun | null> {
  return loadOncePerEvent('run', event, () =>
    db()
      .syncRun.findUnique({ where: { id: event.id } })
      .catch((error: unknown) => {
        logger.warn({ err: error, runId: event.id }, 'Could not load a run for its subscribers');
        return null;
      }),
  );
}

/** The runs of a stream of events, for one operation (its subscribers share it: see
 * useSharedSubscriptions): its workspace's only, then `accept`ed. */
function runsOf(events: AsyncIterable<SyncEvent>, workspaceId: string, accept: (run: SyncRun) => boolean = () => true) {
  return pipe(
    events,
    filter((event: SyncEvent) => event.workspaceId === workspaceId),
    map(loadRunOf),
    filter((run: SyncRun | null): run is SyncRun => run !== null && run.workspaceId === workspaceId && accept(run)),
  );
}

builder.subscriptionField('syncRunUpdated', (t) =>
  t.field({
    type: SyncRunRef,
    nullable: false,
    description: 'The run, each time it changes (status, phase, progress, activity, counts).',
    args: { runId: t.arg.id({ required: true, description: 'The run to follow.' }) },
    subscribe: (_root, args, context) => {
      const workspaceId = requireWorkspace(context);
      const runId = parseGlobalId(args.runId, 'SyncRun', 'runId');
      return runsOf(eventBus().subscribe('syncRun:updated', runId), workspaceId);
    },
    resolve: (run) => run as SyncRun,
  }),
);

builder.subscriptionField('audienceSyncRunUpdated', (t) =>
  t.field({
    type: SyncRunRef,
    nullable: false,
    description: "Any of the sync's runs, each time one changes: new runs included.",
    args: { syncId: t.arg.id({ required: true, description: 'The sync whose runs to follow.' }) },
    subscribe: (_root, args, context) => {
      const workspaceId = requireWorkspace(context);
      const syncId = parseGlobalId(args.syncId, 'AudienceSync', 'syncId');
      return runsOf(eventBus().subscribe('audienceSync:runUpdated', syncId), workspaceId);
    },
    resolve: (run) => run as SyncRun,
  }),
);

builder.subscriptionField('syncRunsUpdated', (t) =>
  t.field({
    type: SyncRunRef,
    nullable: false,
    description:
      'Every run of your workspace, each time one changes (new runs included): the stream for a dashboard. ' +
      'A result identical to the previous one is not sent again.',
    args: {
      syncId: t.arg.id({ required: false, description: "Only this sync's runs." }),
      status: t.arg({
        type: [SyncRunStatusEnum],
        required: false,
        description: 'Only runs in one of these statuses after the change (e.g. [SUCCEEDED, FAILED] for runs that end).',
      }),
    },
    subscribe: (_root, args, context) => {
      const workspaceId = requireWorkspace(context);
      const syncId = args.syncId == null ? null : parseGlobalId(args.syncId, 'AudienceSync', 'syncId');
      const statuses = args.status == null ? null : new Set(args.status);
      return runsOf(
        eventBus().subscribe('workspace:runUpdated', workspaceId),
        workspaceId,
        (run) => (syncId === null || run.syncId === syncId) && (statuses === null || statuses.has(run.status)),
      );
    },
    resolve: (run) => run as SyncRun,
  }),
);

/** cancelSyncRun on a run that has already ended. */
export class SyncRunFinishedError extends DomainError {
  constructor(readonly status: SyncRunStatus) {
    super(`The run has already ended (${status}): there is nothing to cancel`, 'RUN_FINISHED');
  }
}

builder.objectType(SyncRunFinishedError, {
  name: 'SyncRunFinishedError',
  description: 'The run has already ended (SUCCEEDED, FAILED or CANCELLED): nothing was changed.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    status: t.expose('status', { type: SyncRunStatusEnum, description: 'How the run ended.' }),
  }),
});

const CancelSyncRunSuccess = builder
  .objectRef<{ run: SyncRun; stopping: boolean }>('CancelSyncRunSuccess')
  .implement({
    description: 'The run is cancelled, or will stop after its current batch.',
    fields: (t) => ({
      syncRun: t.prismaField({
        type: 'SyncRun',
        description: 'The run as it is now: CANCELLED if it was queued, still RUNNING with `cancelRequestedAt` set if not.',
        resolve: (query, result) => db().syncRun.findUniqueOrThrow({ ...query, where: { id: result.run.id } }),
      }),
      stopping: t.exposeBoolean('stopping', {
        description:
          'True when the run was running: its worker stops after the current batch and ends it CANCELLED ' +
          '(follow it with syncRunUpdated). False when it was queued and is already CANCELLED.',
      }),
    }),
  });

builder.mutationField('cancelSyncRun', (t) =>
  t.field({
    type: CancelSyncRunSuccess,
    description:
      'Cancels a run. A queued run is cancelled at once; a running one stops after its current batch: what the ' +
      'destination confirmed stays recorded, so the next run sends only the rest. The run ends CANCELLED, with ' +
      '`cancelledBy` naming your API key.',
    authScopes: { write: true },
    errors: { types: [ValidationError, NotFoundError, SyncRunFinishedError], directResult: true },
    args: { id: t.arg.id({ required: true, description: 'The run to cancel.' }) },
    resolve: async (_root, { id }, context) => {
      const runId = parseGlobalId(id, 'SyncRun', 'id');
      const viewer = context.viewer!;
      const cancelled = await cancelSyncRun(runId, viewer.workspaceId, { apiKeyId: viewer.apiKeyId });
      if (cancelled.outcome === 'not-found') throw new NotFoundError('id', 'run');
      if (cancelled.outcome === 'finished') throw new SyncRunFinishedError(cancelled.status);
      return { run: cancelled.run, stopping: cancelled.outcome === 'stopping' };
    },
  }),
);
