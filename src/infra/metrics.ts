import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The process's Prometheus registry, served at /metrics. */
export const metrics = new Registry();
collectDefaultMetrics({ register: metrics });

export const syncRunsFinished = new Counter({
  name: 'audience_sync_runs_finished_total',
  help: 'Sync runs that ended, by outcome and platform.',
  labelNames: ['status', 'platform'] as const,
  registers: [metrics],
});

export const membersSent = new Counter({
  name: 'audience_sync_members_sent_total',
  help: 'Members a destination accepted, by platform and action (add or remove).',
  labelNames: ['platform', 'action'] as const,
  registers: [metrics],
});

export const platformErrors = new Counter({
  name: 'audience_sync_platform_errors_total',
  help: 'Errors platforms returned, by platform and kind (retryable or not).',
  labelNames: ['platform', 'kind'] as const,
  registers: [metrics],
});

export const apiVersionNotices = new Counter({
  name: 'audience_sync_api_version_notices_total',
  help:
    'Sync runs that started on a platform API version switched off (state sunset: the run failed) or switched ' +
    'off within 60 days (state ending), by platform and version.',
  labelNames: ['platform', 'api_version', 'state'] as const,
  registers: [metrics],
});

export const activeSubscriptions = new Gauge({
  name: 'graphql_active_subscriptions',
  help: 'GraphQL subscriptions open on this gateway (WebSocket and SSE).',
  registers: [metrics],
});

export const subscriptionEventLoads = new Counter({
  name: 'graphql_subscription_event_loads_total',
  help: 'Records loaded for subscription events, by kind (run, sync): one per event on a gateway, whatever its subscribers.',
  labelNames: ['kind'] as const,
  registers: [metrics],
});

export const requestsWaiting = new Gauge({
  name: 'graphql_http_requests_waiting',
  help: 'GraphQL HTTP requests waiting for their turn (MAX_CONCURRENT_REQUESTS are handled at once).',
  registers: [metrics],
});

export const requestsShed = new Counter({
  name: 'graphql_http_requests_shed_total',
  help: 'GraphQL HTTP requests answered 503 (with Retry-After) because the gateway was at capacity.',
  registers: [metrics],
});

export const responseCacheReads = new Counter({
  name: 'graphql_response_cache_reads_total',
  help: 'Queries looked up in the response cache, by outcome (hit: answered from the cache; miss: executed).',
  labelNames: ['outcome'] as const,
  registers: [metrics],
});

/** Counts a subscription as active until its stream ends or the client leaves. The wrapper passes
 * `return()` straight through (an async generator would hold it until the next event, leaving a
 * quiet subscription registered forever). */
export function trackSubscription<T>(events: AsyncIterable<T>): AsyncIterableIterator<T> {
  const iterator = events[Symbol.asyncIterator]();
  let open = true;
  const close = () => {
    if (open) activeSubscriptions.dec();
    open = false;
  };
  activeSubscriptions.inc();
  return {
    async next() {
      const result = await iterator.next();
      if (result.done) close();
      return result;
    },
    async return(value?: unknown) {
      close();
      return (await iterator.return?.(value)) ?? { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      close();
      if (iterator.throw) return iterator.throw(error);
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
