import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import { DestinationError } from '../destinations/destination.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../infra/retry-policy.js';

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
