import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebSocketServer } from 'ws';
import { CONSOLE_PATH } from './gateway/console.js';
import type { Gateway } from './gateway/graphql-handler.js';
import { handleOpsRequest } from './gateway/ops.js';
import { bootstrapDefaultWorkspace } from './identity/bootstrap.js';
import { systemClock, type Clock } from './infra/clock.js';
import { setAddressPolicy } from './infra/address-policy.js';
import type { Config } from './infra/config.js';
import { connectDatabase, disconnectDatabase } from './infra/db.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './infra/embedded-database.js';
import { logger } from './infra/logger.js';
import { applyMigrations } from './infra/migrations.js';
import { closeEventBus, openEventBus } from './infra/pubsub.js';
import { DEFAULT_RETRY_POLICY } from './infra/retry-policy.js';
import { loadSecretBox } from './infra/secrets.js';
import { defineAudienceSyncJobs } from './jobs/audience-sync.js';
import { defineHousekeepingJobs } from './jobs/housekeeping.js';
import { definePlatformJobChecks } from './jobs/platform-jobs.js';
import { closeScheduler, openScheduler } from './jobs/scheduler.js';
import { defineTaskJobs } from './jobs/tasks.js';

/** How long shutdown waits for running sync batches before handing their jobs back. */
const DRAIN_TIMEOUT_MS = 30_000;
const WORKER_CONCURRENCY = 4;

export interface App {
  /** The GraphQL endpoint with the gateway role; otherwise the base URL of the ops endpoints. */
  url: string;
  yoga: Gateway['yoga'] | null;
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
    // On a shared server, a frozen process's open transaction is ended once other workers may take
    // its runs over (RUN_LEASE_SECONDS, at least 10 s); the embedded database has one process.
    connectDatabase(
      databaseUrl,
      embedded ? { poolSize: 1 } : { idleInTransactionTimeoutMs: Math.max(config.RUN_LEASE_SECONDS, 10) * 1000 },
    );
    stops.push(disconnectDatabase);
    await loadSecretBox(config.SECRETS_KEY, config.DATA_DIR);
    await openEventBus(config.REDIS_URL);
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
        diffSplitSpan: BigInt(config.DIFF_SPLIT_SPAN),
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
    const gateway = config.ROLES.includes('gateway')
      ? await (await import('./gateway/graphql-handler.js')).openGateway(config, clock)
      : null;
    if (gateway) stops.push(() => runInReverse(gateway.stops));
    const yoga = gateway?.yoga ?? null;
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
    sockets = gateway?.attachWebSockets(server) ?? null;
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

async function runInReverse(steps: (() => Promise<unknown>)[]): Promise<void> {
  for (const step of [...steps].reverse()) await step();
}

async function closeServer(server: Server, sockets: WebSocketServer | null): Promise<void> {
  if (sockets) {
    for (const client of sockets.clients) client.close(1001, 'Server shutting down');
    await new Promise<void>((resolve) => sockets.close(() => resolve()));
  }
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
