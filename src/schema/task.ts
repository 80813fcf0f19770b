import { db } from '../infra/db.js';
import { TaskStatus } from '../generated/prisma/enums.js';
import { filter, pipe } from 'graphql-yoga';
import { eventBus } from '../infra/pubsub.js';
import { builder } from './builder.js';
import { parseGlobalId } from './global-id.js';
import { requireWorkspace } from './sync-run.js';

const TaskStatusEnum = builder.enumType(TaskStatus, {
  name: 'TaskStatus',
  description: 'Where an asynchronous operation is.',
  values: {
    QUEUED: { description: 'Accepted, not started.' },
    RUNNING: { description: 'Under way.' },
    COMPLETED: { description: 'Done; see `result`.' },
    FAILED: { description: 'Stopped; see `error`.' },
  },
});

export const TaskRef = builder.prismaNode('Task', {
  description: 'An asynchronous operation: poll it with `task(id)` or follow it with `taskUpdated`.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, context) => ({ id, workspaceId: context.viewer?.workspaceId ?? '' }),
  fields: (t) => ({
    kind: t.exposeString('kind', {
      description: 'What the operation does: TRIGGER_AUDIENCE_SYNC, SYNC_AUDIENCES or IMPORT_AUDIENCE_MEMBERS.',
    }),
    status: t.expose('status', { type: TaskStatusEnum, description: 'Where the operation is.' }),
    progress: t.exposeFloat('progress', {
      description: 'Share of the work done, from 0 to 1 (tasks that process items: imports, member syncs).',
    }),
    processed: t.expose('processed', { type: 'NonNegativeInt', description: 'Items (rows, members) processed so far.' }),
    total: t.expose('total', {
      type: 'NonNegativeInt',
      nullable: true,
      description: 'Items to process, once known; null for tasks that do not count items.',
    }),
    result: t.expose('result', {
      type: 'JSON',
      nullable: true,
      description:
        'The outcome, once COMPLETED (for imports and member syncs, the counts so far while RUNNING). ' +
        'When `notifyUrl` was given, `notification` says whether it was called.',
    }),
    error: t.exposeString('error', { nullable: true, description: 'Why it failed.' }),
    run: t.relation('run', { nullable: true, description: 'The sync run this operation started, if any.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the operation was accepted.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When a worker started it.' }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true, description: 'When it ended.' }),
  }),
});

builder.queryField('task', (t) =>
  t.prismaField({
    type: 'Task',
    nullable: true,
    description: 'An asynchronous operation of your workspace, or null if there is none with this id.',
    authScopes: { workspace: true },
    args: { id: t.arg.id({ required: true, description: 'The task id.' }) },
    resolve: (query, _root, args, context) =>
      db().task.findFirst({
        ...query,
        where: { id: parseGlobalId(args.id, 'Task', 'id'), workspaceId: context.viewer!.workspaceId },
      }),
  }),
);

builder.subscriptionField('taskUpdated', (t) =>
  t.prismaField({
    type: 'Task',
    description: 'The task, each time it changes.',
    args: { taskId: t.arg.id({ required: true, description: 'The task to follow.' }) },
    subscribe: (_root, args, context) => {
      const workspaceId = requireWorkspace(context);
      const taskId = parseGlobalId(args.taskId, 'Task', 'taskId');
      return pipe(eventBus().subscribe('task:updated', taskId), filter((event) => event.workspaceId === workspaceId));
    },
    resolve: (query, event) => db().task.findUniqueOrThrow({ ...query, where: { id: (event as { id: string }).id } }),
  }),
);
