import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// What every fake platform server does the same way: serving, reading bodies and JSON, canned failures.

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The JSON of a body, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The whole body of a request, as UTF-8 text. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface FakeServer {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  baseUrl: string;
  /** Drops open connections and stops listening; calling it again waits for the same close. */
  close(): Promise<void>;
}

/** Serves `handle` on a free local port. A handler that throws answers 500 naming the fake, so a
 * bug in the fake shows in the connector's error rather than as a hung request. */
export async function serveFake(
  name: string,
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Promise<FakeServer> {
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${name} crashed: ${String(error)}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      });
      return closing;
    },
  };
}

/** The canned failures a fake answers with, in order, before looking at a request. */
export function failureQueue<Kind, Request>() {
  const pending: { kind: Kind; when?: (request: Request) => boolean }[] = [];
  return {
    /** Queues `count` failures of `kind`, each for the next request `when` accepts (any, if not given). */
    add(kind: Kind, count = 1, when?: (request: Request) => boolean): void {
      for (let i = 0; i < count; i++) pending.push({ kind, when });
    },
    /** Removes and returns the first queued failure for this request (among the kinds `applies`
     * accepts), or undefined when there is none. */
    take(request: Request, applies: (kind: Kind) => boolean = () => true): Kind | undefined {
      const index = pending.findIndex((failure) => applies(failure.kind) && (failure.when?.(request) ?? true));
      return index === -1 ? undefined : pending.splice(index, 1)[0]!.kind;
    },
  };
}
