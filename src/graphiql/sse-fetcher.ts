import type { Fetcher, FetcherParams, FetcherOpts } from '@graphiql/toolkit';
import type { ExecutionResult } from 'graphql';

/**
 * Runs subscriptions over server-sent events (POST with `Accept: text/event-stream`, graphql-yoga's
 * "distinct connections" mode), so that the Headers tab (the API key) goes with them as with every other
 * operation; a WebSocket could only carry it in its connection params. Queries and mutations go to `http`.
 */
export function withSubscriptionsOverSSE(endpoint: string, http: Fetcher): Fetcher {
  return (params, opts) => (isSubscription(params) ? subscribe(endpoint, params, opts) : http(params, opts));
}

function isSubscription({ query, operationName }: FetcherParams): boolean {
  const operations = [...query.matchAll(/(?:^|[\s}])(query|mutation|subscription)\s*([_A-Za-z][_0-9A-Za-z]*)?/g)];
  const chosen = operationName ? operations.find((match) => match[2] === operationName) : operations[0];
  return chosen?.[1] === 'subscription';
}

async function* subscribe(endpoint: string, params: FetcherParams, opts?: FetcherOpts): AsyncGenerator<ExecutionResult> {
  const abort = new AbortController();
  try {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { ...opts?.headers, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(params),
      signal: abort.signal,
    });
    if (!response.ok || !response.body || !response.headers.get('content-type')?.includes('text/event-stream')) {
      yield (await response.json()) as ExecutionResult;
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = event.split('\n');
        if (lines.some((line) => line === 'event: complete')) return;
        const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\n');
        if (data) yield JSON.parse(data) as ExecutionResult;
      }
    }
  } finally {
    // GraphiQL stops a subscription by returning the iterator: the request ends with it.
    abort.abort();
  }
}
