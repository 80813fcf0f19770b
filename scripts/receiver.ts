// `npm run receiver`: a webhook receiver to try the gateway with, no ad account needed (README, "A first
// sync"). It listens on http://127.0.0.1:8080/hooks (RECEIVER_PORT to change the port), checks each request's
// signature and timestamp as the README tells integrators to (src/destinations/webhook/signature.ts signs
// them), prints what it receives, and answers 200, or 401 when the signature does not match.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

export const RECEIVER_PATH = '/hooks';
export const RECEIVER_DEFAULT_PORT = 8080;
/** The secret the README's first sync gives its destination; RECEIVER_SIGNING_SECRET replaces it. */
export const RECEIVER_DEFAULT_SECRET = 'try-the-gateway-with-this-signing-secret';
const MAX_AGE_SECONDS = 300;
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface ReceivedDelivery {
  /** `audience.members.added`, `audience.members.removed` or `ping`. */
  type: string;
  signatureValid: boolean;
  members: Record<string, string>[];
}

export interface Receiver {
  url: string;
  /** Every request received, oldest first. */
  received: ReceivedDelivery[];
  stop(): Promise<void>;
}

function isSignedByGateway(rawBody: Buffer, timestamp: string, signature: string, secret: string): boolean {
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > MAX_AGE_SECONDS) return false;
  const expected = createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest();
  const given = Buffer.from(signature.replace(/^sha256=/, ''), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function readBody(request: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

interface Delivery {
  type?: string;
  audience?: { id?: string; name?: string | null };
  batch?: { sequence?: number; last?: boolean };
  members?: { identifiers?: Record<string, string> }[];
}

/** What one request was, in a line or a few, for the terminal. */
function describe(delivery: Delivery, signatureValid: boolean): string {
  const check = signatureValid ? 'signature OK' : 'signature INVALID (answered 401)';
  if (delivery.type === 'ping') return `ping (testDestination) - ${check}`;
  const members = delivery.members ?? [];
  const batch = delivery.batch ? `, batch ${delivery.batch.sequence}${delivery.batch.last ? ' (last)' : ''}` : '';
  const lines = members.slice(0, 10).map((member) => `    ${JSON.stringify(member.identifiers ?? {})}`);
  if (members.length > 10) lines.push(`    ... and ${members.length - 10} more`);
  return [
    `${delivery.type}: ${members.length} member(s) of audience "${delivery.audience?.name ?? delivery.audience?.id}"${batch} - ${check}`,
    ...lines,
  ].join('\n');
}

export async function startReceiver(
  options: { port?: number; signingSecret?: string; log?: (line: string) => void } = {},
): Promise<Receiver> {
  const secret = options.signingSecret ?? RECEIVER_DEFAULT_SECRET;
  const log = options.log ?? (() => {});
  const received: ReceivedDelivery[] = [];
  const server = createServer((request, response) => {
    void (async () => {
      if (request.method !== 'POST' || request.url !== RECEIVER_PATH) {
        response.writeHead(404).end();
        return;
      }
      const body = await readBody(request);
      if (!body) {
        response.writeHead(413).end();
        return;
      }
      const signatureValid = isSignedByGateway(
        body,
        String(request.headers['x-timestamp'] ?? ''),
        String(request.headers['x-signature'] ?? ''),
        secret,
      );
      let delivery: Delivery = {};
      try {
        delivery = JSON.parse(body.toString('utf8')) as Delivery;
      } catch {
        // Described as a delivery of no type below.
      }
      received.push({
        type: String(delivery.type),
        signatureValid,
        members: (delivery.members ?? []).map((member) => member.identifiers ?? {}),
      });
      log(`${new Date().toISOString()} ${describe(delivery, signatureValid)}`);
      response.writeHead(signatureValid ? 200 : 401, { 'content-type': 'application/json' }).end('{}');
    })().catch((error: unknown) => {
      log(`could not handle a request: ${String(error)}`);
      if (!response.headersSent) response.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? RECEIVER_DEFAULT_PORT, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${RECEIVER_PATH}`,
    received,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.RECEIVER_PORT ?? RECEIVER_DEFAULT_PORT);
  const signingSecret = process.env.RECEIVER_SIGNING_SECRET ?? RECEIVER_DEFAULT_SECRET;
  const receiver = await startReceiver({ port, signingSecret, log: (line) => console.log(line) }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EADDRINUSE') throw error;
    console.error(`Port ${port} is already in use: set RECEIVER_PORT to a free port (and use it in the destination's url)`);
    process.exit(1);
  });
  console.log(`Receiving webhooks on ${receiver.url}, checking signatures made with the signing secret "${signingSecret}".`);
  console.log('Stop with Ctrl-C.');
}
