import { randomUUID } from 'node:crypto';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { expect, test } from 'vitest';
import { openRateLimiter } from '../../src/gateway/operation-limits.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

test('with REDIS_URL, gateways share one count per API key', async () => {
  const settings = { REDIS_URL, RATE_LIMIT_POINTS: 3, RATE_LIMIT_DURATION_SECONDS: 60 };
  const [first, second] = [openRateLimiter(settings)!, openRateLimiter(settings)!];
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

test('RATE_LIMIT_POINTS=0 turns rate limiting off', () => {
  expect(openRateLimiter({ RATE_LIMIT_POINTS: 0, RATE_LIMIT_DURATION_SECONDS: 60, REDIS_URL: undefined })).toBeNull();
});
