import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * A subscription does not send a result identical to the one it sent last: a change the client did
 * not select (a lease renewed, a counter it does not read) costs it nothing. Applies to graphql-ws
 * and SSE alike, since both run through yoga's envelope.
 */
export function useDistinctSubscriptionResults(): Plugin {
  return {
    onSubscribe: () => ({
      onSubscribeResult: ({ result, setResult }) => {
        if (Symbol.asyncIterator in result) setResult(distinctResults(result));
      },
    }),
  };
}

/** Passes `return()` and `throw()` straight through: a wrapper that waited for the next result
 * would keep a quiet subscription open after its client left. */
function distinctResults(source: AsyncIterable<ExecutionResult>): AsyncIterableIterator<ExecutionResult> {
  const iterator = source[Symbol.asyncIterator]();
  let previous: string | undefined;
  return {
    async next() {
      for (;;) {
        const step = await iterator.next();
        if (step.done) return step;
        const text = JSON.stringify(step.value);
        if (text !== previous) {
          previous = text;
          return step;
        }
      }
    },
    return: (value?: unknown) => iterator.return?.(value) ?? Promise.resolve({ done: true, value: undefined }),
    throw: (error?: unknown) => iterator.throw?.(error) ?? Promise.reject(error),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
