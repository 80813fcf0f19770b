import { request as httpRequest } from 'node:http';
import { getIntrospectionQuery, print, type FormattedExecutionResult, type GraphQLFormattedError } from 'graphql';
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/infra/config.js';
import { db } from '../../src/infra/db.js';
import { logger } from '../../src/infra/logger.js';
import { INTERNAL_ERROR_MESSAGE } from '../../src/gateway/request-ids.js';
import { graphql } from '../generated/gql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { unknownId } from '../support/global-ids.js';
import { AddAudienceMembers, CreateAudience, SyncRunUpdated } from '../support/operations.js';
import { dataOf } from '../support/scenario.js';
import { expectNothingWritten } from '../support/tables.js';

const ONE_MIB = 1024 * 1024;
const RATE_LIMIT_POINTS = 40;
const MAX_SUBSCRIPTIONS_PER_SOCKET = 3;

const AudiencesPage = graphql(`
  query AudiencesPage($first: Int) {
    audiences(first: $first) { edges { node { id } } pageInfo { hasNextPage } }
  }
`);

const TaskOfLimitsTest = graphql(`
  query TaskOfLimitsTest($id: ID!) {
    task(id: $id) { id }
  }
`);

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({
    MAX_REQUEST_BODY_BYTES: String(ONE_MIB),
    MAX_SUBSCRIPTIONS_PER_SOCKET: String(MAX_SUBSCRIPTIONS_PER_SOCKET),
    RATE_LIMIT_POINTS: String(RATE_LIMIT_POINTS),
    RATE_LIMIT_DURATION_SECONDS: '600',
    INTROSPECTION: 'false',
    GRAPHIQL: 'false',
    CONSOLE: 'false',
  });
});
afterAll(async () => {
  await gateway?.stop();
});

interface Answer {
  status: number;
  headers: Headers;
  body: FormattedExecutionResult<Record<string, unknown>>;
}

/** POSTs a raw request body to the gateway (through yoga's fetch, no socket) with a key of its own
 * workspace unless `apiKey` is given: each test spends its own rate-limit points. */
async function post(body: unknown, options: { apiKey?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const apiKey = options.apiKey ?? (await gateway.createWorkspace()).apiKey;
  const response = await gateway.app.yoga!.fetch('http://gateway/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, ...options.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Answer['body'] };
}

const codes = (errors: readonly GraphQLFormattedError[] | undefined) => errors?.map((error) => error.extensions?.code);

/** `levels` times Audience.syncs → AudienceSync.audience, under a mutation that would create an audience. */
function deepCreateAudience(levels: number): string {
  const nested = 'syncs { edges { node { audience { '.repeat(levels) + 'id' + ' } } } }'.repeat(levels);
  return `mutation { createAudience(input: { name: "Deep" }) { ... on CreateAudienceSuccess { audience { ${nested} } } } }`;
}

describe('operation limits: refused before anything runs, with QUERY_TOO_COMPLEX naming the limit', () => {
  const defaults = loadConfig({});

  const hostile: [limit: string, query: string][] = [
    ['depth', deepCreateAudience(2)],
    ['cost', '{ audiences(first: 100) { edges { node { syncs(first: 100) { edges { node { runs(first: 100) { edges { node { id } } } } } } } } } }'],
    [
      'aliases',
      `mutation { ${Array.from({ length: defaults.MAX_QUERY_ALIASES + 1 }, (_, i) => `a${i}: createAudience(input: { name: "A${i}" }) { __typename }`).join(' ')} }`,
    ],
    [
      'directives',
      `mutation { createAudience(input: { name: "D" }) { ${'__typename @include(if: true) '.repeat(defaults.MAX_QUERY_DIRECTIVES + 1)} } }`,
    ],
    ['tokens', `mutation { createAudience(input: { name: "T" }) { ${'__typename '.repeat(defaults.MAX_QUERY_TOKENS)} } }`],
  ];

  test.each(hostile)('%s', async (limit, query) => {
    const { status, body } = await expectNothingWritten(() => post({ query }));

    expect(status).toBeLessThan(500);
    expect(body.data).toBeUndefined();
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0]!.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', limit });
    expect(body.errors![0]!.message).toMatch(/limit/i);
  });

  test('the same refusal reaches a WebSocket client, whose socket stays usable', async () => {
    const client = gateway.webSocketClient((await gateway.createWorkspace()).apiKey);

    const refused = await expectNothingWritten(
      () =>
        new Promise<unknown>((resolve) =>
          client.subscribe({ query: deepCreateAudience(2) }, { next: resolve, error: resolve, complete: () => undefined }),
        ),
    );
    const afterwards = await new Promise<unknown>((resolve) =>
      client.subscribe({ query: '{ __typename }' }, { next: resolve, error: resolve, complete: () => undefined }),
    );

    expect(refused).toEqual([
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'QUERY_TOO_COMPLEX', limit: 'depth' }) }),
    ]);
    expect(afterwards).toEqual({ data: { __typename: 'Query' } });
  });

  test('and an SSE subscriber', async () => {
    const { apiKey } = await gateway.createWorkspace();
    const deepSubscription = `subscription { syncRunUpdated(runId: "${unknownId('SyncRun')}") { audienceSync { ${'audience { syncs { edges { node { '.repeat(2)}id${' } } } }'.repeat(2)} } } }`;
    const response = await fetch(gateway.app.url, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ query: deepSubscription }),
    });
    const text = await response.text();

    expect(text).toContain('QUERY_TOO_COMPLEX');
    expect(text).toContain('depth');
  });

  test('introspection is not counted against the limits', async () => {
    const introspection = await gateway.app.yoga!.fetch('http://gateway/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: getIntrospectionQuery() }),
    });
    const { errors } = (await introspection.json()) as FormattedExecutionResult;

    // This gateway has introspection off, so it is refused for that (test/schema/auth.test.ts runs it
    // on a gateway with the default settings), but by no limit.
    expect(errors?.length).toBeGreaterThan(0);
    expect(errors!.filter((error) => error.extensions?.code === 'QUERY_TOO_COMPLEX')).toEqual([]);
  });
});

describe('page size', () => {
  test('first: 1000 is clamped to 100 items, with hasNextPage to page through the rest', async () => {
    const workspace = await gateway.createWorkspace();
    await db().audience.createMany({
      data: Array.from({ length: 101 }, (_, i) => ({ workspaceId: workspace.workspaceId, name: `Audience ${i}` })),
    });

    const { audiences } = dataOf(await gateway.execute(AudiencesPage, { first: 1000 }, { apiKey: workspace.apiKey }));

    expect(audiences.edges).toHaveLength(100);
    expect(audiences.pageInfo.hasNextPage).toBe(true);
  });
});

describe('request body size', () => {
  test('the default holds an addAudienceMembers call with 100,000 members', () => {
    const members = Array.from({ length: 100_000 }, (_, i) => ({
      email: `someone.with.a.longish.name.${i}@example-company.com`,
      phone: `+4420794${String(i).padStart(5, '0')}`,
      externalId: `crm-${String(i).padStart(12, '0')}`,
      firstName: 'Alexandra',
      lastName: 'Montgomery-Smith',
      country: 'GB',
    }));
    const body = JSON.stringify({ query: print(AddAudienceMembers), variables: { audienceId: unknownId('Audience'), members } });

    expect(Buffer.byteLength(body)).toBeLessThan(loadConfig({}).MAX_REQUEST_BODY_BYTES);
  });

  test('a larger body is refused with 413 and a clear error, writing nothing', async () => {
    const query = 'mutation ($input: CreateAudienceInput!) { createAudience(input: $input) { __typename } }';
    const body = JSON.stringify({ query, variables: { input: { name: 'Big', description: 'x'.repeat(ONE_MIB) } } });

    const { status, body: answer } = await expectNothingWritten(() => post(body));

    expect(status).toBe(413);
    expect(answer.errors).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/too large/i),
        extensions: expect.objectContaining({ code: 'REQUEST_ENTITY_TOO_LARGE' }),
      }),
    ]);
  });

  test('a streamed body without Content-Length is refused with 413 while it is still being sent', async () => {
    const { apiKey } = await gateway.createWorkspace();
    const chunk = Buffer.from(`{"query":"{ __typename }","variables":{"padding":"${'x'.repeat(64 * 1024)}`);
    const request = httpRequest(gateway.app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, 'transfer-encoding': 'chunked' },
    });
    let sent = 0;
    let answered = false;
    const status = new Promise<number | undefined>((resolve, reject) => {
      request.once('response', (response) => {
        answered = true;
        resolve(response.statusCode);
        request.destroy();
      });
      request.once('error', (error) => (answered ? undefined : reject(error)));
    });
    // Sends up to 16 times the limit, waiting for the socket to drain: the answer comes long before.
    while (!answered && sent < 16 * ONE_MIB) {
      sent += chunk.byteLength;
      if (!request.write(chunk)) await Promise.race([new Promise((resolve) => request.once('drain', resolve)), status]);
    }
    const sentWhenAnswered = sent;
    if (!answered) request.end();

    expect(await status).toBe(413);
    expect(sentWhenAnswered).toBeLessThan(16 * ONE_MIB);
  });
});

test('a WebSocket message larger than the limit closes the socket (1009) before it is read', async () => {
  const socket = new WebSocket(gateway.app.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));

  socket.send(JSON.stringify({ type: 'connection_init', payload: { padding: 'x'.repeat(ONE_MIB) } }));
  const [code] = await new Promise<[number, Buffer]>((resolve) => socket.once('close', (...args) => resolve(args)));

  expect(code).toBe(1009);
});

describe('subscriptions per WebSocket', () => {
  test(`beyond ${MAX_SUBSCRIPTIONS_PER_SOCKET} open at once, the next one is refused; completing one frees a place`, async () => {
    const client = gateway.webSocketClient((await gateway.createWorkspace()).apiKey);
    const open = Array.from({ length: MAX_SUBSCRIPTIONS_PER_SOCKET }, () =>
      client.subscribe(
        { query: print(SyncRunUpdated), variables: { runId: unknownId('SyncRun') } },
        { next: () => undefined, error: (error) => expect.fail(`an open subscription failed: ${JSON.stringify(error)}`), complete: () => undefined },
      ),
    );
    const runOne = () =>
      new Promise<unknown>((resolve) =>
        client.subscribe({ query: '{ __typename }' }, { next: resolve, error: resolve, complete: () => undefined }),
      );

    const refused = await runOne();
    open[0]!();
    const accepted = await runOne();

    expect(refused).toEqual([
      expect.objectContaining({
        message: expect.stringContaining(`at most ${MAX_SUBSCRIPTIONS_PER_SOCKET}`),
        extensions: expect.objectContaining({ code: 'TOO_MANY_SUBSCRIPTIONS', requestId: expect.any(String) }),
      }),
    ]);
    expect(accepted).toEqual({ data: { __typename: 'Query' } });
  });
});

describe('rate limit per API key', () => {
  test('past its points, a key is refused with RATE_LIMITED and when to retry, over HTTP and WebSocket alike', async () => {
    const { apiKey } = await gateway.createWorkspace();
    const other = await gateway.createWorkspace();
    for (let spent = 0; spent < RATE_LIMIT_POINTS; spent += 10) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => post({ query: '{ __typename }' }, { apiKey })));
      expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(200));
    }

    const http = await expectNothingWritten(() =>
      post({ query: print(CreateAudience), variables: { input: { name: 'One too many' } } }, { apiKey }),
    );
    const client = gateway.webSocketClient(apiKey);
    const overWebSocket = await new Promise<FormattedExecutionResult>((resolve, reject) =>
      client.subscribe({ query: '{ __typename }' }, { next: resolve, error: reject, complete: () => undefined }),
    );
    const otherKey = await post({ query: '{ __typename }' }, { apiKey: other.apiKey });

    expect(http.status).toBe(429);
    const retryAfter = Number(http.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(600);
    expect(http.body.errors).toEqual([
      expect.objectContaining({
        message: expect.stringContaining(`Retry in ${retryAfter} s`),
        extensions: expect.objectContaining({ code: 'RATE_LIMITED', retryAfterSeconds: retryAfter }),
      }),
    ]);
    expect(codes(overWebSocket.errors)).toEqual(['RATE_LIMITED']);
    expect(overWebSocket.errors![0]!.extensions).not.toHaveProperty('http');
    expect(otherKey.status).toBe(200);
  });
});

describe('introspection, GraphiQL and the console, turned off', () => {
  test('an introspection query is refused; field suggestions give no schema away', async () => {
    const introspection = await post({ query: '{ __schema { types { name } } }' });
    const typo = await post({ query: '{ audiencs { edges { node { id } } } }' });

    expect(introspection.body.data).toBeUndefined();
    expect(introspection.body.errors).not.toHaveLength(0);
    for (const error of introspection.body.errors!) expect(error.message).toMatch(/introspection has been disabled/);
    expect(typo.body.errors).toHaveLength(1);
    expect(typo.body.errors![0]!.message).not.toMatch(/did you mean/i);
  });

  test('GET /graphql serves no GraphiQL page', async () => {
    const response = await gateway.app.yoga!.fetch('http://gateway/graphql', { headers: { accept: 'text/html' } });

    expect(response.headers.get('content-type') ?? '').not.toContain('text/html');
    expect(await response.text()).not.toMatch(/graphiql/i);
  });

  test('GET /console, its assets and / answer 404', async () => {
    for (const path of ['/', '/console', '/console/syncs', '/console/assets/index.js']) {
      const response = await gateway.app.yoga!.fetch(`http://gateway${path}`, { headers: { accept: 'text/html' } });
      expect(response.status, path).toBe(404);
    }
  });

  test('all three are on by default', () => {
    expect(loadConfig({})).toMatchObject({ GRAPHIQL: true, INTROSPECTION: true, CONSOLE: true });
  });
});

describe('request ids and masked errors', () => {
  test('every response carries x-request-id; a client’s own id is kept', async () => {
    const generated = await post({ query: '{ __typename }' });
    const given = await post({ query: '{ nope }' }, { headers: { 'x-request-id': 'client-trace.42' } });

    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(given.headers.get('x-request-id')).toBe('client-trace.42');
    expect(given.body.errors![0]!.extensions).toMatchObject({ requestId: 'client-trace.42' });
  });

  // Breaks the database under the gateway: last in the file, and put back afterwards.
  test('a database failure answers a masked error with the request id; the log has the original under the same id', async () => {
    const { apiKey } = await gateway.createWorkspace();
    const logged = vi.spyOn(logger, 'error');
    onTestFinished(() => logged.mockRestore());
    await db().$executeRawUnsafe('ALTER TABLE task RENAME TO task_hidden_by_limits_test');
    let answer: Answer;
    try {
      answer = await post({ query: print(TaskOfLimitsTest), variables: { id: unknownId('Task') } }, { apiKey });
    } finally {
      await db().$executeRawUnsafe('ALTER TABLE task_hidden_by_limits_test RENAME TO task');
    }

    const requestId = answer.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    expect(answer.body.errors).toEqual([
      {
        message: INTERNAL_ERROR_MESSAGE,
        locations: expect.any(Array),
        path: ['task'],
        extensions: { code: 'INTERNAL_SERVER_ERROR', requestId },
      },
    ]);
    expect(JSON.stringify(answer.body)).not.toMatch(/task_hidden|relation|prisma|select|\bat\s|\.ts:/i);
    expect(logged).toHaveBeenCalledWith(
      expect.objectContaining({ requestId, err: expect.objectContaining({ message: expect.stringContaining('task') }) }),
      expect.any(String),
    );
  });

  test('a failure before the operation runs (authentication cannot read its table) is masked the same way', async () => {
    const { apiKey } = await gateway.createWorkspace();
    const logged = vi.spyOn(logger, 'error');
    onTestFinished(() => logged.mockRestore());
    await db().$executeRawUnsafe('ALTER TABLE api_key RENAME TO api_key_hidden_by_limits_test');
    let answer: Answer;
    try {
      answer = await post({ query: '{ __typename }' }, { apiKey });
    } finally {
      await db().$executeRawUnsafe('ALTER TABLE api_key_hidden_by_limits_test RENAME TO api_key');
    }

    const requestId = answer.headers.get('x-request-id');
    expect(answer.status).toBe(500);
    expect(answer.body.errors).toEqual([{ message: INTERNAL_ERROR_MESSAGE, extensions: { code: 'INTERNAL_SERVER_ERROR', requestId } }]);
    expect(JSON.stringify(answer.body)).not.toMatch(/api_key|relation|prisma|select|\bat\s|\.ts:/i);
    expect(logged).toHaveBeenCalledWith(
      expect.objectContaining({ requestId, err: expect.objectContaining({ message: expect.stringContaining('api_key') }) }),
      expect.any(String),
    );
  });
});
