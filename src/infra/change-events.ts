import { eventBus } from './pubsub.js';

/** Tells subscribers that a run changed (they load it fresh). */
export function publishRunUpdated(run: { id: string; syncId: string; workspaceId: string }): void {
  const event = { id: run.id, workspaceId: run.workspaceId };
  eventBus().publish('syncRun:updated', run.id, event);
  eventBus().publish('audienceSync:runUpdated', run.syncId, event);
}

export function publishTaskUpdated(task: { id: string; workspaceId: string }): void {
  eventBus().publish('task:updated', task.id, { id: task.id, workspaceId: task.workspaceId });
}
