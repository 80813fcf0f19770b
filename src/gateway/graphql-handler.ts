import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { createYoga, type Plugin } from 'graphql-yoga';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { listenForChanges } from '../infra/change-notifications.js';
import { authenticateApiKey, forgetRevokedKeys, isAdminToken, type Viewer } from '../identity/api-keys.js';
import { systemClock, type Clock } from '../infra/clock.js';
import type { Config } from '../infra/config.js';
import { metrics } from '../infra/metrics.js';
import { parseJson } from '../infra/json.js';
import type { Context } from '../schema/context.js';
import { schema } from '../schema/index.js';
import { trackApiKeySockets } from './api-key-sockets.js';
import { useConsole } from './console.js';
import { renderLocalGraphiQL, useGraphiQLAssets } from './graphiql.js';
import { useAdmission } from './load-shedding.js';
import { useMultipartGuard } from './multipart-guard.js';
import { useRequestBodyLimit } from './request-body-limit.js';
import {
  openRateLimiter,
  operationLimitPlugins,
  tooManySubscriptionsError,
  useRateLimit,
  type OperationLimits,
} from './operation-limits.js';
import {
  DEFAULT_PERSISTED_DOCUMENTS_FILE,
  loadPersistedDocuments,
  resolveSocketDocument,
  usePersistedDocuments,
  type PersistedDocuments,
  type PersistedOperationsMode,
} from './persisted-documents.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';
import { INTERNAL_ERROR_MESSAGE, maskInternalError, requestIdOf, useRequestIds, withRequestId } from './request-ids.js';
import { useRevokedKeyStreams } from './revoked-key-streams.js';
import { useSharedSubscriptions } from './shared-subscriptions.js';

// The gateway role: GraphQL over HTTP, SSE and WebSocket, with its limits. Loaded only by processes that
// play that role (src/app.ts imports it on demand): a worker-only process never builds the schema.

export interface Gateway {
  yoga: ReturnType<typeof createGraphQLHandler>;
  /** Serves graphql-ws on `server`'s GraphQL path; call once it listens. */
  attachWebSockets(server: Server): WebSocketServer;
  /** Releases what the gateway holds (rate limiter, revoked-key watch, key sockets), last to first. */
  stops: (() => Promise<unknown>)[];
}

/** Everything the gateway role needs: rate limiter, trusted documents, the yoga handler, WebSockets. */
export async function openGateway(config: Config, clock: Clock): Promise<Gateway> {
  const stops: (() => Promise<unknown>)[] = [forgetRevokedKeys()];
  const rateLimiter = await openRateLimiter(config);
  if (rateLimiter) stops.push(() => rateLimiter.close());
  const persistedDocuments =
    config.PERSISTED_OPERATIONS !== 'off'
      ? loadPersistedDocuments(config.PERSISTED_DOCUMENTS_FILE ?? DEFAULT_PERSISTED_DOCUMENTS_FILE)
      : new Map<string, string>();
  // The embedded database is one session, whose notifications reach whichever connection commits:
  // there, every query is answered fresh.
  let responseCache: ResponseCache | null = null;
  if (config.DATABASE_URL && config.RESPONSE_CACHE_ENTRIES > 0) {
    // Changes are first heard once connected, after the cache exists.
    const changes = listenForChanges(config.DATABASE_URL, (workspaceId) => responseCache!.changed(workspaceId));
    stops.push(() => changes.stop());
    responseCache = createResponseCache({ entries: config.RESPONSE_CACHE_ENTRIES, changes });
  }
  const yoga = createGraphQLHandler({
    adminToken: config.ADMIN_TOKEN,
    limits: config,
    persistedDocuments,
    rateLimiter: rateLimiter?.limiter ?? null,
    responseCache,
    clock,
  });
  return {
    yoga,
    stops,
    attachWebSockets(server) {
      const sockets = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: config.MAX_REQUEST_BODY_BYTES });
      const keySockets = trackApiKeySockets();
      stops.push(() => keySockets.stop());
      useGraphQLWebSocket(sockets, yoga, keySockets, {
        maxOperations: config.MAX_SUBSCRIPTIONS_PER_SOCKET,
        persisted: { mode: config.PERSISTED_OPERATIONS, documents: persistedDocuments },
      });
      return sockets;
    },
  };
}

/** What the HTTP and WebSocket transports pass to yoga's context factory. */
interface ServerContext {
  /** Set for WebSocket operations: the viewer authenticated once, when the socket connected. */
  socketViewer?: Viewer | null;
}

export interface GraphQLHandlerOptions {
  /** ADMIN_TOKEN, the bearer token that manages workspaces and API keys (HTTP only). */
  adminToken?: string;
  limits: OperationLimits &
    Pick<
      Config,
      'MAX_REQUEST_BODY_BYTES' | 'GRAPHIQL' | 'CONSOLE' | 'PERSISTED_OPERATIONS' | 'MAX_CONCURRENT_REQUESTS' | 'MAX_QUEUE_WAIT_MS'
    >;
  persistedDocuments: PersistedDocuments;
  /** Counts operations per API key; null: no rate limit. */
  rateLimiter: RateLimiterAbstract | null;
  /** Null: every query is executed. */
  responseCache: ResponseCache | null;
  clock?: Clock;
}

function createGraphQLHandler(options: GraphQLHandlerOptions) {
  return createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    // GraphiQL (src/graphiql, built at install) opens on a tab explaining the API key header; with
    // PERSISTED_OPERATIONS=only, its tabs hold the persisted documents, the only ones it may run.
    graphiql: options.limits.GRAPHIQL
      ? {
          title: 'Audience sync gateway · GraphiQL',
          ...(options.limits.PERSISTED_OPERATIONS === 'only' && {
            defaultTabs: [...options.persistedDocuments.values()].map((query) => ({ query })),
          }),
        }
      : false,
    renderGraphiQL: renderLocalGraphiQL,
    // Yoga's landing page for other paths loads images from the internet; unknown paths answer 404.
    landingPage: false,
    logging: false,
    // Enforced by useRequestBodyLimit, without a counting stream on every request.
    maxRequestBodySize: false,
    maskedErrors: { errorMessage: INTERNAL_ERROR_MESSAGE, maskError: maskInternalError },
    extraParamNames: options.limits.PERSISTED_OPERATIONS === 'off' ? [] : ['documentId'],
    plugins: [
      useRequestIds(),
      useMalformedGetGuard(),
      useMultipartGuard(),
      useAdmission({ concurrency: options.limits.MAX_CONCURRENT_REQUESTS, maxWaitMs: options.limits.MAX_QUEUE_WAIT_MS }),
      ...(options.limits.GRAPHIQL ? [useGraphiQLAssets()] : []),
      ...(options.limits.CONSOLE ? [useConsole(options.limits.PERSISTED_OPERATIONS)] : []),
      ...usePersistedDocuments(options.limits.PERSISTED_OPERATIONS, options.persistedDocuments),
      ...operationLimitPlugins(options.limits),
      useRevokedKeyStreams(),
      ...(options.rateLimiter ? [useRateLimit(options.rateLimiter)] : []),
      // After every check that an operation must pass, cached or not.
      ...(options.responseCache?.plugins ?? []),
      usePrometheus({
        registry: metrics,
        endpoint: false,
        // The plugin turns on every metric not named here; the others cost each request a walk of its
        // document (deprecated fields) or another histogram per phase.
        metrics: {
          graphql_yoga_http_duration: true,
          graphql_envelop_request_duration: true,
          graphql_envelop_phase_execute: true,
          graphql_envelop_error_result: true,
          graphql_envelop_deprecated_field: false,
          graphql_envelop_request: false,
          graphql_envelop_request_time_summary: false,
          graphql_envelop_phase_parse: false,
          graphql_envelop_phase_validate: false,
          graphql_envelop_phase_context: false,
          graphql_envelop_phase_subscribe: false,
          graphql_envelop_schema_change: false,
        },
      }),
      // After every plugin that sets a request parser (the multipart guard): it wraps the final one.
      useRequestBodyLimit(options.limits.MAX_REQUEST_BODY_BYTES),
      // Last: it replaces the subscribe function the plugins before it have set up.
      useSharedSubscriptions(),
    ],
    context: async ({ request, socketViewer }) => {
      const authorization = socketViewer === undefined ? request.headers.get('authorization') : null;
      const admin = isAdminToken(authorization, options.adminToken);
      return {
        viewer: socketViewer !== undefined ? socketViewer : admin ? null : await authenticateApiKey(authorization),
        admin,
        requestId: request ? requestIdOf(request) : randomUUID(),
        clock: options.clock ?? systemClock,
      };
    },
  });
}

/** The API key a WebSocket client sent in its connection params (`Authorization: Bearer …`, or `apiKey`). */
function connectionAuthorization(params: Record<string, unknown> | undefined): string | null {
  const header = params?.Authorization ?? params?.authorization;
  if (typeof header === 'string') return header;
  return typeof params?.apiKey === 'string' ? `Bearer ${params.apiKey}` : null;
}

/** graphql-ws on the gateway's port and path. Operations run through yoga's envelope, so they get
 * the same schema, plugins, validation and context as HTTP; the API key is checked once, on connect.
 * At most `maxOperations` operations run at once on one socket. A persisted document is sent as an
 * empty `query` with its id in `extensions.persistedQuery`, or in full. */
function useGraphQLWebSocket(
  sockets: WebSocketServer,
  yoga: ReturnType<typeof createGraphQLHandler>,
  keySockets: ReturnType<typeof trackApiKeySockets>,
  { maxOperations, persisted }: { maxOperations: number; persisted: { mode: PersistedOperationsMode; documents: PersistedDocuments } },
) {
  type Extra = { viewer?: Viewer | null };
  // `next` and `error` only travel from server to client: a client sending one breaks the protocol
  // (4400). Checked ahead of graphql-ws, which would treat it as an internal error (4500).
  sockets.on('connection', (socket) => {
    socket.prependListener('message', (data) => {
      const message = parseJson(String(data));
      const type = message && typeof message === 'object' ? (message as { type?: unknown }).type : undefined;
      if (type === 'next' || type === 'error') socket.close(4400, `A client may not send "${type}" messages`);
    });
  });
  useServer<Record<string, unknown> | undefined, Extra>(
    {
      onConnect: async (ctx) => {
        const viewer = await authenticateApiKey(connectionAuthorization(ctx.connectionParams));
        if (!viewer) return false;
        (ctx.extra as Extra).viewer = viewer;
        keySockets.add(viewer.apiKeyId, ctx.extra.socket);
        return true;
      },
      onSubscribe: async (ctx, _id, params) => {
        // graphql-ws has already counted this operation among the socket's. Checked before any await,
        // so that operations sent together are counted one at a time.
        if (Object.keys(ctx.subscriptions).length > maxOperations) {
          return withRequestId({ errors: [tooManySubscriptionsError(maxOperations)] }, randomUUID(), 'websocket').errors;
        }
        const initialContext = {
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          socketViewer: (ctx.extra as Extra).viewer ?? null,
        };
        const source = resolveSocketDocument(persisted.mode, persisted.documents, params, initialContext);
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped(initialContext);
        const contextValue = await contextFactory();
        const refuse = (errors: readonly GraphQLError[]) =>
          withRequestId({ errors }, contextValue.requestId, 'websocket').errors!;
        if ('error' in source) return refuse([source.error]);
        let document;
        try {
          document = parse(source.query);
        } catch (error) {
          if (error instanceof GraphQLError) return refuse([error]);
          throw error;
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return refuse(errors);
        return {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue,
          rootValue: { execute, subscribe },
        };
      },
      onNext: (_ctx, _id, _payload, args, result) =>
        withRequestId(result as ExecutionResult, (args.contextValue as Context).requestId, 'websocket'),
      execute: (args) => (args.rootValue as { execute: typeof import('graphql').execute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof import('graphql').subscribe }).subscribe(args),
    },
    sockets,
  );
}

/** Answers 400 to a GET whose query string yoga cannot read (it would answer 500). */
function useMalformedGetGuard(): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      if (request.method !== 'GET') return;
      const problem = malformedQueryString(request.url);
      if (!problem) return;
      endResponse(
        new fetchAPI.Response(JSON.stringify({ errors: [{ message: problem, extensions: { code: 'BAD_REQUEST' } }] }), {
          status: 400,
          headers: { 'content-type': 'application/json' },
        }),
      );
    },
  };
}

/** What is wrong with a GraphQL GET query string (bad percent-escapes, `variables` or `extensions`
 * that are not JSON), or null. Yoga would answer those with a 500. */
function malformedQueryString(url: string): string | null {
  const query = url.split('?')[1];
  if (!query) return null;
  for (const pair of query.split('&')) {
    const [name = '', value = ''] = pair.split('=');
    let decoded: string;
    try {
      decoded = decodeURIComponent(value.replaceAll('+', ' '));
      decodeURIComponent(name);
    } catch {
      return `The query string has a malformed percent-escape in "${name.slice(0, 40)}"`;
    }
    if ((name === 'variables' || name === 'extensions') && decoded !== '') {
      try {
        JSON.parse(decoded);
      } catch {
        return `The "${name}" parameter must be JSON`;
      }
    }
  }
  return null;
}
