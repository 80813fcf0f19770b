/** How calls to a platform or a customer endpoint are retried. */
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
