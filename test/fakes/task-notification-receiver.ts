import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { failureQueue, isRecord, parseJson, readBody, serveFake } from './fake-server.js';

/** A receiver of task notifications (a task's notifyUrl): it accepts only POSTs of JSON holding
 * exactly the task's id, kind, status, result and error, and keeps them. Given a signing secret, it
 * also requires a current `x-timestamp` and a matching `x-signature` (401 otherwise), as a careful
 * receiver would. */

export interface ReceivedNotification {
  id: string;
  kind: string;
  status: string;
  result: unknown;
  error: string | null;
}

export interface FakeNotificationReceiver {
  url: string;
  notifications: ReceivedNotification[];
  /** Answers the next `count` requests with 503 without keeping them. */
  failNext(count?: number): void;
  close(): Promise<void>;
}

const PATH = '/hooks/tasks';

/** How old a signed notification's timestamp may be. */
const MAX_SIGNATURE_AGE_SECONDS = 300;

function signatureProblem(req: IncomingMessage, raw: string, secret: string): string | null {
  const timestamp = req.headers['x-timestamp'];
  const signature = req.headers['x-signature'];
  if (typeof timestamp !== 'string' || typeof signature !== 'string') return 'x-timestamp and x-signature are required';
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > MAX_SIGNATURE_AGE_SECONDS) return 'stale or bad timestamp';
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected) ? null : 'bad signature';
}

export async function startFakeNotificationReceiver(
  options: { signingSecret?: string } = {},
): Promise<FakeNotificationReceiver> {
  const notifications: ReceivedNotification[] = [];
  const failures = failureQueue<'unavailable', IncomingMessage>();

  function refusal(req: IncomingMessage, body: unknown): string | null {
    if (req.method !== 'POST') return 'POST only';
    if (new URL(req.url ?? '/', 'http://fake').pathname !== PATH) return 'no such hook';
    if (req.headers['content-type'] !== 'application/json') return 'content-type must be application/json';
    if (!isRecord(body)) return 'the body must be a JSON object';
    const keys = Object.keys(body).sort().join(',');
    if (keys !== 'error,id,kind,result,status') return `unexpected keys ${keys}`;
    if (typeof body['id'] !== 'string' || typeof body['kind'] !== 'string') return 'id and kind must be strings';
    if (body['status'] !== 'COMPLETED' && body['status'] !== 'FAILED') return 'status must be COMPLETED or FAILED';
    return null;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const body = parseJson(raw);
    if (failures.take(req)) {
      res.writeHead(503).end('try later');
      return;
    }
    const unsigned = options.signingSecret ? signatureProblem(req, raw, options.signingSecret) : null;
    if (unsigned) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end(unsigned);
      return;
    }
    const problem = refusal(req, body);
    if (problem) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(problem);
      return;
    }
    notifications.push(body as unknown as ReceivedNotification);
    res.writeHead(204).end();
  }

  const server = await serveFake('fake task notification receiver', handle);
  return {
    url: `${server.baseUrl}${PATH}`,
    notifications,
    failNext: (count = 1) => failures.add('unavailable', count),
    close: server.close,
  };
}
