import { encodeGlobalID } from '@pothos/plugin-relay';
import pRetry, { AbortError } from 'p-retry';
import { signatureHeaders } from '../destinations/webhook/signature.js';
import type { Task } from '../generated/prisma/client.js';
import { isForbiddenAddress, outboundFetch } from '../infra/address-policy.js';
import type { RetryPolicy } from '../infra/retry-policy.js';

const REQUEST_TIMEOUT_MS = 10_000;

/** What became of calling a task's notifyUrl, kept in the task's result. */
export interface TaskNotification {
  delivered: boolean;
  attempts: number;
  /** The HTTP status of the last answer, when there was one. */
  status?: number;
  /** Why it was not delivered. */
  error?: string;
}

/** The body POSTed to notifyUrl when a task ends. */
function taskNotificationBody(task: Pick<Task, 'id' | 'kind' | 'status' | 'result' | 'error'>) {
  return {
    id: encodeGlobalID('Task', task.id),
    kind: task.kind,
    status: task.status,
    result: task.result ?? null,
    error: task.error ?? null,
  };
}

/**
 * POSTs the ended task as JSON to `url` (signed when there is a secret), under the address policy (checked again on
 * each connection, DNS answers included; redirects are not followed). Network errors, 408, 429 and 5xx are retried with
 * backoff; any other answer outside 2xx is final. Never throws: the outcome is returned.
 */
export async function notifyTaskEnd(
  task: Task,
  target: { url: string; secret: string | null },
  retry: RetryPolicy,
): Promise<TaskNotification> {
  const { url, secret } = target;
  const body = JSON.stringify(taskNotificationBody(task));
  let attempts = 0;
  let status: number | undefined;
  try {
    await pRetry(
      async () => {
        attempts++;
        status = undefined;
        let response: Response;
        try {
          response = await outboundFetch(url, {
            method: 'POST',
            // Signed afresh on each attempt, so a retry carries a current timestamp.
            headers: { 'content-type': 'application/json', ...(secret ? signatureHeaders(secret, body) : {}) },
            body,
            redirect: 'manual',
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
        } catch (error) {
          if (isForbiddenAddress(error)) throw new AbortError('the host is or resolves to a private, loopback or link-local address');
          throw error;
        }
        await response.body?.cancel();
        status = response.status;
        if (response.ok) return;
        const message = `answered HTTP ${response.status}`;
        if (response.status === 408 || response.status === 429 || response.status >= 500) throw new Error(message);
        throw new AbortError(message);
      },
      {
        retries: retry.retries,
        factor: 2,
        minTimeout: retry.minBackoffMs,
        maxTimeout: retry.maxBackoffMs,
        randomize: true,
      },
    );
    return { delivered: true, attempts, status };
  } catch (error) {
    const reason = error instanceof Error && /^answered HTTP|^the host/.test(error.message) ? error.message : 'could not be reached';
    return { delivered: false, attempts, ...(status === undefined ? {} : { status }), error: reason };
  }
}
