import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import { DestinationError } from '../destinations/destination.js';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff delay; doubles on each retry, with jitter, up to `maxBackoffMs`. */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** A platform asking for a longer pause than this fails the run instead (its message says how long). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retries: 6,
  minBackoffMs: 1_000,
  maxBackoffMs: 60_000,
  maxRetryAfterMs: 15 * 60_000,
};

/**
 * Calls a platform, retrying what the platform reported as passing — throttling, 5xx, timeouts,
 * resets — with jittered exponential backoff, and waiting at least as long as the platform asked.
 * Credential, permission and validation errors are thrown at once. `onWait` hears of every pause.
 */
export async function callWithRetries<T>(
  call: () => Promise<T>,
  options: {
    policy?: RetryPolicy;
    /** Hears of each retryable failure before the pause. */
    onRetry?: (error: DestinationError) => unknown;
    /** Hears how long each pause lasted, before the next attempt. */
    onWaited?: (ms: number) => unknown;
  } = {},
): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY;
  let failedAt = 0;
  return pRetry(
    async () => {
      if (failedAt > 0) await options.onWaited?.(Date.now() - failedAt);
      return call();
    },
    {
      retries: policy.retries,
      factor: 2,
      minTimeout: policy.minBackoffMs,
      maxTimeout: policy.maxBackoffMs,
      randomize: true,
      shouldRetry: ({ error }) =>
        error instanceof DestinationError &&
        error.details.retryable &&
        (error.details.retryAfterMs ?? 0) <= policy.maxRetryAfterMs,
      onFailedAttempt: async ({ error, retriesLeft }) => {
        failedAt = Date.now();
        if (!(error instanceof DestinationError) || !error.details.retryable || retriesLeft === 0) return;
        const asked = error.details.retryAfterMs ?? 0;
        if (asked > policy.maxRetryAfterMs) return;
        await options.onRetry?.(error);
        // p-retry adds its own backoff after this; together they honour the platform's delay.
        if (asked > 0) await sleep(asked);
      },
    },
  );
}
