import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { createYoga, type Plugin } from 'graphql-yoga';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { trackApiKeySockets } from './gateway/api-key-sockets.js';
import { authenticateApiKey, forgetRevokedKeys, isAdminToken, type Viewer } from './identity/api-keys.js';
import { bootstrapDefaultWorkspace } from './identity/bootstrap.js';
import { systemClock, type Clock } from './infra/clock.js';
import { setAddressPolicy } from './infra/address-policy.js';
import type { Config } from './infra/config.js';
import { connectDatabase, disconnectDatabase } from './infra/db.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './infra/embedded-database.js';
import { defineAudienceSyncJobs } from './jobs/audience-sync.js';
import { definePlatformJobChecks } from './jobs/platform-jobs.js';
import { defineHousekeepingJobs } from './jobs/housekeeping.js';
import { closeScheduler, openScheduler } from './jobs/scheduler.js';
import { defineTaskJobs } from './jobs/tasks.js';
import { logger } from './infra/logger.js';
import { metrics } from './infra/metrics.js';
import { applyMigrations } from './infra/migrations.js';
import { renderLocalGraphiQL, useGraphiQLAssets } from './gateway/graphiql.js';
import { useAdmission } from './gateway/load-shedding.js';
import { CONSOLE_PATH, useConsole } from './gateway/console.js';
import { useMultipartGuard } from './gateway/multipart-guard.js';
import { parseJson } from './infra/json.js';
import { handleOpsRequest } from './gateway/ops.js';
import {
  openRateLimiter,
  operationLimitPlugins,
  tooManySubscriptionsError,
  useRateLimit,
  type OperationLimits,
} from './gateway/operation-limits.js';
import { closeEventBus, openEventBus } from './infra/pubsub.js';
import {
  DEFAULT_PERSISTED_DOCUMENTS_FILE,
  loadPersistedDocuments,
  resolveSocketDocument,
  usePersistedDocuments,
  type PersistedDocuments,
  type PersistedOperationsMode,
} from './gateway/persisted-documents.js';
import { INTERNAL_ERROR_MESSAGE, maskInternalError, requestIdOf, useRequestIds, withRequestId } from './gateway/request-ids.js';
import type { Context } from './schema/context.js';
import { schema } from './schema/index.js';
import { DEFAULT_RETRY_POLICY } from './infra/retry-policy.js';
import { loadSecretBox } from './infra/secrets.js';

/** How long shutdown waits for running sync batches before handing their jobs back. */
const DRAIN_TIMEOUT_MS = 30_000;
const WORKER_CONCURRENCY = 4;

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
  clock?: Clock;
}

export function createGraphQLHandler(options: GraphQLHandlerOptions) {
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
    maxRequestBodySize: options.limits.MAX_REQUEST_BODY_BYTES,
    maskedErrors: { errorMessage: INTERNAL_ERROR_MESSAGE, maskError: maskInternalError },
    extraParamNames: options.limits.PERSISTED_OPERATIONS === 'off' ? [] : ['documentId'],
    plugins: [
      useRequestIds(),
      useMalformedGetGuard(),
      useMultipartGuard(),
      useAdmission({ concurrency: options.limits.MAX_CONCURRENT_REQUESTS, maxWaitMs: options.limits.MAX_QUEUE_WAIT_MS }),
      ...(options.limits.GRAPHIQL ? [useGraphiQLAssets()] : []),
      ...(options.limits.CONSOLE ? [useConsole()] : []),
      ...usePersistedDocuments(options.limits.PERSISTED_OPERATIONS, options.persistedDocuments),
      ...operationLimitPlugins(options.limits),
      ...(options.rateLimiter ? [useRateLimit(options.rateLimiter)] : []),
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

export interface App {
  /** The GraphQL endpoint with the gateway role; otherwise the base URL of the ops endpoints. */
  url: string;
  yoga: ReturnType<typeof createGraphQLHandler> | null;
  stop(): Promise<void>;
}

/**
 * Starts the roles `config.ROLES` asks for, on the embedded database unless DATABASE_URL is set:
 * migrations, database, event bus, job scheduler, then (gateway) the HTTP and WebSocket server
 * and (worker) the job definitions. Nothing happens on import.
 */
export async function startApp(config: Config, options: { clock?: Clock } = {}): Promise<App> {
  const clock = options.clock ?? systemClock;
  let embedded: EmbeddedDatabase | undefined;
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step();
    await embedded?.stop();
  };
  logger.level = config.LOG_LEVEL;
  setAddressPolicy({ allowPrivate: config.ALLOW_PRIVATE_URLS, allowCustomPlatformUrls: config.ALLOW_CUSTOM_PLATFORM_URLS });
  try {
    if (!config.DATABASE_URL)
      embedded = await startEmbeddedDatabase({
        dataDir: config.DATA_DIR,
        port: config.EMBEDDED_DATABASE_PORT,
        jobsPort: config.EMBEDDED_JOBS_DATABASE_PORT,
      });
    const databaseUrl = config.DATABASE_URL ?? embedded!.url;

    const applied = await applyMigrations(databaseUrl);
    if (applied.length > 0) logger.info({ migrations: applied }, 'Applied database migrations');
    // PGlite is one session: its server multiplexes connections, and concurrent extended-protocol
    // queries from several of them can interleave. The embedded default uses one connection at a time.
    connectDatabase(databaseUrl, embedded ? 1 : undefined);
    stops.push(disconnectDatabase);
    await loadSecretBox(config.SECRETS_KEY, config.DATA_DIR);
    openEventBus(config.REDIS_URL);
    stops.push(closeEventBus);
    if (embedded) await bootstrapDefaultWorkspace(config.DATA_DIR);

    const agenda = await openScheduler({
      databaseUrl: embedded?.jobsUrl ?? databaseUrl,
      mongodbUrl: config.MONGODB_URL,
      notifications: !embedded,
      pollIntervalMs: config.JOB_POLL_INTERVAL_MS,
      lockLifetimeMs: config.RUN_LEASE_SECONDS * 1000,
    });
    stops.push(() => closeScheduler(DRAIN_TIMEOUT_MS));
    if (config.ROLES.includes('worker')) {
      defineAudienceSyncJobs(agenda, {
        concurrency: WORKER_CONCURRENCY,
        leaseSeconds: config.RUN_LEASE_SECONDS,
        clock,
        retryPolicy: {
          ...DEFAULT_RETRY_POLICY,
          retries: config.PLATFORM_RETRIES,
          minBackoffMs: config.PLATFORM_RETRY_MIN_MS,
        },
      });
      defineTaskJobs(agenda, {
        concurrency: WORKER_CONCURRENCY,
        leaseSeconds: config.RUN_LEASE_SECONDS,
        notifyRetry: { ...DEFAULT_RETRY_POLICY, retries: 3, minBackoffMs: config.PLATFORM_RETRY_MIN_MS },
      });
      await defineHousekeepingJobs(agenda);
      await definePlatformJobChecks(agenda, { pollMs: config.PLATFORM_JOB_POLL_MS });
    }
    await agenda.start();

    // Every role listens: the gateway serves GraphQL, and all serve /healthz, /readyz and /metrics.
    if (config.ROLES.includes('gateway')) stops.push(forgetRevokedKeys());
    const rateLimiter = config.ROLES.includes('gateway') ? openRateLimiter(config) : null;
    if (rateLimiter) stops.push(() => rateLimiter.close());
    const persistedDocuments =
      config.ROLES.includes('gateway') && config.PERSISTED_OPERATIONS !== 'off'
        ? loadPersistedDocuments(config.PERSISTED_DOCUMENTS_FILE ?? DEFAULT_PERSISTED_DOCUMENTS_FILE)
        : new Map<string, string>();
    const yoga = config.ROLES.includes('gateway')
      ? createGraphQLHandler({
          adminToken: config.ADMIN_TOKEN,
          limits: config,
          persistedDocuments,
          rateLimiter: rateLimiter?.limiter ?? null,
          clock,
        })
      : null;
    const server = createServer((request, response) => {
      void handleOpsRequest(request, response).then((handled) => {
        if (handled) return;
        if (yoga) return yoga(request, response);
        response.writeHead(404).end();
      });
    });
    let sockets: WebSocketServer | null = null;
    stops.push(() => closeServer(server, sockets));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, resolve);
    });
    // Once listening: a port already taken is then reported once, by the listen above.
    sockets = yoga
      ? new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: config.MAX_REQUEST_BODY_BYTES })
      : null;
    if (yoga && sockets) {
      const keySockets = trackApiKeySockets();
      stops.push(() => keySockets.stop());
      useGraphQLWebSocket(sockets, yoga, keySockets, {
        maxOperations: config.MAX_SUBSCRIPTIONS_PER_SOCKET,
        persisted: { mode: config.PERSISTED_OPERATIONS, documents: persistedDocuments },
      });
    }
    const { port } = server.address() as AddressInfo;
    const url = `http://localhost:${port}${yoga?.graphqlEndpoint ?? ''}`;
    const consoleUrl = yoga && config.CONSOLE ? `http://localhost:${port}${CONSOLE_PATH}` : undefined;
    logger.info(
      { url, console: consoleUrl, roles: config.ROLES, embedded: Boolean(embedded) },
      yoga ? 'Gateway listening' : 'Worker listening',
    );
    return { url, yoga, stop };
  } catch (error) {
    await stop();
    throw error;
  }
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

async function closeServer(server: Server, sockets: WebSocketServer | null): Promise<void> {
  if (sockets) {
    for (const client of sockets.clients) client.close(1001, 'Server shutting down');
    await new Promise<void>((resolve) => sockets.close(() => resolve()));
  }
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
