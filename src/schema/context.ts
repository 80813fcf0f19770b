import type { Viewer } from '../api-keys.js';

/** Per-operation context, shared by HTTP, SSE and WebSocket operations. */
export interface Context {
  /** The caller, or null when no valid API key came with the request. */
  viewer: Viewer | null;
  requestId: string;
}
