import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWebSocketClient } from 'graphql-ws';

/** graphql-ws closes a socket whose key is refused (4403) or revoked while open (4403 too). */
const FORBIDDEN = 4403;

export interface ConsoleClient {
  urql: Client;
  dispose(): void;
}

/**
 * The console's only way to the gateway: its public GraphQL endpoint. Queries and subscriptions
 * travel on one graphql-ws socket, in order: a page subscribes, then reads, so no update falls
 * between its read and its subscription. Mutations go over HTTP (CSV uploads are multipart).
 */
export function createConsoleClient(apiKey: string, onKeyRefused: () => void): ConsoleClient {
  const endpoint = new URL('/graphql', location.href);
  const socket = createWebSocketClient({
    url: endpoint.href.replace(/^http/, 'ws'),
    connectionParams: { authorization: `Bearer ${apiKey}` },
    lazy: true,
    retryAttempts: 5,
    shouldRetry: (event) => (event as CloseEvent).code !== FORBIDDEN,
    on: {
      closed: (event) => {
        if ((event as CloseEvent).code === FORBIDDEN) onKeyRefused();
      },
    },
  });
  const persisted = document.querySelector('meta[name="persisted-operations"]')?.getAttribute('content') ?? 'off';
  const urql = new Client({
    url: endpoint.href,
    fetchOptions: { headers: { authorization: `Bearer ${apiKey}` } },
    requestPolicy: 'cache-and-network',
    exchanges: [
      // The console's operations are among the gateway's trusted documents (codegen.ts): sent by hash,
      // over HTTP and WebSocket alike, they run where PERSISTED_OPERATIONS=only refuses any other text.
      mapExchange({
        onOperation: (operation) => {
          // codegen writes "sha256:<hex>"; Apollo's persistedQuery form carries the bare hex.
          const hash = (operation.query as { __meta__?: { hash?: string } }).__meta__?.hash?.replace(/^sha256:/, '');
          if (persisted === 'off' || !hash) return operation;
          return { ...operation, extensions: { ...operation.extensions, persistedQuery: { version: 1, sha256Hash: hash } } };
        },
      }),
      mapExchange({
        onError: (error) => {
          if (error.graphQLErrors.some((problem) => problem.extensions?.code === 'UNAUTHENTICATED')) onKeyRefused();
        },
      }),
      cacheExchange,
      subscriptionExchange({
        isSubscriptionOperation: (operation) => operation.kind === 'query' || operation.kind === 'subscription',
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: socket.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
      fetchExchange,
    ],
  });
  return { urql, dispose: () => void socket.dispose() };
}
