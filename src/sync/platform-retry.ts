import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import { DestinationError } from '../destinations/destination.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../infra/retry-policy.js';

/**
 * Calls a platform, retrying what the platform reported as passing — throttling, 5xx, timeouts,
 * resets — with jittered exponential backoff on top of the pause the platform asked for. Credential,
 * permission and validation errors are thrown at once. The pause is computed here (p-retry's own
 * timeouts are zero), so that `onRetry` can say how long it will last.
 */
export async function callWithRetries<T>(
  call: () => Promise<T>,
  options: {
    policy?: RetryPolicy;
    /** Hears of each retryable failure, and how long the pause before the next attempt lasts. */
    onRetry?: (error: DestinationError, waitMs: number) => unknown;
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
      minTimeout: 0,
      maxTimeout: 0,
      shouldRetry: ({ error }) =>
        error instanceof DestinationError &&
        error.details.retryable &&
        (error.details.retryAfterMs ?? 0) <= policy.maxRetryAfterMs,
      onFailedAttempt: async ({ error, retriesLeft, retriesConsumed }) => {
        failedAt = Date.now();
        if (!(error instanceof DestinationError) || !error.details.retryable || retriesLeft === 0) return;
        const asked = error.details.retryAfterMs ?? 0;
        if (asked > policy.maxRetryAfterMs) return;
        const waitMs = asked + backoffMs(policy, retriesConsumed);
        await options.onRetry?.(error, waitMs);
        await sleep(waitMs);
      },
    },
  );
}

/** p-retry's formula (factor 2, randomized): the first backoff is 1–2 × minBackoffMs, then doubling, capped. */
function backoffMs(policy: RetryPolicy, retriesConsumed: number): number {
  return Math.min(policy.maxBackoffMs, Math.round((1 + Math.random()) * policy.minBackoffMs * 2 ** retriesConsumed));
}
