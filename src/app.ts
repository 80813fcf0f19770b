import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { createYoga } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { authenticateApiKey, type Viewer } from './api-keys.js';
import { bootstrapDefaultWorkspace } from './bootstrap.js';
import type { Config } from './config.js';
import { connectDatabase, disconnectDatabase } from './db.js';
import { setWebhookUrlPolicy } from './destinations/webhook/url-policy.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './embedded-database.js';
import { defineAudienceSyncJobs } from './jobs/audience-sync.js';
import { closeScheduler, openScheduler } from './jobs/scheduler.js';
import { logger } from './logger.js';
import { metrics } from './metrics.js';
import { applyMigrations } from './migrations.js';
import { handleOpsRequest } from './ops.js';
import { closeEventBus, openEventBus } from './pubsub.js';
import type { Context } from './schema/context.js';
import { schema } from './schema/index.js';
import { DEFAULT_RETRY_POLICY } from './sync/platform-retry.js';
import { loadSecretBox } from './secrets.js';

/** How long shutdown waits for running sync batches before handing their jobs back. */
const DRAIN_TIMEOUT_MS = 30_000;
const WORKER_CONCURRENCY = 4;

/** What the HTTP and WebSocket transports pass to yoga's context factory. */
interface ServerContext {
  /** Set for WebSocket operations: the viewer authenticated once, when the socket connected. */
  socketViewer?: Viewer | null;
}

export function createGraphQLHandler() {
  return createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: { subscriptionsProtocol: 'WS', title: 'Audience sync gateway' },
    logging: false,
    plugins: [
      usePrometheus({
        registry: metrics,
        endpoint: false,
        metrics: {
          graphql_yoga_http_duration: true,
          graphql_envelop_request_duration: true,
          graphql_envelop_phase_execute: true,
          graphql_envelop_error_result: true,
        },
      }),
    ],
    context: async ({ request, socketViewer }) => ({
      viewer: socketViewer !== undefined ? socketViewer : await authenticateApiKey(request.headers.get('authorization')),
      requestId: request?.headers.get('x-request-id') ?? randomUUID(),
    }),
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
export async function startApp(config: Config): Promise<App> {
  let embedded: EmbeddedDatabase | undefined;
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step();
    await embedded?.stop();
  };
  logger.level = config.LOG_LEVEL;
  setWebhookUrlPolicy({ allowPrivate: config.ALLOW_PRIVATE_WEBHOOK_URLS });
  try {
    if (!config.DATABASE_URL) embedded = await startEmbeddedDatabase(config.DATA_DIR);
    const databaseUrl = config.DATABASE_URL ?? embedded!.url;

    const applied = await applyMigrations(databaseUrl);
    if (applied.length > 0) logger.info({ migrations: applied }, 'Applied database migrations');
    connectDatabase(databaseUrl);
    stops.push(disconnectDatabase);
    await loadSecretBox(config.SECRETS_KEY, config.DATA_DIR);
    openEventBus(config.REDIS_URL);
    stops.push(closeEventBus);
    if (embedded) await bootstrapDefaultWorkspace(config.DATA_DIR);

    const agenda = await openScheduler({
      databaseUrl,
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
        retryPolicy: {
          ...DEFAULT_RETRY_POLICY,
          retries: config.PLATFORM_RETRIES,
          minBackoffMs: config.PLATFORM_RETRY_MIN_MS,
        },
      });
    }
    await agenda.start();

    // Every role listens: the gateway serves GraphQL, and all serve /healthz, /readyz and /metrics.
    const yoga = config.ROLES.includes('gateway') ? createGraphQLHandler() : null;
    const server = createServer((request, response) => {
      void handleOpsRequest(request, response).then((handled) => {
        if (handled) return;
        if (yoga) return yoga(request, response);
        response.writeHead(404).end();
      });
    });
    const sockets = yoga ? new WebSocketServer({ server, path: yoga.graphqlEndpoint }) : null;
    if (yoga && sockets) useGraphQLWebSocket(sockets, yoga);
    stops.push(() => closeServer(server, sockets));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, resolve);
    });
    const { port } = server.address() as AddressInfo;
    const url = `http://localhost:${port}${yoga?.graphqlEndpoint ?? ''}`;
    logger.info({ url, roles: config.ROLES, embedded: Boolean(embedded) }, yoga ? 'Gateway listening' : 'Worker listening');
    return { url, yoga, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** graphql-ws on the gateway's port and path. Operations run through yoga's envelope, so they get
 * the same schema, plugins, validation and context as HTTP; the API key is checked once, on connect. */
function useGraphQLWebSocket(sockets: WebSocketServer, yoga: ReturnType<typeof createGraphQLHandler>) {
  type Extra = { viewer?: Viewer | null };
  useServer<Record<string, unknown> | undefined, Extra>(
    {
      onConnect: async (ctx) => {
        const viewer = await authenticateApiKey(connectionAuthorization(ctx.connectionParams));
        if (!viewer) return false;
        (ctx.extra as Extra).viewer = viewer;
        return true;
      },
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          socketViewer: (ctx.extra as Extra).viewer ?? null,
        });
        const args = {
          schema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        return errors.length > 0 ? errors : args;
      },
      execute: (args) => (args.rootValue as { execute: typeof import('graphql').execute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof import('graphql').subscribe }).subscribe(args),
    },
    sockets,
  );
}

async function closeServer(server: Server, sockets: WebSocketServer | null): Promise<void> {
  if (sockets) {
    for (const client of sockets.clients) client.close(1001, 'Server shutting down');
    await new Promise<void>((resolve) => sockets.close(() => resolve()));
  }
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
