// `npm run load -- [--seconds 60] [--clients 200] [--subscriptions 50] [--url URL --api-key KEY…]`:
// holds `clients` concurrent GraphQL clients (each sends its next query or mutation as soon as the
// last one answered) and `subscriptions` live graphql-ws subscriptions to the syncs' runs, while the
// mutations trigger sync runs to a local fake Meta. Prints throughput, p50/p99 latency and the error
// count; the last line is one JSON object.
//
// Without --url it starts its own gateway (and worker) in this process, on a fresh PostgreSQL database
// (the server of DATABASE_URL, postgresql://postgres@127.0.0.1:5432 by default, which it drops after),
// with 20 workspaces and one WRITE key per client and per subscription: the rate limiter keeps its
// defaults, and each key stays far below them. With --url, pass as many --api-key as can share the
// load without hitting the gateway's per-key rate limit (or run that gateway with RATE_LIMIT_POINTS=0).
// Traffic goes to loopback addresses only, and the script stops itself.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient, type Client } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { createApiKey } from '../src/identity/api-keys.js';
import { startApp, type App } from '../src/app.js';
import { loadConfig } from '../src/infra/config.js';
import { db } from '../src/infra/db.js';
import { startFakeMeta, type FakeMeta } from '../test/fakes/meta-server.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    clients: { type: 'string', default: '200' },
    subscriptions: { type: 'string', default: '50' },
    url: { type: 'string' },
    'api-key': { type: 'string', multiple: true },
  },
});

function positiveInteger(name: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`--${name} must be a whole number (got "${value}")`);
  return parsed;
}

const seconds = positiveInteger('seconds', values.seconds);
const clientCount = positiveInteger('clients', values.clients);
const subscriptionCount = positiveInteger('subscriptions', values.subscriptions);
const WORKSPACES = 20;
const MEMBERS_PER_AUDIENCE = 500;
const META_TOKEN = `EAAB-load-${randomBytes(6).toString('hex')}`;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;
// Bounds the whole run (set-up and shutdown included), whatever happens.
const hardStop = setTimeout(() => {
  console.error('The load run took too long: stopping');
  process.exit(2);
}, (seconds + 300) * 1000);
hardStop.unref();

interface Target {
  url: string;
  apiKeys: string[];
  stop(): Promise<void>;
}

/** Starts the gateway and worker in this process on a fresh database, with WORKSPACES workspaces
 * and `keys` WRITE keys spread over them. */
async function startOwnGateway(keys: number): Promise<Target> {
  const serverUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const databaseName = `asg_load_${process.pid}`;
  const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${databaseName}` }).toString();
  const onServer = async (sql: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    await client.query(sql).finally(() => client.end());
  };
  await onServer(`CREATE DATABASE ${databaseName}`);
  const dataDir = await mkdtemp(join(tmpdir(), 'asg-load-'));
  let app: App | undefined;
  try {
    app = await startApp(
      loadConfig({
        DATABASE_URL: databaseUrl,
        DATA_DIR: dataDir,
        PORT: '0',
        SECRETS_KEY: randomBytes(32).toString('base64'),
        JOB_POLL_INTERVAL_MS: '200',
        // The gateway's own log lines would bury the report: LOG_LEVEL=error shows them.
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
      }),
    );
    const workspaces = await Promise.all(
      Array.from({ length: WORKSPACES }, (_, index) => db().workspace.create({ data: { name: `load-${index}` } })),
    );
    const apiKeys: string[] = [];
    for (let index = 0; index < keys; index++) {
      apiKeys.push((await createApiKey(workspaces[index % WORKSPACES]!.id, `load ${index}`, 'WRITE')).key);
    }
    const started = app;
    return {
      url: started.url.replace('localhost', '127.0.0.1'),
      apiKeys,
      stop: async () => {
        await started.stop();
        await onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await app?.stop();
    await onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    throw error;
  }
}

function runningGateway(url: string, apiKeys: string[] | undefined): Target {
  if (!LOOPBACK.test(new URL(url).hostname)) throw new Error(`--url must be a loopback address (got ${url})`);
  const keys = (apiKeys ?? []).flatMap((key) => key.split(',')).filter(Boolean);
  if (keys.length === 0) throw new Error('--url needs at least one --api-key (a WRITE key)');
  return { url, apiKeys: keys, stop: async () => undefined };
}

interface GraphQLResponse {
  data?: Record<string, any> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

async function call(url: string, apiKey: string, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as GraphQLResponse;
  if (!response.ok && !body.errors) throw new Error(`HTTP ${response.status}`);
  return body;
}

/** What each client's workspace holds: a Meta destination (the fake), an audience and a sync of it. */
interface Fixture {
  audienceId: string;
  syncId: string;
}

/** Creates a workspace's fixture through the API, so that it works against any gateway. */
async function createFixture(url: string, apiKey: string, fake: FakeMeta): Promise<Fixture> {
  const expect = (result: GraphQLResponse, field: string, typename: string) => {
    const value = result.data?.[field];
    if (value?.__typename !== typename) throw new Error(`${field} failed during set-up: ${JSON.stringify(result)}`);
    return value;
  };
  const destination = expect(
    await call(url, apiKey, 'mutation ($input: CreateDestinationInput!) { createDestination(input: $input) { __typename ... on CreateDestinationSuccess { destination { id } } ... on Error { message } } }', {
      input: {
        name: 'Meta (fake)',
        config: { meta: { adAccountId: 'act_1', baseUrl: fake.baseUrl } },
        credentials: { meta: { accessToken: META_TOKEN } },
      },
    }),
    'createDestination',
    'CreateDestinationSuccess',
  ).destination;
  const audience = expect(
    await call(url, apiKey, 'mutation ($input: CreateAudienceInput!) { createAudience(input: $input) { __typename ... on CreateAudienceSuccess { audience { id } } ... on Error { message } } }', {
      input: { name: 'Load test audience' },
    }),
    'createAudience',
    'CreateAudienceSuccess',
  ).audience;
  const members = Array.from({ length: MEMBERS_PER_AUDIENCE }, () => ({ email: `${randomBytes(6).toString('hex')}@example.com` }));
  expect(await call(url, apiKey, ADD_MEMBERS, { audienceId: audience.id, members }), 'addAudienceMembers', 'AddAudienceMembersSuccess');
  const sync = expect(
    await call(url, apiKey, 'mutation ($input: CreateAudienceSyncInput!) { createAudienceSync(input: $input) { __typename ... on CreateAudienceSyncSuccess { audienceSync { id } } ... on Error { message } } }', {
      input: { name: 'Load test sync', audienceId: audience.id, destinationId: destination.id, schedule: { cadenceHours: 0 } },
    }),
    'createAudienceSync',
    'CreateAudienceSyncSuccess',
  ).audienceSync;
  return { audienceId: audience.id, syncId: sync.id };
}

const ADD_MEMBERS =
  'mutation Add($audienceId: ID!, $members: [AudienceMemberInput!]!) { addAudienceMembers(audienceId: $audienceId, members: $members) { __typename ... on AddAudienceMembersSuccess { added } ... on Error { message } } }';

/** The operations a client picks from, with their share of the traffic. */
const OPERATIONS: { name: string; kind: 'query' | 'mutation'; weight: number; variables(fixture: Fixture): Record<string, unknown>; query: string }[] = [
  { name: 'audienceSyncs', kind: 'query', weight: 20, query: 'query { audienceSyncs(first: 20) { edges { node { id name status lastSyncedAt } } } }', variables: () => ({}) },
  {
    name: 'sync with its runs',
    kind: 'query',
    weight: 20,
    query: 'query ($id: ID!) { node(id: $id) { ... on AudienceSync { id status lastRun { id status } runs(first: 5) { edges { node { id status membersAdded } } } } } }',
    variables: (fixture) => ({ id: fixture.syncId }),
  },
  { name: 'audiences', kind: 'query', weight: 15, query: 'query { audiences(first: 20) { edges { node { id name memberCount } } } }', variables: () => ({}) },
  { name: 'destinations', kind: 'query', weight: 15, query: 'query { destinations(first: 20) { edges { node { id name platform credentialsConfigured } } } }', variables: () => ({}) },
  {
    name: 'addAudienceMembers',
    kind: 'mutation',
    weight: 15,
    query: ADD_MEMBERS,
    variables: (fixture) => ({
      audienceId: fixture.audienceId,
      members: Array.from({ length: 1 + Math.floor(Math.random() * 5) }, () => ({ email: `${randomBytes(6).toString('hex')}@example.com` })),
    }),
  },
  {
    name: 'updateAudienceSync',
    kind: 'mutation',
    weight: 8,
    query: 'mutation ($id: ID!, $input: UpdateAudienceSyncInput!) { updateAudienceSync(id: $id, input: $input) { __typename ... on Error { message } } }',
    variables: (fixture) => ({ id: fixture.syncId, input: { description: `touched ${Date.now()}` } }),
  },
  {
    name: 'triggerAudienceSync',
    kind: 'mutation',
    weight: 7,
    query: 'mutation ($id: ID!) { triggerAudienceSync(id: $id) { __typename ... on TriggerAudienceSyncSuccess { coalesced } ... on Error { message } } }',
    variables: (fixture) => ({ id: fixture.syncId }),
  },
];
const TOTAL_WEIGHT = OPERATIONS.reduce((sum, operation) => sum + operation.weight, 0);

function pickOperation() {
  let ticket = Math.random() * TOTAL_WEIGHT;
  for (const operation of OPERATIONS) {
    ticket -= operation.weight;
    if (ticket < 0) return operation;
  }
  return OPERATIONS[0]!;
}

interface Tally {
  latencies: number[];
  queries: number;
  mutations: number;
  errors: number;
  rateLimited: number;
  errorSamples: Map<string, number>;
}

function recordError(tally: Tally, what: string): void {
  tally.errors++;
  tally.errorSamples.set(what, (tally.errorSamples.get(what) ?? 0) + 1);
}

/** One closed-loop client: sends an operation, waits for the answer, sends the next, until `deadline`. */
async function runClient(url: string, apiKey: string, fixture: Fixture, deadline: number, tally: Tally): Promise<void> {
  while (performance.now() < deadline) {
    const operation = pickOperation();
    const started = performance.now();
    try {
      const result = await call(url, apiKey, operation.query, operation.variables(fixture));
      tally.latencies.push(performance.now() - started);
      tally[operation.kind === 'query' ? 'queries' : 'mutations']++;
      const code = result.errors?.[0]?.extensions?.code;
      if (code === 'RATE_LIMITED') tally.rateLimited++;
      if (result.errors) recordError(tally, `${operation.name}: ${code ?? result.errors[0]!.message}`);
    } catch (error) {
      tally.latencies.push(performance.now() - started);
      recordError(tally, `${operation.name}: ${String(error)}`);
    }
  }
}

interface Subscriber {
  client: Client;
  events: number;
  errors: number;
  done: Promise<void>;
}

/** A graphql-ws client following every run of one sync. */
function subscribe(url: string, apiKey: string, fixture: Fixture, statuses: Map<string, string>): Subscriber {
  const client = createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${apiKey}` },
    retryAttempts: 0,
  });
  const subscriber: Subscriber = { client, events: 0, errors: 0, done: Promise.resolve() };
  subscriber.done = new Promise<void>((resolve) => {
    client.subscribe<{ audienceSyncRunUpdated: { id: string; status: string } }>(
      { query: 'subscription ($syncId: ID!) { audienceSyncRunUpdated(syncId: $syncId) { id status progress } }', variables: { syncId: fixture.syncId } },
      {
        next: ({ data, errors }) => {
          if (errors) subscriber.errors++;
          if (data) {
            subscriber.events++;
            statuses.set(data.audienceSyncRunUpdated.id, data.audienceSyncRunUpdated.status);
          }
        },
        error: () => {
          subscriber.errors++;
          resolve();
        },
        complete: resolve,
      },
    );
  });
  return subscriber;
}

const percentile = (sorted: number[], share: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))]!);
const round = (value: number) => Math.round(value * 10) / 10;

async function main(): Promise<Record<string, number>> {
  const fake = await startFakeMeta({ accessToken: META_TOKEN });
  const target = values.url ? runningGateway(values.url, values['api-key']) : await startOwnGateway(clientCount + subscriptionCount);
  try {
    console.log(`Gateway: ${target.url} (${values.url ? 'running' : 'started in this process'}), ${target.apiKeys.length} API key(s)`);
    // One fixture per workspace: its own gateway gives key k to workspace k % WORKSPACES; keys given
    // with --url may each belong to another workspace, so each gets its own fixture.
    const fixtureCount = values.url ? target.apiKeys.length : Math.min(WORKSPACES, target.apiKeys.length);
    const fixtures = await Promise.all(
      Array.from({ length: fixtureCount }, (_, index) => createFixture(target.url, target.apiKeys[index]!, fake)),
    );
    const keyIndex = (client: number) => client % target.apiKeys.length;
    const keyFor = (client: number) => target.apiKeys[keyIndex(client)]!;
    const fixtureFor = (client: number) => fixtures[keyIndex(client) % fixtureCount]!;
    console.log(`Set up ${fixtures.length} workspace(s), each with ${MEMBERS_PER_AUDIENCE} members syncing to a fake Meta at ${fake.baseUrl}`);

    const statuses = new Map<string, string>();
    const subscribers = Array.from({ length: subscriptionCount }, (_, index) => subscribe(target.url, keyFor(clientCount + index), fixtureFor(clientCount + index), statuses));
    const tally: Tally = { latencies: [], queries: 0, mutations: 0, errors: 0, rateLimited: 0, errorSamples: new Map() };
    console.log(`Running ${clientCount} clients and ${subscriptionCount} subscriptions for ${seconds} s…`);
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(Array.from({ length: clientCount }, (_, index) => runClient(target.url, keyFor(index), fixtureFor(index), deadline, tally)));
    const elapsed = (performance.now() - started) / 1000;
    await Promise.all(subscribers.map((subscriber) => subscriber.client.dispose()));
    await Promise.all(subscribers.map((subscriber) => subscriber.done));

    const sorted = tally.latencies.sort((a, b) => a - b);
    const requests = sorted.length;
    const subscriptionEvents = subscribers.reduce((sum, subscriber) => sum + subscriber.events, 0);
    const subscriptionErrors = subscribers.reduce((sum, subscriber) => sum + subscriber.errors, 0);
    const runsEnded = (status: string) => [...statuses.values()].filter((seen) => seen === status).length;
    const summary = {
      requestsPerSecond: round(requests / elapsed),
      p50Ms: round(percentile(sorted, 0.5)),
      p99Ms: round(percentile(sorted, 0.99)),
      errors: tally.errors + subscriptionErrors,
      requests,
      queries: tally.queries,
      mutations: tally.mutations,
      rateLimited: tally.rateLimited,
      clients: clientCount,
      subscriptions: subscriptionCount,
      subscriptionEvents,
      runsSeen: statuses.size,
      runsSucceeded: runsEnded('SUCCEEDED'),
      runsFailed: runsEnded('FAILED'),
      seconds: round(elapsed),
    };
    console.log(`Requests: ${requests} in ${summary.seconds} s (${summary.queries} queries, ${summary.mutations} mutations): ${summary.requestsPerSecond} per second`);
    console.log(`Latency: p50 ${summary.p50Ms} ms, p99 ${summary.p99Ms} ms, max ${round(sorted.at(-1) ?? 0)} ms`);
    console.log(
      `Subscriptions: ${subscriptionEvents} run updates received by ${subscriptionCount} subscribers; ` +
        `${statuses.size} runs seen, ${summary.runsSucceeded} succeeded, ${summary.runsFailed} failed`,
    );
    console.log(`Errors: ${summary.errors} (${tally.rateLimited} rate-limited, ${subscriptionErrors} on subscriptions)`);
    for (const [what, count] of [...tally.errorSamples].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`  ${count} × ${what}`);
    return summary;
  } finally {
    await target.stop();
    await fake.close();
  }
}

// Printed once the gateway has stopped, so that nothing it logs can come after the summary.
console.log(JSON.stringify(await main()));
