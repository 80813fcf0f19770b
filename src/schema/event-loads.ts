import type { RecordEvent } from '../infra/pubsub.js';
import { subscriptionEventLoads } from '../infra/metrics.js';

/** How long a loaded record stays shared: long enough for every subscriber of a busy gateway to
 * pull the event from its queue. */
const SHARED_FOR_MS = 10_000;

const loads = new Map<string, Promise<unknown>>();

/**
 * Loads the record an event names once per publication on this gateway: the first subscriber to
 * handle the event starts the load, every other one (whatever topic the event reached it by) gets
 * the same promise, then filters the record by its own workspace and arguments. Subscribers only
 * read what they are given.
 */
export function loadOncePerEvent<T>(kind: 'run' | 'sync', event: RecordEvent, load: () => Promise<T>): Promise<T> {
  const key = `${kind}:${event.version}`;
  let loading = loads.get(key) as Promise<T> | undefined;
  if (!loading) {
    subscriptionEventLoads.inc({ kind });
    loading = load();
    loads.set(key, loading);
    setTimeout(() => loads.delete(key), SHARED_FOR_MS).unref();
  }
  return loading;
}
