import type { ServerResponse } from 'node:http';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { requestsShed, requestsWaiting } from '../infra/metrics.js';

export interface AdmissionLimits {
  /** Operations handled at once; later ones wait their turn, in arrival order. */
  concurrency: number;
  /** How long an operation may wait for its turn before it is answered 503. */
  maxWaitMs: number;
}

/** Operations waiting beyond this many are answered 503 at once, whatever their wait. */
const MAX_WAITING = 2_000;
const RETRY_AFTER_SECONDS = 1;

/** Takes a turn: resolves with the function that ends it, or null when the operation is shed. */
type Acquire = (response: ServerResponse | undefined) => Promise<(() => void) | null>;

/** At most `concurrency` turns at once; the others wait in arrival order, `maxWaitMs` at most. */
export function createAdmission(limits: AdmissionLimits): Acquire {
  let running = 0;
  const waiting: (() => void)[] = [];
  const turn = () => {
    running++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      running--;
      waiting.shift()?.();
    };
  };
  return (response) => {
    if (running < limits.concurrency) return Promise.resolve(turn());
    if (waiting.length >= MAX_WAITING) return Promise.resolve(null);
    return new Promise((resolve) => {
      const leave = (admitted: boolean) => {
        const index = waiting.indexOf(admit);
        if (index >= 0) waiting.splice(index, 1);
        clearTimeout(timer);
        response?.off('close', gaveUp);
        requestsWaiting.dec();
        resolve(admitted ? turn() : null);
      };
      const admit = () => leave(true);
      const gaveUp = () => leave(false);
      const timer = setTimeout(gaveUp, limits.maxWaitMs);
      // A client that disconnects while waiting leaves the line.
      response?.once('close', gaveUp);
      waiting.push(admit);
      requestsWaiting.inc();
    });
  };
}

/**
 * Admission control for GraphQL operations over HTTP, once their body is read. The gateway's work is
 * CPU-bound in one thread: letting every operation in at once only makes each one slower, and past
 * capacity they would queue for seconds. A few turns are enough to overlap database round trips, and
 * each turn more lengthens every operation in flight. At most `concurrency` run at once; one that waits longer than
 * `maxWaitMs` for its turn (or finds MAX_WAITING ahead of it) is answered 503 with `Retry-After` and
 * OVERLOADED, so that clients back off instead of piling up. Its turn ends with its response (or when
 * the client leaves). Server-sent event streams (subscriptions) are not counted: they stay open for as
 * long as they follow something.
 */
export function useAdmission(limits: AdmissionLimits): Plugin {
  const acquire = createAdmission(limits);
  const turns = new WeakMap<Request, () => void>();
  return {
    async onParams({ request, context, setResult }) {
      if ((request.headers.get('accept') ?? '').includes('text/event-stream')) return;
      // Over Node's HTTP server, yoga's server context carries the response (`res`); yoga.fetch has none.
      const response = (context as { res?: ServerResponse }).res;
      const end = await acquire(response);
      if (!end) {
        requestsShed.inc();
        setResult({ errors: [overloaded()] });
        return;
      }
      turns.set(request, end);
      response?.once('close', end);
    },
    onResponse({ request }) {
      turns.get(request)?.();
    },
  };
}

function overloaded(): GraphQLError {
  return new GraphQLError(`The gateway is at capacity: retry in ${RETRY_AFTER_SECONDS} s.`, {
    extensions: {
      code: 'OVERLOADED',
      retryAfterSeconds: RETRY_AFTER_SECONDS,
      http: { status: 503, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } },
    },
  });
}
