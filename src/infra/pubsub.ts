import { setMaxListeners } from 'node:events';
import { createPubSub } from 'graphql-yoga';
import type { Redis } from 'ioredis';
import { logger } from './logger.js';

/** Events carry ids only; subscription fields load the fresh record (and check its workspace). */
export interface RecordEvent {
  id: string;
  workspaceId: string;
  /** Unique per publication: the gateway loads the record once per version, whichever topics and
   * subscribers it reaches. */
  version: string;
}

/** A change to a sync or one of its runs. */
export interface SyncEvent extends RecordEvent {
  syncId: string;
}

/** An API key was revoked: every gateway closes the WebSockets opened with it. */
export interface ApiKeyRevokedEvent {
  apiKeyId: string;
  workspaceId: string;
}

type Topics = {
  /** A run changed; keyed by run id. */
  'syncRun:updated': [runId: string, event: SyncEvent];
  /** One of a sync's runs changed; keyed by sync id. */
  'audienceSync:runUpdated': [syncId: string, event: SyncEvent];
  /** One of a workspace's runs changed; keyed by workspace id. */
  'workspace:runUpdated': [workspaceId: string, event: SyncEvent];
  /** One of a workspace's syncs changed (status, last sync, schedule); keyed by workspace id. */
  'workspace:syncUpdated': [workspaceId: string, event: SyncEvent];
  /** A task changed; keyed by task id. */
  'task:updated': [taskId: string, event: RecordEvent];
  'apiKey:revoked': [event: ApiKeyRevokedEvent];
};

export type EventBus = ReturnType<typeof createPubSub<Topics>>;

let bus: EventBus | undefined;
let redisClients: Redis[] = [];

/** In-process by default; through Redis when `redisUrl` is set, so that events published by a
 * worker reach subscribers on every gateway instance. The Redis client is loaded only then. */
export async function openEventBus(redisUrl: string | undefined): Promise<EventBus> {
  if (redisUrl) {
    const [{ Redis }, { createRedisEventTarget }] = await Promise.all([
      import('ioredis'),
      import('@graphql-yoga/redis-event-target'),
    ]);
    redisClients = [new Redis(redisUrl), new Redis(redisUrl)];
    // ioredis reconnects by itself; unheard, its errors are printed as unhandled.
    for (const client of redisClients) client.on('error', (error: Error) => logger.warn({ err: error }, 'Event bus Redis error'));
    const [publishClient, subscribeClient] = redisClients as [Redis, Redis];
    bus = createPubSub<Topics>({ eventTarget: createRedisEventTarget({ publishClient, subscribeClient }) });
  } else {
    // Every subscriber of a topic is one listener: a dashboard's thousand are not a leak.
    const eventTarget = new EventTarget();
    setMaxListeners(0, eventTarget);
    bus = createPubSub<Topics>({ eventTarget });
  }
  return bus;
}

export async function closeEventBus(): Promise<void> {
  bus = undefined;
  await Promise.all(redisClients.map((client) => client.quit()));
  redisClients = [];
}

export function eventBus(): EventBus {
  if (!bus) throw new Error('The event bus is not open: start the app first');
  return bus;
}
