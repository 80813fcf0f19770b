import { randomUUID } from 'node:crypto';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { isAsyncIterable, mapAsyncIterator, maskError, type Plugin } from 'graphql-yoga';
import { logger } from '../infra/logger.js';

/** What a client reads instead of an unexpected error's message; the details go to the logs. */
export const INTERNAL_ERROR_MESSAGE = 'Internal server error: the gateway logged the details under this request id.';

/** A client's own `x-request-id` is kept when it is a plain token (so that it cannot forge log lines). */
const CLIENT_REQUEST_ID = /^[\w.:-]{1,128}$/;
const requestIds = new WeakMap<Request, string>();

/** The id of an HTTP request: the one its client sent in `x-request-id`, or a new UUID. The same for
 * the request's context, error extensions, response header and log lines. */
export function requestIdOf(request: Request): string {
  let id = requestIds.get(request);
  if (!id) {
    const sent = request.headers.get('x-request-id');
    id = sent && CLIENT_REQUEST_ID.test(sent) ? sent : randomUUID();
    requestIds.set(request, id);
  }
  return id;
}

/**
 * For yoga's `maskedErrors`: an error that is not a GraphQLError of ours (a database failure, a bug)
 * reaches the client as INTERNAL_SERVER_ERROR with a fixed message and no stack, SQL or
 * secret; the masked error keeps the original (never serialized) so that `withRequestId` can log it.
 */
export function maskInternalError(error: unknown, message: string): Error {
  const masked = maskError(error, message, false);
  if (masked === error || !(masked instanceof GraphQLError)) return masked;
  const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
  return new GraphQLError(masked.message, {
    nodes: masked.nodes,
    source: masked.source,
    positions: masked.positions,
    path: masked.path,
    originalError: original instanceof Error ? original : new Error(String(original)),
    extensions: masked.extensions,
  });
}

const isSpecError = (http: unknown): http is { spec: true } => (http as { spec?: unknown } | undefined)?.spec === true;

function errorWithRequestId(error: GraphQLError, requestId: string, transport: 'http' | 'websocket'): GraphQLError {
  if (error.extensions.code === 'INTERNAL_SERVER_ERROR' && error.originalError) {
    logger.error({ err: error.originalError, requestId, path: error.path }, 'Internal error in a GraphQL operation');
  }
  // `originalError` is yoga's copy of what failed (a malformed body's parse error quotes the body): never
  // sent. Yoga answers a request error 200 to JSON clients unless it carries one; unmarked, it keeps its 400.
  const { http: httpExtension, unexpected, originalError, ...extensions } = error.extensions;
  const http = originalError && isSpecError(httpExtension) ? { ...httpExtension, spec: false } : httpExtension;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    // yoga reads (then drops) `http` and `unexpected` from HTTP responses; graphql-ws would send them.
    extensions: { ...extensions, ...(transport === 'http' ? { http, unexpected } : {}), requestId },
  });
}

/** Adds `extensions.requestId` to every error of a result, and logs the original of each masked one. */
export function withRequestId(result: ExecutionResult, requestId: string, transport: 'http' | 'websocket'): ExecutionResult {
  if (!result.errors?.length) return result;
  return { ...result, errors: result.errors.map((error) => errorWithRequestId(error, requestId, transport)) };
}

type YogaResult = ExecutionResult | ExecutionResult[] | AsyncIterable<ExecutionResult>;

/** Every HTTP and SSE response carries `x-request-id`, and each error in it `extensions.requestId`. */
export function useRequestIds(): Plugin {
  return {
    onResultProcess({ request, result, setResult }) {
      const requestId = requestIdOf(request);
      const tag = (value: ExecutionResult) => withRequestId(value, requestId, 'http');
      const results = result as YogaResult;
      if (isAsyncIterable(results)) setResult(mapAsyncIterator(results, tag));
      else setResult(Array.isArray(results) ? results.map(tag) : tag(results));
    },
    onResponse({ request, response }) {
      response.headers.set('x-request-id', requestIdOf(request));
    },
  };
}
