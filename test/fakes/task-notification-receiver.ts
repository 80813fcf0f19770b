import type { IncomingMessage, ServerResponse } from 'node:http';
import { failureQueue, isRecord, parseJson, readBody, serveFake } from './fake-server.js';

/** A receiver of task notifications (a task's notifyUrl): it accepts only POSTs of JSON holding
 * exactly the task's id, kind, status, result and error, and keeps them. */

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

export async function startFakeNotificationReceiver(): Promise<FakeNotificationReceiver> {
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
    const body = parseJson(await readBody(req));
    if (failures.take(req)) {
      res.writeHead(503).end('try later');
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
