import type { IncomingMessage, ServerResponse } from 'node:http';
import { failureQueue, isRecord, parseJson, readBody, serveFake } from './fake-server.js';

/** Canned failures the fake returns, in order, before looking at the request — except
 * `drop-after-apply`, which applies the request and then drops the connection without answering
 * (applied, but the client cannot know). */
export type FakeMetaFailure =
  | 'token-expired'
  | 'permission-denied'
  | 'throttle'
  | 'http-429'
  | 'server-error'
  | 'audience-too-small'
  | 'drop-after-apply';

/** Picks the requests a queued failure applies to. */
export type RequestFilter = (request: { method: string; url: string }) => boolean;

export interface RecordedRequest {
  method: string;
  /** Path and query string exactly as received. */
  url: string;
  authorization: string | undefined;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  body: unknown;
}

export interface FakeMeta {
  baseUrl: string;
  /** What each audience holds, as `FIELD:value` strings (`EMAIL:<sha256>`, `MADID:<id>`). Add an
   * entry to make an audience exist. */
  audiences: Map<string, Set<string>>;
  requests: RecordedRequest[];
  /** Audiences Meta flagged as implying health or financial status (operation_status 471): adding
   * and removing their users fails as the Custom Audience Users reference shows. */
  flagged: Set<string>;
  /** The ad account every act_… path names; set `status` to 2 to disable it. */
  adAccount: { name: string; status: number };
  /** Answers the next `count` requests (only those `when` accepts, if given) with a canned failure. */
  failNext(kind: FakeMetaFailure, count?: number, when?: RequestFilter): void;
  /** Holds requests (after letting the next `after` through) until `release()`, then applies and
   * answers them: `waiting` resolves with the first request held, so a test can act while a run is
   * stuck mid-flight — or kill the client, so that the platform applies a batch whose answer is lost. */
  hold(options?: { after?: number }): { waiting: Promise<RecordedRequest>; release(): void };
  close(): Promise<void>;
}

/** Minutes the `throttle` failure announces in `X-Business-Use-Case-Usage`. */
export const THROTTLE_REGAIN_MINUTES = 7;

const KNOWN_FIELDS = new Set([
  'EXTERN_ID', 'EMAIL', 'PHONE', 'GEN', 'DOBY', 'DOBM', 'DOBD', 'LN', 'FN', 'FI', 'CT', 'ST', 'ZIP', 'MADID', 'COUNTRY',
]);
const MAX_ROWS = 10_000;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const MOBILE_AD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CUSTOMER_FILE_SOURCES = ['USER_PROVIDED_ONLY', 'PARTNER_PROVIDED_ONLY', 'BOTH_USER_AND_PARTNER_PROVIDED'];

interface GraphReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** Thrown inside a handler to answer with a Graph API error. */
class GraphError extends Error {
  constructor(
    message: string,
    readonly code = 100,
    readonly extra: {
      status?: number;
      subcode?: number;
      type?: string;
      userTitle?: string;
      userMessage?: string;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
  }

  toReply(): GraphReply {
    const error = {
      message: this.message,
      type: this.extra.type ?? 'OAuthException',
      code: this.code,
      ...(this.extra.subcode === undefined ? {} : { error_subcode: this.extra.subcode }),
      ...(this.extra.userTitle === undefined ? {} : { error_user_title: this.extra.userTitle }),
      ...(this.extra.userMessage === undefined ? {} : { error_user_msg: this.extra.userMessage }),
      fbtrace_id: 'FakeTrace123',
    };
    return { status: this.extra.status ?? 400, body: { error }, headers: this.extra.headers };
  }
}

const INVALID_TOKEN_HEADERS = { 'www-authenticate': 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token"' };

const FAILURES: Record<Exclude<FakeMetaFailure, 'drop-after-apply'>, () => GraphReply> = {
  'token-expired': () =>
    new GraphError('Error validating access token: Session has expired.', 190, {
      subcode: 463,
      headers: INVALID_TOKEN_HEADERS,
    }).toReply(),
  'permission-denied': () => new GraphError('(#200) Permissions error', 200).toReply(),
  throttle: () =>
    new GraphError('User request limit reached', 17, {
      subcode: 2446079,
      headers: {
        'x-business-use-case-usage': JSON.stringify({
          '1234': [{ type: 'ads_management', call_count: 100, estimated_time_to_regain_access: THROTTLE_REGAIN_MINUTES }],
        }),
      },
    }).toReply(),
  // As recorded from Meta: code 200 (a permissions family code), told apart by subcode and title.
  'audience-too-small': () =>
    new GraphError('(#200) Audience Size too Low', 200, {
      subcode: 1870047,
      userTitle: 'Audience Size too Low',
      userMessage: 'You cannot remove users from this audience because it will result in a low audience size.',
    }).toReply(),
  'http-429': () => ({ status: 429, body: 'Too Many Requests', headers: { 'retry-after': '1' } }),
  'server-error': () => ({
    status: 500,
    body: { error: { message: 'An unexpected error has occurred.', type: 'OAuthException', code: 2, is_transient: true } },
  }),
};

const isPositiveInteger = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0;

/** Why Meta would count this value as an invalid entry, or null when it is acceptable. */
function invalidReason(field: string, value: string): string | null {
  if (value === '') return null;
  if (field === 'EXTERN_ID') return null;
  if (field === 'MADID') return MOBILE_AD_ID.test(value) ? null : 'MADID must be a lowercase, unhashed mobile ad id';
  return SHA256_HEX.test(value) ? null : `${field} must be a lowercase SHA-256 hex digest`;
}

function parseSchema(payload: Record<string, unknown>): string[] {
  const schema = payload['schema'];
  if (!Array.isArray(schema) || schema.length === 0) throw new GraphError('(#100) Missing schema in payload');
  for (const field of schema) {
    if (typeof field !== 'string' || !KNOWN_FIELDS.has(field)) {
      throw new GraphError(`(#100) Invalid schema field: ${String(field)}`);
    }
  }
  if (new Set(schema).size !== schema.length) throw new GraphError('(#100) Duplicate field in schema');
  return schema as string[];
}

function parseData(payload: Record<string, unknown>, width: number): string[][] {
  const data = payload['data'];
  if (!Array.isArray(data) || data.length === 0) throw new GraphError('(#100) Missing data in payload');
  if (data.length > MAX_ROWS) throw new GraphError(`(#100) Too many users in one request: ${data.length} > ${MAX_ROWS}`);
  for (const row of data) {
    if (!Array.isArray(row) || row.length !== width || !row.every((value) => typeof value === 'string')) {
      throw new GraphError('(#100) Data is missing or does not match schema');
    }
  }
  return data as string[][];
}

function parseSession(body: Record<string, unknown>) {
  const session = body['session'];
  if (!isRecord(session)) throw new GraphError('(#100) session is required');
  const { session_id, batch_seq, last_batch_flag, estimated_num_total } = session;
  if (!isPositiveInteger(session_id)) throw new GraphError('(#100) session.session_id must be a positive integer');
  if (!isPositiveInteger(batch_seq)) throw new GraphError('(#100) session.batch_seq must be a positive integer');
  if (typeof last_batch_flag !== 'boolean') throw new GraphError('(#100) session.last_batch_flag must be a boolean');
  if (!Number.isSafeInteger(estimated_num_total) || (estimated_num_total as number) < 0) {
    throw new GraphError('(#100) session.estimated_num_total must be a non-negative integer');
  }
  return { sessionId: session_id, batchSeq: batch_seq, lastBatch: last_batch_flag };
}

export async function startFakeMeta(options: { accessToken: string }): Promise<FakeMeta> {
  const audiences = new Map<string, Set<string>>();
  const flagged = new Set<string>();
  const requests: RecordedRequest[] = [];
  const failures = failureQueue<FakeMetaFailure, { method: string; url: string }>();
  /** Next expected batch_seq per `audience:session_id`; null once the last batch arrived. */
  const sessions = new Map<string, number | null>();
  let gate: {
    opened: Promise<void>;
    letThrough: number;
    release(): void;
    onRequest(request: RecordedRequest): void;
  } | null = null;
  let nextAudienceId = 23850000000000001n;
  const adAccount = { name: 'Fake ad account', status: 1 };

  function createAudience(body: Record<string, unknown>): GraphReply {
    const { name, subtype, customer_file_source } = body;
    if (typeof name !== 'string' || name.trim() === '') throw new GraphError('(#100) The parameter name is required');
    if (subtype !== 'CUSTOM') throw new GraphError('(#100) subtype must be CUSTOM for a customer list audience');
    if (typeof customer_file_source !== 'string' || !CUSTOMER_FILE_SOURCES.includes(customer_file_source)) {
      throw new GraphError('(#100) customer_file_source must be one of ' + CUSTOMER_FILE_SOURCES.join(', '));
    }
    const id = String(nextAudienceId++);
    audiences.set(id, new Set());
    return { status: 200, body: { id } };
  }

  function updateUsers(method: string, audienceId: string, body: Record<string, unknown>): GraphReply {
    const members = audiences.get(audienceId);
    if (!members) {
      throw new GraphError(
        `Unsupported ${method.toLowerCase()} request. Object with ID '${audienceId}' does not exist, cannot be loaded ` +
          'due to missing permissions, or does not support this operation.',
        100,
        { subcode: 33, type: 'GraphMethodException' },
      );
    }
    if (flagged.has(audienceId)) {
      throw new GraphError('Invalid parameter', 100, {
        subcode: 1713230,
        userTitle: 'Audience Upload Blocked',
        userMessage:
          'Before updating user memberships, you must resolve integrity restrictions on this Data File Custom ' +
          'Audience. Go to Audience Manager to appeal the restrictions or create a new audience with updated data',
      });
    }
    const payload = body['payload'];
    if (!isRecord(payload)) throw new GraphError('(#100) The parameter payload is required');
    const schema = parseSchema(payload);
    const data = parseData(payload, schema.length);
    const session = parseSession(body);

    const sessionKey = `${audienceId}:${session.sessionId}`;
    const expectedSeq = sessions.has(sessionKey) ? sessions.get(sessionKey) : 1;
    if (expectedSeq === null) throw new GraphError(`(#100) Session ${session.sessionId} has already finished`);
    if (session.batchSeq !== expectedSeq) {
      throw new GraphError(`(#100) batch_seq ${session.batchSeq} is out of order; expected ${expectedSeq}`);
    }
    sessions.set(sessionKey, session.lastBatch ? null : session.batchSeq + 1);

    const invalidSamples: Record<string, string> = {};
    let invalidCount = 0;
    for (const row of data) {
      const problems = row.flatMap((value, i) => {
        const reason = invalidReason(schema[i] ?? '', value);
        return reason === null ? [] : [[value, reason] as const];
      });
      if (row.every((value) => value === '')) problems.push([JSON.stringify(row), 'row has no identifiers']);
      if (problems.length > 0) {
        invalidCount++;
        for (const [value, reason] of problems) invalidSamples[value] = reason;
        continue;
      }
      row.forEach((value, i) => {
        if (value === '') return;
        const key = `${schema[i]}:${value}`;
        if (method === 'POST') members.add(key);
        else members.delete(key);
      });
    }
    return {
      status: 200,
      body: {
        audience_id: audienceId,
        session_id: String(session.sessionId),
        num_received: data.length,
        num_invalid_entries: invalidCount,
        invalid_entry_samples: invalidSamples,
      },
    };
  }

  /** GET of an ad account, the one read the gateway makes: fields go in the query string. */
  function readObject(req: IncomingMessage, url: URL): GraphReply {
    if (req.headers.authorization !== `Bearer ${options.accessToken}`) {
      throw new GraphError('Invalid OAuth access token - Cannot parse access token', 190, {
        headers: INVALID_TOKEN_HEADERS,
      });
    }
    const audienceId = /^\/v\d+\.\d+\/(\d+)$/.exec(url.pathname)?.[1];
    if (audienceId) return readAudience(audienceId, url);
    const account = /^\/v\d+\.\d+\/act_(\d+)$/.exec(url.pathname);
    if (!account?.[1]) {
      throw new GraphError(`Unsupported get request to ${url.pathname}`, 100, { type: 'GraphMethodException' });
    }
    const fields = (url.searchParams.get('fields') ?? 'id').split(',');
    const known: Record<string, unknown> = {
      id: `act_${account[1]}`,
      name: adAccount.name,
      account_status: adAccount.status,
    };
    const unknown = fields.filter((field) => !(field in known));
    if (unknown.length > 0) throw new GraphError(`(#100) Tried accessing nonexisting field (${unknown[0]})`);
    return { status: 200, body: Object.fromEntries(fields.map((field) => [field, known[field]])) };
  }

  /** A custom audience's counts and statuses, as Meta reports them: the size is a range, -1 below
   * the size Meta shows (about 100); a flagged audience has operation status 471. The fake counts
   * the identifiers it holds as people. */
  function readAudience(audienceId: string, url: URL): GraphReply {
    const members = audiences.get(audienceId);
    if (!members) {
      throw new GraphError(
        `Unsupported get request. Object with ID '${audienceId}' does not exist, cannot be loaded due to missing ` +
          'permissions, or does not support this operation.',
        100,
        { subcode: 33, type: 'GraphMethodException' },
      );
    }
    const size = members.size >= 100 ? members.size : -1;
    const known: Record<string, unknown> = {
      id: audienceId,
      approximate_count_lower_bound: size,
      approximate_count_upper_bound: size,
      operation_status: flagged.has(audienceId)
        ? { code: 471, description: 'This audience was restricted: it may imply health or financial status.' }
        : { code: 200, description: 'Normal' },
      delivery_status:
        size === -1
          ? { code: 300, description: 'This audience is too small to deliver ads to.' }
          : { code: 200, description: 'This audience is ready for use.' },
    };
    const fields = (url.searchParams.get('fields') ?? 'id').split(',');
    const unknown = fields.filter((field) => !(field in known));
    if (unknown.length > 0) throw new GraphError(`(#100) Tried accessing nonexisting field (${unknown[0]})`);
    return { status: 200, body: Object.fromEntries(fields.map((field) => [field, known[field]])) };
  }

  function route(req: IncomingMessage, body: unknown, failure: FakeMetaFailure | undefined): GraphReply {
    if (failure && failure !== 'drop-after-apply') return FAILURES[failure]();

    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method === 'GET') return readObject(req, url);
    if (url.search !== '') {
      const names = [...url.searchParams.keys()].join(', ');
      throw new GraphError(`(#100) Send parameters in the JSON body, not the query string (got ${names})`);
    }
    if (req.headers.authorization !== `Bearer ${options.accessToken}`) {
      throw new GraphError('Invalid OAuth access token - Cannot parse access token', 190, {
        headers: INVALID_TOKEN_HEADERS,
      });
    }
    if (!req.headers['content-type']?.startsWith('application/json')) {
      throw new GraphError('(#100) The request body must be JSON (content-type: application/json)');
    }
    if (!isRecord(body)) throw new GraphError('(#100) The request body must be a JSON object');

    if (req.method === 'POST' && /^\/v\d+\.\d+\/act_\d+\/customaudiences$/.test(url.pathname)) {
      return createAudience(body);
    }
    const usersMatch = /^\/v\d+\.\d+\/(\d+)\/users$/.exec(url.pathname);
    if (usersMatch?.[1] && (req.method === 'POST' || req.method === 'DELETE')) {
      return updateUsers(req.method, usersMatch[1], body);
    }
    throw new GraphError(`Unsupported ${req.method?.toLowerCase()} request to ${url.pathname}`, 100, {
      type: 'GraphMethodException',
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const body = parseJson(rawBody);
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      body: body ?? rawBody,
    };
    requests.push(recorded);
    const held = gate;
    if (held && held.letThrough-- <= 0) {
      held.onRequest(recorded);
      await held.opened;
    }

    const failure = failures.take({ method: recorded.method, url: recorded.url });
    let reply: GraphReply;
    try {
      reply = route(req, body, failure);
    } catch (error) {
      if (!(error instanceof GraphError)) throw error;
      reply = error.toReply();
    }
    if (failure === 'drop-after-apply') {
      res.socket?.destroy();
      return;
    }
    const isJson = typeof reply.body !== 'string';
    res.writeHead(reply.status, {
      'content-type': isJson ? 'application/json' : 'text/plain',
      ...reply.headers,
    });
    res.end(isJson ? JSON.stringify(reply.body) : reply.body);
  }

  const server = await serveFake('fake Meta', handle);

  return {
    baseUrl: server.baseUrl,
    audiences,
    flagged,
    requests,
    adAccount,
    failNext: failures.add,
    hold(options = {}) {
      let release!: () => void;
      let onRequest!: (request: RecordedRequest) => void;
      const opened = new Promise<void>((resolve) => (release = resolve));
      const waiting = new Promise<RecordedRequest>((resolve) => (onRequest = resolve));
      const thisGate = { opened, onRequest, letThrough: options.after ?? 0, release: () => release() };
      gate = thisGate;
      return {
        waiting,
        release() {
          if (gate === thisGate) gate = null;
          release();
        },
      };
    },
    close() {
      gate?.release();
      return server.close();
    },
  };
}
