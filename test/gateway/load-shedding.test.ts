import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { createApiKey } from '../../src/identity/api-keys.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { unknownId } from '../support/global-ids.js';
import { TaskUpdated } from '../support/operations.js';
import { subscribeOverSSE } from '../support/sse.js';
import { waitFor } from '../support/wait.js';

// One turn at a time: an operation holding it makes every other one wait, up to 3 s (room for the
// waiting test to see it wait, then free the turn, on a busy machine).
const MAX_QUEUE_WAIT_MS = 3000;
let gateway: TestGateway;
let locker: pg.Client;

beforeAll(async () => {
  gateway = await startTestGateway({ ROLES: 'gateway', MAX_CONCURRENT_REQUESTS: '1', MAX_QUEUE_WAIT_MS: String(MAX_QUEUE_WAIT_MS) });
  locker = new pg.Client({ connectionString: gateway.databaseUrl });
  await locker.connect();
});
afterEach(async () => {
  await locker.query('ROLLBACK');
});
afterAll(async () => {
  await locker.end();
  await gateway.stop();
});

const viewerQuery = JSON.stringify({ query: '{ viewer { role } }' });

function post(apiKey: string, signal?: AbortSignal) {
  return fetch(gateway.app.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: viewerQuery,
    signal,
  });
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(gateway.app.url.replace(/\/graphql$/, '/metrics'))).text();
  const line = text.split('\n').find((row) => row.startsWith(`${name} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** Starts an operation that holds the only turn: its new key's lookup waits on a lock of api_key. */
async function holdTheTurn(): Promise<{ held: Promise<Response> }> {
  const { key } = await createApiKey(gateway.workspaceId, 'held', 'READ');
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE api_key IN ACCESS EXCLUSIVE MODE');
  const held = post(key);
  await waitFor(
    async () =>
      (
        await locker.query<{ waiting: number }>(
          "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
      ).rows[0]!.waiting,
    (waiting) => waiting === 1,
    { what: 'the held operation to wait on the lock' },
  );
  return { held };
}

test('past its turns, an operation that waited MAX_QUEUE_WAIT_MS is answered 503 OVERLOADED with Retry-After; the held one completes', async () => {
  const { held } = await holdTheTurn();
  const shedBefore = await metric('graphql_http_requests_shed_total');
  const started = performance.now();

  const shed = await post(gateway.apiKey);

  const waited = performance.now() - started;
  expect(shed.status).toBe(503);
  expect(shed.headers.get('retry-after')).toBe('1');
  const body = (await shed.json()) as { errors: { extensions: Record<string, unknown> }[] };
  expect(body.errors[0]!.extensions).toMatchObject({ code: 'OVERLOADED', retryAfterSeconds: 1, requestId: expect.any(String) });
  expect(body).not.toHaveProperty('data');
  expect(waited).toBeGreaterThanOrEqual(MAX_QUEUE_WAIT_MS - 5);
  expect(await metric('graphql_http_requests_shed_total')).toBe(shedBefore + 1);

  await locker.query('COMMIT');
  const answered = await held;
  expect(answered.status).toBe(200);
  expect(await answered.json()).toEqual({ data: { viewer: { role: 'READ' } } });
  expect((await post(gateway.apiKey)).status).toBe(200);
});

test('a waiting operation runs as soon as the turn is free, within MAX_QUEUE_WAIT_MS', async () => {
  const { held } = await holdTheTurn();
  const waiting = post(gateway.apiKey);
  await waitFor(() => metric('graphql_http_requests_waiting'), (count) => count === 1, { what: 'the second operation to wait' });

  await locker.query('COMMIT');

  const [first, second] = await Promise.all([held, waiting]);
  expect([first.status, second.status]).toEqual([200, 200]);
  expect(await second.json()).toEqual({ data: { viewer: { role: 'WRITE' } } });
  expect(await metric('graphql_http_requests_waiting')).toBe(0);
});

test('a client that gives up while waiting leaves the line', async () => {
  const { held } = await holdTheTurn();
  const abort = new AbortController();
  const gaveUp = post(gateway.apiKey, abort.signal).catch((error: unknown) => error);
  await waitFor(() => metric('graphql_http_requests_waiting'), (count) => count === 1, { what: 'the operation to wait' });

  abort.abort();

  expect(await gaveUp).toMatchObject({ name: 'AbortError' });
  await waitFor(() => metric('graphql_http_requests_waiting'), (count) => count === 0, { what: 'the line to empty' });
  await locker.query('COMMIT');
  expect((await held).status).toBe(200);
});

test('server-sent event streams take no turn: a subscription open, other operations still run', async () => {
  const stream = await subscribeOverSSE(gateway, TaskUpdated, { taskId: unknownId('Task') });
  try {
    const answered = await post(gateway.apiKey);

    expect(answered.status).toBe(200);
    expect(await answered.json()).toEqual({ data: { viewer: { role: 'WRITE' } } });
  } finally {
    stream.close();
  }
});
