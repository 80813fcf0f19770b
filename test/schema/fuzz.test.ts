import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket, { type RawData } from 'ws';
import { createApiKey } from '../../src/identity/api-keys.js';
import { setAddressPolicy } from '../../src/infra/address-policy.js';
import { db } from '../../src/infra/db.js';
import { schema } from '../../src/schema/index.js';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import {
  FUZZED_MUTATIONS,
  Random,
  WEBSOCKET_PROTOCOL_ABUSE,
  authRequest,
  documentRequest,
  hostileConnectionParams,
  malformedInnerIdTwins,
  mutationRequest,
  privateUrlRequests,
  queryRequest,
  rawHttpRequest,
  twinRequests,
  webSocketOperation,
  type Caller,
  type FuzzWorkspace,
  type HostileRequest,
} from '../support/hostile-inputs.js';
import { ENGINE_FUZZED_MUTATIONS, engineMutationRequest, engineQueryRequest, importRequest, largeEngineRequests } from '../support/hostile-engine-inputs.js';
import { NodeById, SyncRuns, TriggerAudienceSync } from '../support/operations.js';
import { META_TOKEN, createAudienceWith, createMetaDestination, createSync, dataOf, expectType } from '../support/scenario.js';
import { snapshotTables } from '../support/tables.js';

/**
 * Sends thousands of generated invalid and hostile requests to the real gateway — over yoga's fetch,
 * the real HTTP port and graphql-ws — and checks what issue 4 promises of every answer: no 5xx, no
 * unmasked error (stack trace, SQL, database error or secret), and not one row written. Everything
 * is drawn from one seeded PRNG: `FUZZ_SEED=<n> npx vitest run test/schema/fuzz.test.ts` replays a run.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_122);
const HTTP_REQUESTS = 4_400;
/** Requests to the engine's surface (segments, splits, suppressions, contacts, syncAudiences, CSV imports), from a PRNG of their own. */
const ENGINE_REQUESTS = 1_000;
const TWIN_PAIRS = 200;
const WEBSOCKET_OPERATIONS = 300;
const CONCURRENCY = 4;
/** Requests between two snapshots of the tables; the first of each group runs alone, between two snapshots of its own. */
const GROUP_SIZE = 50;
const RESPONSE_TIMEOUT_MS = 15_000;
/** How long an open subscription is watched for events it must not get before it is completed. */
const SUBSCRIPTION_WATCH_MS = 250;

/** What came back for one hostile input. */
interface Observation {
  label: string;
  /** The start of what was sent, to reproduce a finding by hand. */
  sent: string;
  tags: string[];
  /** HTTP status, or for WebSocket inputs the close code (0 while the socket stays open). */
  status: number;
  body: string;
  problems: string[];
}

/**
 * Violations of issue 4's promises that the gateway still has, each excused only for the inputs
 * carrying one of its tags. Each has a `test.fails` below that turns red once it is fixed: then
 * delete it here, and the general checks cover those inputs too.
 */
const KNOWN_VIOLATIONS: { tags: string[]; problems: string[]; what: string }[] = [];

const STACK_OR_PATH = /\\n\s+at |\bat (?:async )?[\w$.<>[\] ]+ \((?:file:|node:|\/)|"stack"\s*:|\/work\/main\/|node_modules\/|\.[cm]?[jt]s:\d+:\d+/;
const DATABASE_ERROR =
  /invalid input syntax|syntax error at or near|violates (?:foreign key|unique|not-null|check)|duplicate key value|invalid byte sequence|unsupported Unicode escape|PrismaClient|prisma\.\w+\.\w+\(|Invalid `|ConnectorError|DriverAdapterError|SQLSTATE|\bP20\d\d\b|Raw query failed|relation "|column "|pg_catalog/;
const INTERNAL_ERROR = /"code":"INTERNAL_SERVER_ERROR"|Unexpected error\./;

let gateway: TestGateway;
let fake: FakeMeta;
let secrets: string[];
let callers: Caller[];
let workspaces: [FuzzWorkspace, FuzzWorkspace];
let revokedKey: string;
const observations: Observation[] = [];
const writes: string[] = [];
const twinMismatches: string[] = [];

const secretsKey = randomBytes(32).toString('base64');

/** A workspace with one object of each type: a destination, an audience syncing to it, and a finished run. */
async function populateWorkspace(writeKey: string, workspaceId: string): Promise<FuzzWorkspace> {
  const destination = await createMetaDestination(gateway, fake, writeKey);
  const audience = await createAudienceWith(gateway, ['ada@example.com', 'grace@example.com'], writeKey);
  const sync = await createSync(gateway, { audienceId: audience.id, destinationId: destination.id, mode: 'MIRROR' }, writeKey);
  const triggered = dataOf(await gateway.execute(TriggerAudienceSync, { id: sync.id }, { apiKey: writeKey }));
  const { task, syncRun } = expectType(triggered.triggerAudienceSync, 'TriggerAudienceSyncSuccess');
  await waitForRun(sync.id, writeKey);
  const readKey = (await createApiKey(workspaceId, 'fuzz reader', 'READ')).key;
  return {
    writeKey,
    readKey,
    ids: { Destination: destination.id, Audience: audience.id, AudienceSync: sync.id, SyncRun: syncRun.id, Task: task.id },
  };
}

async function waitForRun(syncId: string, apiKey: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const { node } = dataOf(await gateway.execute(SyncRuns, { id: syncId }, { apiKey }));
    const status = (node as { lastRun?: { status: string } } | null)?.lastRun?.status;
    if (status === 'SUCCEEDED') return;
    if (status === 'FAILED') throw new Error('the fixture run failed');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the fixture run did not finish');
}

/** Everything a refused request must leave alone: the data tables, and workspaces and API keys
 * (except `last_used_at`, which authentication refreshes). */
async function snapshot(): Promise<string> {
  const [tenancy] = await db().$queryRawUnsafe<{ workspaces: string | null; keys: string | null }[]>(
    `SELECT (SELECT md5(string_agg(w::text, '|' ORDER BY w.id)) FROM workspace w) AS workspaces,
            (SELECT md5(string_agg((to_jsonb(k) - 'last_used_at')::text, '|' ORDER BY k.id)) FROM api_key k) AS keys`,
  );
  return JSON.stringify({ tables: await snapshotTables(), tenancy });
}

/** Waits until no background work (the fixture runs' jobs) changes the tables any more. */
async function settle(): Promise<void> {
  let previous = await snapshot();
  for (let attempt = 0; attempt < 50; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const current = await snapshot();
    if (current === previous) return;
    previous = current;
  }
  throw new Error('the tables kept changing before the fuzzing started');
}

function problemsOf(status: number, body: string, tags: string[]): string[] {
  const problems: string[] = [];
  if (status >= 500) problems.push(`HTTP ${status}`);
  if (STACK_OR_PATH.test(body)) problems.push('stack trace or source path');
  if (DATABASE_ERROR.test(body)) problems.push('database error text');
  if (secrets.some((secret) => body.includes(secret))) problems.push('secret');
  if (body.includes('"originalError"')) problems.push('originalError');
  if (INTERNAL_ERROR.test(body)) problems.push('internal error');
  if (tags.includes('mutation') && /"__typename":"\w+Success"/.test(body)) problems.push('mutation accepted');
  return problems;
}

/** Sends over the gateway's real port, on a connection of its own (no keep-alive to race with). */
function sendOverHttp(request: HostileRequest, withBody: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      `${gateway.app.url}${request.search ?? ''}`,
      { method: request.method, headers: request.headers, agent: false, timeout: RESPONSE_TIMEOUT_MS },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('timed out')));
    outgoing.on('error', reject);
    outgoing.end(withBody ? request.body : undefined);
  });
}

async function send(request: HostileRequest): Promise<Observation> {
  const withBody = !['GET', 'HEAD'].includes(request.method);
  let status: number;
  let body: string;
  try {
    if (request.transport === 'http') {
      ({ status, body } = await sendOverHttp(request, withBody));
    } else {
      const response = await gateway.app.yoga!.fetch(`http://gateway/graphql${request.search ?? ''}`, {
        method: request.method,
        headers: request.headers,
        body: withBody ? (request.body as BodyInit | undefined) : undefined,
        signal: AbortSignal.timeout(RESPONSE_TIMEOUT_MS),
      });
      status = response.status;
      body = await response.text();
    }
  } catch (error) {
    status = 599;
    body = `no response: ${String(error)}`;
  }
  const sent = `${request.method} ${request.search ?? ''} ${typeof request.body === 'string' ? request.body.slice(0, 300) : '<bytes>'}`;
  return { label: request.label, sent, tags: request.tags, status, body, problems: problemsOf(status, body, request.tags) };
}

async function inParallel<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Sends `requests` in groups: the first of each group alone between two snapshots, the rest
 * concurrently, then a snapshot for the whole group. */
async function sendAll(requests: HostileRequest[]): Promise<void> {
  for (let start = 0; start < requests.length; start += GROUP_SIZE) {
    const group = requests.slice(start, start + GROUP_SIZE);
    const before = await snapshot();
    const alone = await send(group[0]!);
    observations.push(alone);
    const afterAlone = await snapshot();
    if (afterAlone !== before) writes.push(`request ${start} alone: ${alone.label}`);
    await inParallel(group.slice(1), async (request) => {
      observations.push(await send(request));
    });
    if ((await snapshot()) !== afterAlone) {
      writes.push(`requests ${start + 1}–${start + group.length - 1}: ${group.slice(1).map((request) => request.label).join(' | ')}`);
    }
  }
}

/** Parses a response for comparison: ids replaced, request ids dropped. */
function comparable(body: string, ids: string[]): unknown {
  let text = body;
  for (const id of ids) text = text.split(id).join('<id>');
  return JSON.parse(text, (key, value: unknown) => (/^request.?id$/i.test(key) ? undefined : value));
}

// ---- WebSocket ----------------------------------------------------------------------------------

interface Socket {
  socket: WebSocket;
  frames: { id?: string; type?: string; text: string }[];
  closed: Promise<{ code: number; reason: string }>;
  isClosed(): boolean;
}

function openSocket(): Promise<Socket> {
  const socket = new WebSocket(gateway.app.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const frames: Socket['frames'] = [];
  let closedYet = false;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => {
      closedYet = true;
      resolve({ code, reason: reason.toString() });
    });
    socket.on('error', () => undefined);
  });
  socket.on('message', (data: RawData) => {
    const text = data.toString();
    try {
      const message = JSON.parse(text) as { id?: string; type?: string };
      frames.push({ id: message.id, type: message.type, text });
    } catch {
      frames.push({ text });
    }
  });
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve({ socket, frames, closed, isClosed: () => closedYet }));
    socket.once('error', reject);
  });
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

async function acknowledgedSocket(apiKey: string): Promise<Socket> {
  const socket = await openSocket();
  socket.socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${apiKey}` } }));
  if (!(await until(() => socket.frames.some((frame) => frame.type === 'connection_ack'), 5_000))) {
    throw new Error('the gateway did not acknowledge a valid WebSocket connection');
  }
  return socket;
}

function webSocketObservation(label: string, sent: unknown, tags: string[], status: number, body: string): Observation {
  const problems = problemsOf(0, body, tags);
  if (status === 4500 || status === 1011 || status === 1006) problems.push(`WebSocket closed with ${status}`);
  return { label, sent: String(typeof sent === 'string' ? sent : JSON.stringify(sent)).slice(0, 300), tags, status, body, problems };
}

/** Runs graphql-ws operations one after another on a socket (a new one after each close): each is
 * watched until it completes or errors, or for a short while, then completed by the client. */
async function runWebSocketOperations(operations: ReturnType<typeof webSocketOperation>[], apiKey: string): Promise<void> {
  let socket = await acknowledgedSocket(apiKey);
  for (const [index, operation] of operations.entries()) {
    const id = `op${index}`;
    socket.socket.send(JSON.stringify({ id, type: 'subscribe', payload: operation.payload }));
    const ended = () => socket.isClosed() || socket.frames.some((frame) => frame.id === id && (frame.type === 'complete' || frame.type === 'error'));
    await until(ended, SUBSCRIPTION_WATCH_MS);
    if (!ended()) socket.socket.send(JSON.stringify({ id, type: 'complete' }));
    const closed = socket.isClosed() ? await socket.closed : null;
    const body = [...socket.frames.filter((frame) => frame.id === id).map((frame) => frame.text), closed?.reason ?? ''].join('\n');
    if (operation.tags.includes('ws-subscription') && operation.tags.includes('foreign-id') && socket.frames.some((frame) => frame.id === id && frame.type === 'next' && !frame.text.includes('"errors"'))) {
      twinMismatches.push(`${operation.label}: a subscriber got an event of another workspace`);
    }
    observations.push(webSocketObservation(`ws ${operation.label}`, operation.payload, operation.tags, closed?.code ?? 0, body));
    if (closed) socket = await acknowledgedSocket(apiKey);
  }
  socket.socket.close();
}

async function abuseProtocol(name: string, frame: string | Buffer, apiKey: string): Promise<void> {
  const socket = await acknowledgedSocket(apiKey);
  socket.socket.send(frame);
  await until(() => socket.isClosed() || socket.frames.length > 1, 1_000);
  await until(() => socket.isClosed(), 100);
  const closed = socket.isClosed() ? await socket.closed : null;
  const body = [...socket.frames.slice(1).map((received) => received.text), closed?.reason ?? ''].join('\n');
  observations.push(webSocketObservation(`ws frame: ${name}`, frame.toString(), ['ws-protocol', name], closed?.code ?? 0, body));
  socket.socket.close();
}

async function connectWithParams(label: string, payload: unknown): Promise<void> {
  const socket = await openSocket();
  socket.socket.send(JSON.stringify({ type: 'connection_init', ...(payload === undefined ? {} : { payload }) }));
  await until(() => socket.isClosed() || socket.frames.length > 0, 2_000);
  const closed = socket.isClosed() ? await socket.closed : null;
  const body = [...socket.frames.map((frame) => frame.text), closed?.reason ?? ''].join('\n');
  const observation = webSocketObservation(`ws connection_init: ${label}`, payload, ['ws-auth'], closed?.code ?? 0, body);
  if (socket.frames.some((frame) => frame.type === 'connection_ack')) observation.problems.push('authenticated');
  observations.push(observation);
  socket.socket.close();
}

// ---- The run ------------------------------------------------------------------------------------

let before: string;
let after: string;

beforeAll(async () => {
  gateway = await startTestGateway({ SECRETS_KEY: secretsKey, RATE_LIMIT_POINTS: '0' });
  fake = await startFakeMeta({ accessToken: META_TOKEN });
  const other = await gateway.createWorkspace();
  workspaces = [
    await populateWorkspace(gateway.apiKey, gateway.workspaceId),
    await populateWorkspace(other.apiKey, other.workspaceId),
  ];
  // The fixtures talk to the Meta fake on loopback; the hostile inputs then meet an operator's setup that
  // allows custom platform URLs but no private address, so every URL setting is held to the private-address rules.
  setAddressPolicy({ allowPrivate: false, allowCustomPlatformUrls: true });
  const revoked = await createApiKey(gateway.workspaceId, 'revoked', 'WRITE');
  await db().apiKey.update({ where: { id: revoked.record.id }, data: { revokedAt: new Date() } });
  revokedKey = revoked.key;
  const [a, b] = workspaces;
  const sealed = await db().destination.findMany({ select: { credentials: true } });
  const keyHashes = await db().apiKey.findMany({ select: { keyHash: true } });
  secrets = [
    META_TOKEN,
    secretsKey,
    gateway.databaseUrl,
    new URL(gateway.databaseUrl).pathname.slice(1),
    a.writeKey,
    a.readKey,
    b.writeKey,
    b.readKey,
    revokedKey,
    ...sealed.flatMap((destination) => (destination.credentials ? [String(destination.credentials).slice(0, 40)] : [])),
    ...keyHashes.map((key) => key.keyHash),
  ];
  const nobody = { canWrite: false, own: a, other: b };
  callers = [
    { name: 'writer', authorization: `Bearer ${a.writeKey}`, canWrite: true, own: a, other: b },
    { name: 'writer', authorization: `Bearer ${a.writeKey}`, canWrite: true, own: a, other: b },
    { name: 'writer', authorization: `Bearer ${a.writeKey}`, canWrite: true, own: a, other: b },
    { name: 'other writer', authorization: `Bearer ${b.writeKey}`, canWrite: true, own: b, other: a },
    { name: 'reader', authorization: `Bearer ${a.readKey}`, canWrite: false, own: a, other: b },
    { name: 'anonymous', authorization: null, ...nobody },
    { name: 'revoked key', authorization: `Bearer ${revokedKey}`, ...nobody },
  ];
  await settle();
  before = await snapshot();

  const random = new Random(SEED);
  const requests = Array.from({ length: HTTP_REQUESTS }, () => {
    const caller = random.pick(callers);
    const kind = random.next();
    const request =
      kind < 0.4
        ? mutationRequest(random, caller)
        : kind < 0.6
          ? queryRequest(random, caller)
          : kind < 0.78
            ? documentRequest(random, caller)
            : kind < 0.94
              ? rawHttpRequest(random, caller)
              : authRequest(random, caller.own, revokedKey);
    if (random.chance(0.1)) request.transport = 'http';
    return request;
  });
  await sendAll(requests);
  await sendAll(privateUrlRequests(callers[0]!));

  const engineRandom = new Random(SEED + 1);
  const engineRequests = Array.from({ length: ENGINE_REQUESTS }, () => {
    const caller = engineRandom.pick(callers);
    const kind = engineRandom.next();
    const request = kind < 0.6 ? engineMutationRequest(engineRandom, caller) : kind < 0.8 ? engineQueryRequest(engineRandom, caller) : importRequest(engineRandom, caller);
    if (engineRandom.chance(0.1)) request.transport = 'http';
    return request;
  });
  await sendAll(engineRequests);
  await sendAll(largeEngineRequests(engineRandom, callers[0]!));

  const writers = callers.filter((caller) => caller.canWrite);
  const pairs = Array.from({ length: TWIN_PAIRS }, () => twinRequests(random, random.pick(writers)));
  await inParallel([...pairs, ...malformedInnerIdTwins(writers[0]!)], async (twins) => {
    const [probe, unknown] = await Promise.all([send(twins.probe), send(twins.unknown)]);
    observations.push(probe, unknown);
    if (probe.status !== unknown.status || JSON.stringify(comparable(probe.body, twins.ids)) !== JSON.stringify(comparable(unknown.body, twins.ids))) {
      twinMismatches.push(`${twins.label}: ${probe.status} ${probe.body.slice(0, 300)} ≠ ${unknown.status} ${unknown.body.slice(0, 300)}`);
    }
  });

  const writer = callers[0]!;
  const operations = Array.from({ length: WEBSOCKET_OPERATIONS }, () => webSocketOperation(random, writer));
  const quarter = Math.ceil(operations.length / 4);
  await Promise.all([0, 1, 2, 3].map((part) => runWebSocketOperations(operations.slice(part * quarter, (part + 1) * quarter), a.writeKey)));
  for (const [name, frame] of WEBSOCKET_PROTOCOL_ABUSE) await abuseProtocol(name, frame, a.writeKey);
  for (let attempt = 0; attempt < 40; attempt++) {
    const { label, payload } = hostileConnectionParams(random, random.pick(workspaces), revokedKey);
    await connectWithParams(label, payload);
  }
  after = await snapshot();
}, 300_000);

afterAll(async () => {
  await fake?.close();
  await gateway?.stop();
});

// ---- What must hold -----------------------------------------------------------------------------

const matches = (known: (typeof KNOWN_VIOLATIONS)[number], observation: Observation, problem: string) =>
  known.problems.some((prefix) => problem.startsWith(prefix)) && known.tags.some((tag) => observation.tags.includes(tag));

const isExcused = (observation: Observation, problem: string) => KNOWN_VIOLATIONS.some((known) => matches(known, observation, problem));

/** Each observation with a problem matching `pattern` that no known violation excuses, summarised. */
function findings(pattern: RegExp): string[] {
  return observations.flatMap((observation) =>
    observation.problems
      .filter((problem) => pattern.test(problem) && !isExcused(observation, problem))
      .map((problem) => `${problem} — ${observation.label} [${observation.tags.join(', ')}]: ${observation.sent} → ${observation.status} ${observation.body.slice(0, 400)}`),
  );
}

describe(`fuzzing the gateway (seed ${SEED})`, () => {
  test('at least 5,000 hostile inputs were sent, over fetch, HTTP and WebSocket, to the audience, destination and sync mutations', () => {
    expect(observations.length).toBeGreaterThanOrEqual(5_000);
    expect(observations.filter((observation) => observation.tags.some((tag) => tag.startsWith('ws-'))).length).toBeGreaterThanOrEqual(300);
    expect(Object.keys(schema.getMutationType()!.getFields())).toEqual(expect.arrayContaining([...FUZZED_MUTATIONS, ...ENGINE_FUZZED_MUTATIONS]));
    expect(observations.filter((observation) => observation.tags.includes('engine')).length).toBeGreaterThanOrEqual(1_000);
  });

  test('no answer is a server error: no 5xx, no WebSocket closed as an internal error', () => {
    expect(findings(/^HTTP 5|^WebSocket closed/)).toEqual([]);
  });

  test('no answer carries a stack trace, a source path, database error text, a secret or an originalError', () => {
    expect(findings(/^stack|^database|^secret|^originalError/)).toEqual([]);
  });

  test('no hostile input is accepted, and no row was written: over the whole run, per group of 50, and for one request in 50 alone', () => {
    expect(findings(/^mutation accepted|^authenticated/)).toEqual([]);
    expect(writes).toEqual([]);
    expect(after).toBe(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('an id of another workspace, or with an inner id that is not a UUID, answers exactly as an id that names nothing, and its events never arrive', () => {
    expect(twinMismatches).toEqual([]);
  });

  test('hostile input is refused with a clear error, never an internal one', () => {
    expect(findings(/^internal error/)).toEqual([]);
  });

  test('the gateway still serves HTTP and WebSocket clients afterwards', async () => {
    const [a] = workspaces;
    expect(dataOf(await gateway.execute(NodeById, { id: a.ids.Audience }, { apiKey: a.writeKey })).node).toMatchObject({ id: a.ids.Audience });
    const socket = await acknowledgedSocket(a.writeKey);
    socket.socket.send(JSON.stringify({ id: 'alive', type: 'subscribe', payload: { query: '{ __typename }' } }));
    expect(await until(() => socket.frames.some((frame) => frame.id === 'alive' && frame.type === 'complete'), 5_000)).toBe(true);
    socket.socket.close();
  });

  for (const known of KNOWN_VIOLATIONS) {
    test.fails(`known violation, still present (delete it from KNOWN_VIOLATIONS once this fails): ${known.what}`, () => {
      expect(observations.filter((observation) => observation.problems.some((problem) => matches(known, observation, problem)))).toEqual([]);
    });
  }
});
