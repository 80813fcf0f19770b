import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type FormattedExecutionResult } from 'graphql';
import { expect } from 'vitest';
import type { TestGateway } from './gateway.js';

/** A GraphQL subscription read from a server-sent event stream. Iterating yields the results of
 * its `next` events; breaking out of the loop, or `close()`, ends the HTTP request. */
export interface EventStream<Result> extends AsyncIterable<FormattedExecutionResult<Result>> {
  close(reason?: unknown): void;
}

interface Frame {
  event?: string;
  data: string[];
  comment: boolean;
}

function parseFrame(block: string): Frame {
  const frame: Frame = { data: [], comment: false };
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) frame.comment = true;
    else if (line.startsWith('event:')) frame.event = line.slice(6).trim();
    else if (line.startsWith('data:')) frame.data.push(line.slice(5).replace(/^ /, ''));
  }
  return frame;
}

async function* readFrames(body: ReadableStream<Uint8Array>): AsyncGenerator<Frame> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    buffer += decoder.decode(chunk.value, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      yield parseFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

/**
 * Subscribes over server-sent events on the gateway's real port (POST with `Accept: text/event-stream`),
 * and resolves once the server has set the subscription up. Yoga answers with the headers and a `:`
 * ping as soon as the operation is executing, then pulls its first result: that pull runs the
 * subscription's source (which listens on the event bus) in the server's microtasks, before this
 * process can read the ping off the socket — so once the ping is here, no later event is missed.
 */
export async function subscribeOverSSE<Result, Variables>(
  gateway: TestGateway,
  document: TypedDocumentNode<Result, Variables>,
  variables: Variables,
  options: { apiKey?: string | null } = {},
): Promise<EventStream<Result>> {
  const apiKey = options.apiKey === undefined ? gateway.apiKey : options.apiKey;
  const abort = new AbortController();
  const response = await fetch(gateway.app.url, {
    method: 'POST',
    headers: {
      accept: 'text/event-stream',
      'content-type': 'application/json',
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
    },
    body: JSON.stringify({ query: print(document), variables }),
    signal: abort.signal,
  });
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const frames = readFrames(response.body!);
  const first = await frames.next();
  expect(first.value, 'yoga opens the stream with a ping').toMatchObject({ comment: true, data: [] });

  async function* results(): AsyncGenerator<FormattedExecutionResult<Result>> {
    try {
      for await (const frame of frames) {
        if (frame.event === 'complete') return;
        if (frame.event === 'next') yield JSON.parse(frame.data.join('\n')) as FormattedExecutionResult<Result>;
      }
    } finally {
      abort.abort();
    }
  }
  const iterator = results();
  return {
    [Symbol.asyncIterator]: () => iterator,
    close: (reason) => abort.abort(reason),
  };
}

/** The data of a stream's events up to the first one `isLast` accepts (included), failing on an
 * event with errors or when `timeoutMs` passes first. The stream is closed afterwards. */
export async function readUntil<Result>(
  stream: EventStream<Result>,
  isLast: (data: Result) => boolean,
  timeoutMs = 60_000,
): Promise<Result[]> {
  const seen: Result[] = [];
  const timer = setTimeout(() => stream.close(new Error(`no final event within ${timeoutMs} ms`)), timeoutMs);
  try {
    for await (const { data, errors } of stream) {
      expect(errors).toBeUndefined();
      seen.push(data!);
      if (isLast(data!)) return seen;
    }
    throw new Error('the stream ended before its final event');
  } catch (error) {
    throw new Error(`${String(error)}; events so far: ${JSON.stringify(seen)}`, { cause: error });
  } finally {
    clearTimeout(timer);
    stream.close();
  }
}
