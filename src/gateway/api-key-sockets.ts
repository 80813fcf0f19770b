import type { WebSocket } from 'ws';
import { eventBus } from '../infra/pubsub.js';

/** graphql-ws close code for a socket whose API key was revoked (the code graphql-ws uses for a refused key). */
export const REVOKED_KEY_CLOSE_CODE = 4403;

/**
 * The WebSockets open on this gateway, per API key. When a key is revoked, on this gateway or on another
 * (the event comes through the event bus), its sockets are closed, and with them their subscriptions.
 */
export function trackApiKeySockets() {
  const socketsByKey = new Map<string, Set<WebSocket>>();
  const revocations = eventBus().subscribe('apiKey:revoked');
  void (async () => {
    for await (const { apiKeyId } of revocations) {
      for (const socket of socketsByKey.get(apiKeyId) ?? []) {
        socket.close(REVOKED_KEY_CLOSE_CODE, 'Forbidden: this API key was revoked');
      }
    }
  })();
  return {
    add(apiKeyId: string, socket: WebSocket) {
      const sockets = socketsByKey.get(apiKeyId) ?? new Set();
      socketsByKey.set(apiKeyId, sockets.add(socket));
      socket.once('close', () => {
        sockets.delete(socket);
        if (sockets.size === 0 && socketsByKey.get(apiKeyId) === sockets) socketsByKey.delete(apiKeyId);
      });
    },
    async stop() {
      await revocations.return?.();
    },
  };
}
