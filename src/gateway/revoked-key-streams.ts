import { GraphQLError, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { isKnownRevoked } from '../identity/api-keys.js';
import { eventBus } from '../infra/pubsub.js';
import type { Context } from '../schema/context.js';

const REVOKED: unique symbol = Symbol('revoked');

function revokedResult(): ExecutionResult {
  return { errors: [new GraphQLError('This API key was revoked', { extensions: { code: 'FORBIDDEN' } })] };
}

/**
 * A subscription's results until its API key is revoked, on this gateway or on another (the event comes
 * through the event bus): then one FORBIDDEN error, and the stream ends. Written by hand rather than as
 * an async generator, whose return() would wait for the source's next event: a client that goes away
 * ends its listeners at once.
 */
function untilRevoked(source: AsyncIterable<ExecutionResult>, apiKeyId: string): AsyncIterableIterator<ExecutionResult> {
  const iterator = source[Symbol.asyncIterator]();
  const revocations = eventBus().subscribe('apiKey:revoked');
  const revoked = (async (): Promise<typeof REVOKED> => {
    for await (const event of revocations) if (event.apiKeyId === apiKeyId) return REVOKED;
    return new Promise<never>(() => undefined);
  })();
  let finished = false;
  const finish = async () => {
    if (finished) return;
    finished = true;
    await Promise.all([revocations.return?.(), iterator.return?.()]);
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      if (finished) return { done: true, value: undefined };
      // Revoked between authentication and this subscription's start: no event will come for it.
      const next = isKnownRevoked(apiKeyId) ? REVOKED : await Promise.race([iterator.next(), revoked]);
      if (next === REVOKED) {
        await finish();
        return { done: false, value: revokedResult() };
      }
      if (next.done) await finish();
      return next;
    },
    async return() {
      await finish();
      return { done: true, value: undefined };
    },
  };
}

/**
 * Ends the subscriptions of a revoked API key on every transport (SSE and graphql-ws alike; the
 * WebSockets of the key are closed besides, by trackApiKeySockets). HTTP queries and mutations need
 * nothing more: the key's next request is refused.
 */
export function useRevokedKeyStreams(): Plugin<Context> {
  return {
    onSubscribe({ args }) {
      const apiKeyId = args.contextValue.viewer?.apiKeyId;
      if (!apiKeyId) return;
      return {
        onSubscribeResult({ result, setResult }) {
          if (isAsyncIterable(result)) setResult(untilRevoked(result, apiKeyId));
        },
      };
    },
  };
}
