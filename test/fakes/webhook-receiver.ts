import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { failureQueue, isRecord, parseJson, readBody, serveFake } from './fake-server.js';

/** A receiver written the way the README tells integrators to: it verifies the signature and the
 * timestamp for real, applies each delivery once, and keeps the members it holds. */

/** Canned answers, given (in order) to signed requests instead of processing them — except
 * `lost-reply`, which processes the delivery and then answers 502 as if the reply got lost, and
 * `drop-after-apply`, which processes it and then drops the connection without answering (applied,
 * but the sender cannot know). */
export type FakeWebhookFailure =
  | 'throttle'
  | 'server-error'
  | 'lost-reply'
  | 'drop-after-apply'
  | 'forbidden'
  | 'bad-request'
  | 'redirect'
  | 'huge-reply'
  | 'bad-rejections';

export type Identifiers = Record<string, string>;

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawBody: string;
  /** The parsed JSON body, or undefined when it is not JSON. */
  body: unknown;
  /** The status the receiver answered. */
  status: number;
}

export interface AppliedDelivery {
  id: string;
  type: 'audience.members.added' | 'audience.members.removed';
  audienceId: string;
  audienceName: string | null;
  session: string;
  sequence: number;
  last: boolean;
  members: Identifiers[];
  /** Indexes of the members the receiver rejected. */
  rejected: number[];
}

export interface FakeWebhookReceiver {
  url: string;
  /** The secret signatures are checked against; change it to make the gateway's signatures fail. */
  signingSecret: string;
  requests: ReceivedRequest[];
  /** Deliveries applied, once each, in order. */
  deliveries: AppliedDelivery[];
  /** Ids of deliveries received again after being applied (answered as before, not re-applied). */
  duplicates: string[];
  /** What each audience holds, by audience id. */
  audiences: Map<string, Identifiers[]>;
  /** The values of `field` held across all audiences, sorted. */
  held(field: string): string[];
  /** Rejects the members for which `reason` returns a reason, in every later delivery. */
  rejectMembers(reason: (identifiers: Identifiers) => string | null): void;
  failNext(kind: FakeWebhookFailure, count?: number): void;
  close(): Promise<void>;
}

export const WEBHOOK_PATH = '/hooks/audiences';
/** Seconds the `throttle` failure asks to wait. */
export const THROTTLE_RETRY_AFTER_SECONDS = 1;
const TOLERANCE_SECONDS = 300;
const MAX_MEMBERS = 10_000;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const IDENTIFIER_RULES: Record<string, { pattern: RegExp; what: string }> = {
  EMAIL_SHA256: { pattern: SHA256_HEX, what: 'a lowercase SHA-256 hex digest' },
  PHONE_SHA256: { pattern: SHA256_HEX, what: 'a lowercase SHA-256 hex digest' },
  FIRST_NAME_SHA256: { pattern: SHA256_HEX, what: 'a lowercase SHA-256 hex digest' },
  LAST_NAME_SHA256: { pattern: SHA256_HEX, what: 'a lowercase SHA-256 hex digest' },
  ZIP: { pattern: /^\S+$/, what: 'a postal code without spaces' },
  COUNTRY: { pattern: /^[A-Z]{2}$/, what: 'an upper-case ISO 3166 alpha-2 code' },
  EXTERNAL_ID: { pattern: /^\S(.*\S)?$/, what: 'a trimmed, non-empty id' },
  MOBILE_AD_ID: { pattern: UUID, what: 'a lowercase mobile ad id' },
};

interface Reply {
  status: number;
  body?: string;
  headers?: Record<string, string>;
  /** Drop the connection instead of answering. */
  drop?: boolean;
}

/** Answers a request that does not follow the contract. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function expectKeys(value: Record<string, unknown>, keys: string[], where: string): void {
  const actual = Object.keys(value).sort();
  if (JSON.stringify(actual) !== JSON.stringify([...keys].sort())) {
    throw new Refusal(400, `${where} must have exactly the keys ${keys.join(', ')}; got ${actual.join(', ')}`);
  }
}

const json = (status: number, body: unknown): Reply => ({
  status,
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

const FAILURES: Record<Exclude<FakeWebhookFailure, 'lost-reply' | 'drop-after-apply'>, (request: IncomingMessage) => Reply> = {
  throttle: () => ({ status: 429, body: 'slow down', headers: { 'retry-after': String(THROTTLE_RETRY_AFTER_SECONDS) } }),
  'server-error': () => ({ status: 503, body: 'upstream unavailable' }),
  forbidden: () => ({ status: 403, body: 'forbidden' }),
  // A chatty framework error page that echoes the request's Authorization header.
  'bad-request': (request) =>
    json(422, {
      error: 'The audience payload failed validation',
      seen: { authorization: request.headers.authorization ?? null },
      detail: 'x'.repeat(400),
    }),
  redirect: () => ({ status: 302, body: '', headers: { location: 'http://169.254.169.254/latest/meta-data' } }),
  'huge-reply': () => json(200, { padding: 'x'.repeat(2_000_000) }),
  'bad-rejections': () => json(200, { rejected: [{ index: 99, reason: 'no such member' }] }),
};

export async function startFakeWebhookReceiver(options: {
  signingSecret: string;
  /** Headers every request must carry, e.g. the receiver's own Authorization. */
  requiredHeaders?: Record<string, string>;
}): Promise<FakeWebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const deliveries: AppliedDelivery[] = [];
  const duplicates: string[] = [];
  const audiences = new Map<string, Identifiers[]>();
  /** By delivery id: the body's hash and the reply given, to answer a repeat the same way. */
  const applied = new Map<string, { bodyHash: string; reply: Reply }>();
  /** Next expected sequence per upload session; null once its last batch arrived. */
  const sessions = new Map<string, number | null>();
  const failures = failureQueue<FakeWebhookFailure, IncomingMessage>();
  let rejectReason: (identifiers: Identifiers) => string | null = () => null;

  function verify(req: IncomingMessage, rawBody: string): string {
    for (const [name, value] of Object.entries(options.requiredHeaders ?? {})) {
      if (req.headers[name.toLowerCase()] !== value) throw new Refusal(401, `missing or wrong ${name} header`);
    }
    if (req.headers['content-type'] !== 'application/json') throw new Refusal(415, 'content-type must be application/json');
    const timestamp = req.headers['x-timestamp'];
    if (typeof timestamp !== 'string' || !/^\d+$/.test(timestamp)) throw new Refusal(401, 'X-Timestamp missing');
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) throw new Refusal(401, 'X-Timestamp too old');
    const signature = /^sha256=([0-9a-f]{64})$/.exec(String(req.headers['x-signature']))?.[1];
    if (!signature) throw new Refusal(401, 'X-Signature missing or malformed');
    const expected = createHmac('sha256', receiver.signingSecret).update(`${timestamp}.${rawBody}`).digest();
    if (!timingSafeEqual(Buffer.from(signature, 'hex'), expected)) throw new Refusal(401, 'signature mismatch');
    const deliveryId = req.headers['x-delivery-id'];
    if (typeof deliveryId !== 'string' || !UUID.test(deliveryId)) throw new Refusal(400, 'X-Delivery-Id must be a UUID');
    return deliveryId;
  }

  function parseMembers(value: unknown, size: unknown): Identifiers[] {
    if (!Array.isArray(value) || value.length === 0 || value.length > MAX_MEMBERS) {
      throw new Refusal(413, `members must hold 1 to ${MAX_MEMBERS} entries`);
    }
    if (size !== value.length) throw new Refusal(400, 'batch.size must equal the number of members');
    return value.map((member, index) => {
      if (!isRecord(member)) throw new Refusal(400, `members[${index}] must be an object`);
      expectKeys(member, ['identifiers'], `members[${index}]`);
      const identifiers = member['identifiers'];
      if (!isRecord(identifiers) || Object.keys(identifiers).length === 0) {
        throw new Refusal(400, `members[${index}].identifiers must be a non-empty object`);
      }
      for (const [field, fieldValue] of Object.entries(identifiers)) {
        if (!(field in IDENTIFIER_RULES)) throw new Refusal(400, `members[${index}]: unknown identifier ${field}`);
        if (typeof fieldValue !== 'string') throw new Refusal(400, `members[${index}].${field} must be a string`);
      }
      return identifiers as Identifiers;
    });
  }

  function memberProblem(identifiers: Identifiers): string | null {
    for (const [field, value] of Object.entries(identifiers)) {
      const rule = IDENTIFIER_RULES[field]!;
      if (!rule.pattern.test(value)) return `${field} must be ${rule.what}`;
    }
    return rejectReason(identifiers);
  }

  const memberKey = (identifiers: Identifiers) => JSON.stringify(Object.entries(identifiers).sort());

  function applyMembers(body: Record<string, unknown>, deliveryId: string): Reply {
    expectKeys(body, ['type', 'id', 'audience', 'batch', 'members'], 'the event');
    const { type, audience, batch } = body;
    if (type !== 'audience.members.added' && type !== 'audience.members.removed') {
      throw new Refusal(400, `unknown event type ${String(type)}`);
    }
    if (!isRecord(audience)) throw new Refusal(400, 'audience must be an object');
    expectKeys(audience, ['id', 'name'], 'audience');
    if (typeof audience['id'] !== 'string' || audience['id'] === '') throw new Refusal(400, 'audience.id must be a string');
    if (typeof audience['name'] !== 'string' && audience['name'] !== null) throw new Refusal(400, 'audience.name must be a string or null');
    if (!isRecord(batch)) throw new Refusal(400, 'batch must be an object');
    expectKeys(batch, ['session', 'sequence', 'last', 'estimatedTotal', 'size'], 'batch');
    const { session, sequence, last, estimatedTotal } = batch;
    if (typeof session !== 'string' || !UUID.test(session)) throw new Refusal(400, 'batch.session must be a UUID');
    if (!Number.isSafeInteger(sequence) || (sequence as number) < 1) throw new Refusal(400, 'batch.sequence must be ≥ 1');
    if (typeof last !== 'boolean') throw new Refusal(400, 'batch.last must be a boolean');
    if (!Number.isSafeInteger(estimatedTotal) || (estimatedTotal as number) < 0) {
      throw new Refusal(400, 'batch.estimatedTotal must be a non-negative integer');
    }
    const members = parseMembers(body['members'], batch['size']);

    const expected = sessions.has(session) ? sessions.get(session) : 1;
    if (expected !== sequence) throw new Refusal(409, `batch ${String(sequence)} of session ${session} is out of order`);
    sessions.set(session, last ? null : (sequence as number) + 1);

    const held = new Map((audiences.get(audience['id']) ?? []).map((identifiers) => [memberKey(identifiers), identifiers]));
    const rejected: { index: number; reason: string }[] = [];
    members.forEach((identifiers, index) => {
      const problem = memberProblem(identifiers);
      if (problem !== null) rejected.push({ index, reason: problem });
      else if (type === 'audience.members.added') held.set(memberKey(identifiers), identifiers);
      else held.delete(memberKey(identifiers));
    });
    audiences.set(audience['id'], [...held.values()]);
    deliveries.push({
      id: deliveryId,
      type,
      audienceId: audience['id'],
      audienceName: audience['name'] as string | null,
      session,
      sequence: sequence as number,
      last,
      members,
      rejected: rejected.map((entry) => entry.index),
    });
    return rejected.length > 0 ? json(200, { rejected }) : { status: 204 };
  }

  function route(req: IncomingMessage, rawBody: string): Reply {
    if (new URL(req.url ?? '/', 'http://fake').pathname !== WEBHOOK_PATH) throw new Refusal(404, 'no such hook');
    if (req.method !== 'POST') throw new Refusal(405, 'POST only');
    const deliveryId = verify(req, rawBody);

    const failure = failures.take(req);
    if (failure !== undefined && failure !== 'lost-reply' && failure !== 'drop-after-apply') return FAILURES[failure](req);

    const body = parseJson(rawBody);
    if (!isRecord(body)) throw new Refusal(400, 'the body must be a JSON object');
    if (body['id'] !== deliveryId) throw new Refusal(400, 'id must equal X-Delivery-Id');
    const bodyHash = createHash('sha256').update(rawBody).digest('hex');
    const previous = applied.get(deliveryId);
    if (previous) {
      if (previous.bodyHash !== bodyHash) throw new Refusal(409, `delivery ${deliveryId} was already used for another body`);
      duplicates.push(deliveryId);
      return previous.reply;
    }
    if (body['type'] === 'ping') {
      expectKeys(body, ['type', 'id'], 'a ping');
      return { status: 204 };
    }
    const reply = applyMembers(body, deliveryId);
    applied.set(deliveryId, { bodyHash, reply });
    if (failure === 'drop-after-apply') return { status: 0, drop: true };
    return failure === 'lost-reply' ? { status: 502, body: 'Bad Gateway' } : reply;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    let reply: Reply;
    try {
      reply = route(req, rawBody);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      reply = { status: error.status, body: error.message };
    }
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawBody,
      body: parseJson(rawBody),
      status: reply.status,
    });
    if (reply.drop) {
      res.socket?.destroy();
      return;
    }
    res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
    res.end(reply.body);
  }

  const server = await serveFake('fake webhook receiver', handle);

  const receiver: FakeWebhookReceiver = {
    url: `${server.baseUrl}${WEBHOOK_PATH}`,
    signingSecret: options.signingSecret,
    requests,
    deliveries,
    duplicates,
    audiences,
    held(field) {
      return [...audiences.values()].flatMap((members) => members.flatMap((m) => m[field] ?? [])).sort();
    },
    rejectMembers(reason) {
      rejectReason = reason;
    },
    failNext: failures.add,
    close: server.close,
  };
  return receiver;
}
