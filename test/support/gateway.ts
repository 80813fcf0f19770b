import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type ExecutionResult, type FormattedExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { createApiKey } from '../../src/identity/api-keys.js';
import { startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/infra/config.js';
import { db } from '../../src/infra/db.js';
import type { ApiKeyRole } from '../../src/generated/prisma/enums.js';
import { TEST_TODAY, testClock, type TestClock } from './clock.js';
import { createTestDatabase } from './database.js';

/** The platform fakes and receivers of the tests listen on loopback: the address policy must let the
 * gateway and its workers reach them, and let destinations point their baseUrl at them. */
export const LOOPBACK_FAKES = { ALLOW_PRIVATE_URLS: 'true', ALLOW_CUSTOM_PLATFORM_URLS: 'true' } as const;

export interface TestGateway {
  app: App;
  /** The app's clock (TEST_TODAY until a test sets it). */
  clock: TestClock;
  /** The URL of the gateway's own database, for other processes to share. */
  databaseUrl: string;
  /** A WRITE key of the test's default workspace. */
  apiKey: string;
  workspaceId: string;
  /** Runs an operation through yoga's fetch (no socket), with `apiKey` unless another key (or null) is given. */
  execute<Result, Variables>(
    document: TypedDocumentNode<Result, Variables>,
    variables: Variables,
    options?: { apiKey?: string | null },
  ): Promise<ExecutionResult<Result>>;
  /** A graphql-ws client connected to the gateway's real port. */
  webSocketClient(apiKey?: string): Client;
  /** Subscribes over a real WebSocket; resolves once the server has accepted the subscription. */
  subscribeOverWebSocket<Result, Variables>(
    document: TypedDocumentNode<Result, Variables>,
    variables: Variables,
    apiKey?: string,
  ): Promise<AsyncIterableIterator<FormattedExecutionResult<Result>>>;
  /** Another workspace with a key of the given role. */
  createWorkspace(role?: ApiKeyRole): Promise<{ workspaceId: string; apiKey: string }>;
  /** Empties every table between tests (the schema stays). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the real app (gateway and worker, unless `settings` say otherwise) on a fresh PostgreSQL
 * database of its own. */
export async function startTestGateway(settings: Record<string, string> = {}): Promise<TestGateway> {
  const database = await createTestDatabase();
  const clock = testClock();
  const dataDir = await mkdtemp(join(tmpdir(), 'asg-test-'));
  const app = await startApp(
    loadConfig({
      DATABASE_URL: database.url,
      DATA_DIR: dataDir,
      PORT: '0',
      SECRETS_KEY: randomBytes(32).toString('base64'),
      JOB_POLL_INTERVAL_MS: '200',
      PLATFORM_RETRIES: '3',
      PLATFORM_RETRY_MIN_MS: '20',
      ...LOOPBACK_FAKES,
      LOG_LEVEL: 'silent',
      NODE_ENV: 'test',
      ...settings,
    }),
    { clock },
  );

  const createWorkspace = async (role: ApiKeyRole = 'WRITE') => {
    const workspace = await db().workspace.create({ data: { name: `test-${randomBytes(3).toString('hex')}` } });
    const { key } = await createApiKey(workspace.id, 'test key', role);
    return { workspaceId: workspace.id, apiKey: key };
  };
  let main = await createWorkspace();
  const sockets: Client[] = [];

  const gateway: TestGateway = {
    app,
    clock,
    databaseUrl: database.url,
    get apiKey() {
      return main.apiKey;
    },
    get workspaceId() {
      return main.workspaceId;
    },
    async execute(document, variables, options = {}) {
      const apiKey = options.apiKey === undefined ? main.apiKey : options.apiKey;
      const response = await app.yoga!.fetch('http://gateway/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
        },
        body: JSON.stringify({ query: print(document), variables }),
      });
      return (await response.json()) as ExecutionResult<never>;
    },
    webSocketClient(apiKey = main.apiKey) {
      const client = createClient({
        url: app.url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${apiKey}` },
        retryAttempts: 0,
        lazy: true,
      });
      sockets.push(client);
      return client;
    },
    async subscribeOverWebSocket(document, variables, apiKey) {
      const client = gateway.webSocketClient(apiKey);
      const events = client.iterate({ query: print(document), variables: variables as Record<string, unknown> });
      // graphql-ws sends messages in order on one socket: once a later query completes, the
      // subscription before it has been set up on the server.
      for await (const _ of client.iterate({ query: '{ __typename }' })) break;
      return events as AsyncIterableIterator<FormattedExecutionResult<never>>;
    },
    createWorkspace,
    async reset() {
      // A run still finishing in the worker can deadlock with the truncation: try again.
      for (let attempt = 1; ; attempt++) {
        try {
          // The app's own recurring jobs (Agenda's `single` jobs) stay: workers created them at start.
          await db().$transaction([
            // synced_member references its sync without a foreign key, so the cascade does not reach it.
            db().$executeRawUnsafe('TRUNCATE workspace, synced_member CASCADE'),
            db().$executeRawUnsafe("DELETE FROM agenda_jobs WHERE type <> 'single'"),
          ]);
          break;
        } catch (error) {
          if (attempt >= 5 || !String(error).includes('deadlock detected')) throw error;
        }
      }
      main = await createWorkspace();
      clock.set(TEST_TODAY);
    },
    async stop() {
      await Promise.all(sockets.map((socket) => socket.dispose()));
      await app.stop();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return gateway;
}
