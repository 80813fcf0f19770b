import type { Viewer } from '../identity/api-keys.js';
import type { Clock } from '../infra/clock.js';

/** Per-operation context, shared by HTTP, SSE and WebSocket operations. */
export interface Context {
  /** The caller, or null when no valid API key came with the request. */
  viewer: Viewer | null;
  /** True when the request carried the admin token (ADMIN_TOKEN): it manages workspaces and API
   * keys, and has no workspace of its own (viewer is null). */
  admin: boolean;
  requestId: string;
  /** Today, for what depends on the calendar (platform API versions' sunsets). */
  clock: Clock;
  /** Set by a resolver whose answer moves with the clock alone (a count over "the last N days", an
   * API version's sunset): the gateway does not keep such an answer (src/gateway/response-cache.ts). */
  readsTheClock?: boolean;
}
