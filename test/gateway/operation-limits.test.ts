import { randomUUID } from 'node:crypto';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { createSchema, createYoga, type Plugin } from 'graphql-yoga';
import { expect, test } from 'vitest';
import { openRateLimiter, operationLimitPlugins } from '../../src/gateway/operation-limits.js';
import { loadConfig } from '../../src/infra/config.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

test('with REDIS_URL, gateways share one count per API key', async () => {
  const settings = { REDIS_URL, RATE_LIMIT_POINTS: 3, RATE_LIMIT_DURATION_SECONDS: 60 };
  const first = (await openRateLimiter(settings))!;
  const second = (await openRateLimiter(settings))!;
  const apiKeyId = randomUUID();
  try {
    await first.limiter.consume(apiKeyId);
    await second.limiter.consume(apiKeyId);
    await first.limiter.consume(apiKeyId);

    const refused = await second.limiter.consume(apiKeyId).catch((rejection: unknown) => rejection);

    expect(refused).toBeInstanceOf(RateLimiterRes);
    expect((refused as RateLimiterRes).msBeforeNext).toBeGreaterThan(0);
    expect((refused as RateLimiterRes).msBeforeNext).toBeLessThanOrEqual(60_000);
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

test('RATE_LIMIT_POINTS=0 turns rate limiting off', async () => {
  expect(await openRateLimiter({ RATE_LIMIT_POINTS: 0, RATE_LIMIT_DURATION_SECONDS: 60, REDIS_URL: undefined })).toBeNull();
});

test('the nesting and NUL checks of variables look into JSON objects and lists only, never into an uploaded file', async () => {
  // A multipart upload puts a File object among the variables; walking its bytes one by one took
  // about 10 s per megabyte. This stand-in counts how often anything reads into it.
  let reads = 0;
  const upload = new (class Upload {})();
  Object.defineProperty(upload, 'bytes', {
    enumerable: true,
    get: () => {
      reads++;
      return 'a\u0000b';
    },
  });
  const injectUpload: Plugin = {
    onParams({ params, setParams }) {
      setParams({ ...params, variables: { ...params.variables, file: upload } });
    },
  };
  const yoga = createYoga({
    schema: createSchema({
      typeDefs: 'scalar File type Query { ok: Boolean } type Mutation { upload(file: File!, note: String): Boolean }',
      resolvers: { Mutation: { upload: () => true } },
    }),
    plugins: [injectUpload, ...operationLimitPlugins(loadConfig({}))],
    logging: false,
  });
  const post = async (variables: Record<string, unknown>) => {
    const response = await yoga.fetch('http://gateway/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation ($file: File!, $note: String) { upload(file: $file, note: $note) }', variables }),
    });
    return (await response.json()) as { data?: unknown; errors?: { message: string }[] };
  };

  expect(await post({ file: null })).toEqual({ data: { upload: true } });
  expect(reads).toBe(0);
  // The same checks still refuse a NUL in a JSON variable.
  const refused = await post({ file: null, note: 'a\u0000b' });
  expect(refused.errors?.[0]?.message).toMatch(/^Variable note contains the NUL character/);
});
