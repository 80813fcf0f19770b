import { randomUUID } from 'node:crypto';
import { eventBus } from './pubsub.js';

/** Tells subscribers that a run changed (they load it fresh, once per gateway: see loadOncePerEvent). */
export function publishRunUpdated(run: { id: string; syncId: string; workspaceId: string }): void {
  const event = { id: run.id, workspaceId: run.workspaceId, syncId: run.syncId, version: randomUUID() };
  eventBus().publish('syncRun:updated', run.id, event);
  eventBus().publish('audienceSync:runUpdated', run.syncId, event);
  eventBus().publish('workspace:runUpdated', run.workspaceId, event);
}

/** Tells subscribers that a sync's status, last sync or next scheduled run may have changed. */
export function publishSyncUpdated(sync: { id: string; workspaceId: string }): void {
  const event = { id: sync.id, workspaceId: sync.workspaceId, syncId: sync.id, version: randomUUID() };
  eventBus().publish('workspace:syncUpdated', sync.workspaceId, event);
}

export function publishTaskUpdated(task: { id: string; workspaceId: string }): void {
  eventBus().publish('task:updated', task.id, { id: task.id, workspaceId: task.workspaceId, version: randomUUID() });
}
