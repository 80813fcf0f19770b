import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { failureQueue, isRecord, parseJson, readBody, serveFake } from './fake-server.js';

/** Canned failures the fake returns, in order, before looking at the request. */
export type FakeXFailure = 'throttle' | 'server-error' | 'forbidden' | 'revoked-token' | 'count-mismatch';

/** Why the fake refused a request's OAuth 1.0a signature. */
export type AuthRejection = 'missing' | 'malformed' | 'unknown-consumer' | 'unknown-token' | 'signature' | 'timestamp' | 'nonce';

export interface XCredentialsFixture {
  consumerKey: string;
  consumerSecret: string;
  accessToken: string;
  accessTokenSecret: string;
}

export interface RecordedXRequest {
  method: string;
  /** Path and query string exactly as received. */
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  body: unknown;
  bodyBytes: number;
}

export interface FakeX {
  baseUrl: string;
  accountId: string;
  /** The ads account `GET /12/accounts/{accountId}` returns; set `deleted` to retire it. */
  account: { name: string; deleted: boolean };
  /** What each custom audience holds, as `field:value` strings (`email:<sha256>`). Add an entry to
   * make an audience exist. */
  audiences: Map<string, Set<string>>;
  requests: RecordedXRequest[];
  /** Every signature refused, in order. */
  authRejections: AuthRejection[];
  /** Identifier values X refuses as invalid: an operation carrying one gets an operation error. */
  rejectedValues: Set<string>;
  /** Answers the next `count` requests (only those `when` accepts, if given) with a canned failure. */
  failNext(kind: FakeXFailure, count?: number, when?: (request: RecordedXRequest) => boolean): void;
  close(): Promise<void>;
}

/** Seconds ahead of now (rounded up to X's whole seconds) the `throttle` failure announces. */
export const THROTTLE_RESET_SECONDS = 1;

const API_PREFIX = '/12/accounts/';
const MAX_OPERATIONS = 2_500;
const MAX_BODY_BYTES = 5_000_000;
/** How far an oauth_timestamp may be from the fake's clock. */
const TIMESTAMP_TOLERANCE_SECONDS = 300;
const HASHED_FIELDS = new Set(['email', 'phone_number', 'handle', 'twitter_id', 'device_id']);
const USER_FIELDS = new Set([...HASHED_FIELDS, 'partner_user_id']);
const SHA256_HEX = /^[0-9a-f]{64}$/;

interface XReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

interface XErrorBody {
  code: string;
  message: string;
  parameter?: string;
}

const errorsReply = (status: number, ...errors: XErrorBody[]): XReply => ({
  status,
  body: { errors, request: { params: {} } },
});

/** Thrown inside a handler to answer with an X Ads API error. */
class XError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const badRequest = (message: string) => new XError(400, 'INVALID_PARAMETER', message);
const notFound = () => new XError(404, 'NOT_FOUND', 'The requested resource could not be found');
/** X lists ACCOUNT_NOT_FOUND as a 403 (https://docs.x.com/x-ads-api/fundamentals/error-codes-and-responses). */
const accountNotFound = () => new XError(403, 'ACCOUNT_NOT_FOUND', 'The account could not be found');

const FAILURES: Record<FakeXFailure, () => XReply> = {
  throttle: () => {
    const reset = Math.ceil(Date.now() / 1000) + THROTTLE_RESET_SECONDS;
    return {
      ...errorsReply(429, { code: 'TOO_MANY_REQUESTS', message: 'Rate limit exceeded' }),
      headers: { 'x-rate-limit-limit': '1500', 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': String(reset) },
    };
  },
  'server-error': () => errorsReply(500, { code: 'INTERNAL_ERROR', message: 'Internal error' }),
  forbidden: () =>
    errorsReply(403, {
      code: 'UNAUTHORIZED_CLIENT_APPLICATION',
      message: 'The client application making this request does not have access to X Ads API',
    }),
  'revoked-token': () => unauthorized(),
  // Counts that disagree with the request: X says to treat this as a failure and retry.
  'count-mismatch': () => ({ status: 200, body: { data: { success_count: 0, total_count: 1 }, request: { params: {} } } }),
};

function unauthorized(): XReply {
  return errorsReply(401, { code: 'UNAUTHORIZED_ACCESS', message: 'This request is not properly authenticated' });
}

/** RFC 3986 percent-encoding, the one OAuth 1.0a signs with. */
const encode = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The `Authorization: OAuth k="v", …` parameters, decoded; null when the header is not one. */
function parseOAuthHeader(header: string | undefined): Map<string, string> | null {
  if (!header?.startsWith('OAuth ')) return null;
  const params = new Map<string, string>();
  for (const part of header.slice(6).split(',')) {
    const match = /^\s*([\w.~%-]+)="([^"]*)"\s*$/.exec(part);
    if (!match) return null;
    params.set(decodeURIComponent(match[1]!), decodeURIComponent(match[2]!));
  }
  return params;
}

/** Why the operation is invalid, or null when X would accept it. */
function operationError(operation: unknown, rejectedValues: Set<string>): string | null {
  if (!isRecord(operation)) return 'Each operation must be a JSON object';
  const extra = Object.keys(operation).filter((key) => key !== 'operation_type' && key !== 'params');
  if (extra.length > 0) return `Unknown operation key ${extra[0]}`;
  if (operation['operation_type'] !== 'Update' && operation['operation_type'] !== 'Delete') {
    return 'operation_type must be Update or Delete';
  }
  const params = operation['params'];
  if (!isRecord(params)) return 'params is required';
  for (const key of Object.keys(params)) {
    if (key === 'users') continue;
    if (key !== 'effective_at' && key !== 'expires_at') return `Unknown parameter ${key}`;
    if (typeof params[key] !== 'string' || Number.isNaN(Date.parse(params[key]))) return `${key} must be an ISO 8601 time`;
  }
  const users = params['users'];
  if (!Array.isArray(users) || users.length === 0) return 'params.users must be a non-empty array';
  for (const user of users) {
    if (!isRecord(user) || Object.keys(user).length === 0) return 'Each user must be an object with identifiers';
    for (const [field, values] of Object.entries(user)) {
      if (!USER_FIELDS.has(field)) return `Unknown user identifier type ${field}`;
      if (!Array.isArray(values) || values.length === 0 || !values.every((v) => typeof v === 'string' && v !== '')) {
        return `${field} must be a non-empty array of strings`;
      }
      for (const value of values as string[]) {
        if (HASHED_FIELDS.has(field) && !SHA256_HEX.test(value)) return `Expected a lowercase SHA-256 hash for ${field}`;
        if (rejectedValues.has(value)) return `Invalid ${field}`;
      }
    }
  }
  return null;
}

export async function startFakeX(options: { accountId: string; credentials: XCredentialsFixture }): Promise<FakeX> {
  const { accountId, credentials } = options;
  const audiences = new Map<string, Set<string>>();
  const requests: RecordedXRequest[] = [];
  const authRejections: AuthRejection[] = [];
  const rejectedValues = new Set<string>();
  const failures = failureQueue<FakeXFailure, RecordedXRequest>();
  const seenNonces = new Set<string>();
  const account = { name: 'Fake X ads account', deleted: false };
  let nextAudienceNumber = 1_700_000;
  let baseUrl = '';

  /** Recomputes the HMAC-SHA1 signature with the secrets the fake knows; null when it is valid. */
  function verifySignature(req: IncomingMessage, url: URL): AuthRejection | null {
    const oauth = parseOAuthHeader(req.headers.authorization);
    if (!oauth) return req.headers.authorization ? 'malformed' : 'missing';
    const signature = oauth.get('oauth_signature');
    const timestamp = Number(oauth.get('oauth_timestamp'));
    const nonce = oauth.get('oauth_nonce');
    if (
      !signature ||
      !nonce ||
      !Number.isSafeInteger(timestamp) ||
      oauth.get('oauth_signature_method') !== 'HMAC-SHA1' ||
      (oauth.has('oauth_version') && oauth.get('oauth_version') !== '1.0')
    ) {
      return 'malformed';
    }
    if (oauth.get('oauth_consumer_key') !== credentials.consumerKey) return 'unknown-consumer';
    if (oauth.get('oauth_token') !== credentials.accessToken) return 'unknown-token';

    // Query parameters are decoded as a form (so "+" is a space), then re-encoded by RFC 3986.
    const params = [...url.searchParams.entries(), ...[...oauth].filter(([key]) => key !== 'oauth_signature' && key !== 'realm')]
      .map(([key, value]) => [encode(key), encode(value)] as const)
      .sort(([k1, v1], [k2, v2]) => (k1 === k2 ? (v1 < v2 ? -1 : 1) : k1 < k2 ? -1 : 1))
      .map(([key, value]) => `${key}=${value}`)
      .join('&');
    const baseString = [req.method ?? '', encode(`${baseUrl}${url.pathname}`), encode(params)].join('&');
    const key = `${encode(credentials.consumerSecret)}&${encode(credentials.accessTokenSecret)}`;
    const expected = Buffer.from(createHmac('sha1', key).update(baseString).digest('base64'));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'signature';

    if (Math.abs(timestamp - Date.now() / 1000) > TIMESTAMP_TOLERANCE_SECONDS) return 'timestamp';
    if (seenNonces.has(nonce)) return 'nonce';
    seenNonces.add(nonce);
    return null;
  }

  function readAccount(url: URL): XReply {
    if (url.search !== '') throw badRequest(`Unknown parameter ${[...url.searchParams.keys()][0]}`);
    return {
      status: 200,
      body: {
        data: { id: accountId, name: account.name, deleted: account.deleted, approval_status: 'ACCEPTED' },
        request: { params: { account_id: accountId } },
      },
    };
  }

  function createAudience(url: URL, rawBody: string): XReply {
    if (rawBody !== '') throw badRequest('Send the parameters in the query string; this endpoint takes no body');
    const unknown = [...url.searchParams.keys()].filter((key) => key !== 'name' && key !== 'description');
    if (unknown.length > 0) throw badRequest(`Unknown parameter ${unknown[0]}`);
    const name = url.searchParams.get('name') ?? '';
    if (name.trim() === '') throw new XError(400, 'MISSING_PARAMETER', 'name is required');
    const id = (nextAudienceNumber++).toString(36);
    audiences.set(id, new Set());
    return {
      status: 200,
      body: {
        data: {
          id,
          name,
          audience_type: 'CRM',
          targetable: false,
          reasons_not_targetable: ['PROCESSING', 'TOO_SMALL'],
          audience_size: null,
          deleted: false,
        },
        request: { params: { account_id: accountId, name } },
      },
    };
  }

  /** An audience as X reports it: `audience_size` null until it is large enough to show (the fake
   * counts the users it holds, from 100), targetable with no reasons once it has them. */
  function readAudience(audienceId: string): XReply {
    const members = audiences.get(audienceId);
    if (!members) throw notFound();
    const targetable = members.size >= 100;
    return {
      status: 200,
      body: {
        data: {
          id: audienceId,
          audience_type: 'CRM',
          audience_size: targetable ? members.size : null,
          targetable,
          reasons_not_targetable: targetable ? [] : ['TOO_SMALL'],
          deleted: false,
        },
        request: { params: { account_id: accountId, custom_audience_id: audienceId } },
      },
    };
  }

  function updateUsers(req: IncomingMessage, audienceId: string, url: URL, rawBody: string, body: unknown): XReply {
    const members = audiences.get(audienceId);
    if (!members) throw notFound();
    if (url.search !== '') throw badRequest('All parameters go in the JSON body');
    if (!req.headers['content-type']?.startsWith('application/json')) {
      throw badRequest('A Content-Type of application/json is required');
    }
    // X documents the 5,000,000-byte limit but not how it answers a larger body: 413 stands in.
    if (Buffer.byteLength(rawBody) > MAX_BODY_BYTES) {
      throw new XError(413, 'REQUEST_TOO_LARGE', `The request body exceeds ${MAX_BODY_BYTES} bytes`);
    }
    if (!Array.isArray(body) || body.length === 0) throw badRequest('The body must be a non-empty JSON array of operations');
    if (body.length > MAX_OPERATIONS) throw badRequest(`Max batch size of ${MAX_OPERATIONS} operations exceeded: ${body.length}`);

    const problems = body.map((operation) => operationError(operation, rejectedValues));
    if (problems.some((problem) => problem !== null)) {
      // All or nothing: one invalid operation fails the whole request.
      return {
        status: 400,
        body: {
          operation_errors: problems.map((problem) => (problem ? [{ code: 'INVALID_PARAMETER', message: problem }] : [])),
          request: { params: { account_id: accountId, custom_audience_id: audienceId } },
        },
      };
    }
    for (const { operation_type: type, params } of body as { operation_type: string; params: { users: Record<string, string[]>[] } }[]) {
      for (const user of params.users) {
        for (const [field, values] of Object.entries(user)) {
          for (const value of values) {
            if (type === 'Update') members.add(`${field}:${value}`);
            else members.delete(`${field}:${value}`);
          }
        }
      }
    }
    return {
      status: 200,
      body: {
        data: { success_count: body.length, total_count: body.length },
        request: { params: { account_id: accountId, custom_audience_id: audienceId } },
      },
    };
  }

  function route(req: IncomingMessage, recorded: RecordedXRequest, rawBody: string): XReply {
    const failure = failures.take(recorded);
    if (failure) return FAILURES[failure]();

    const url = new URL(req.url ?? '/', baseUrl);
    const rejection = verifySignature(req, url);
    if (rejection) {
      authRejections.push(rejection);
      return unauthorized();
    }
    if (!url.pathname.startsWith(API_PREFIX)) throw notFound();
    const [account, collection, audienceId, users, ...rest] = url.pathname.slice(API_PREFIX.length).split('/');
    if (account !== accountId) throw accountNotFound();
    if (rest.length > 0) throw notFound();
    if (req.method === 'GET' && collection === undefined) return readAccount(url);
    if (req.method === 'GET' && collection === 'custom_audiences' && audienceId && users === undefined) {
      return readAudience(audienceId);
    }
    if (req.method === 'POST' && collection === 'custom_audiences' && audienceId === undefined) {
      return createAudience(url, rawBody);
    }
    if (req.method === 'POST' && collection === 'custom_audiences' && audienceId && users === 'users') {
      return updateUsers(req, audienceId, url, rawBody, recorded.body);
    }
    throw notFound();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const recorded: RecordedXRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      body: parseJson(rawBody) ?? rawBody,
      bodyBytes: Buffer.byteLength(rawBody),
    };
    requests.push(recorded);

    let reply: XReply;
    try {
      reply = route(req, recorded, rawBody);
    } catch (error) {
      if (!(error instanceof XError)) throw error;
      reply = errorsReply(error.status, { code: error.code, message: error.message });
    }
    res.writeHead(reply.status, { 'content-type': 'application/json;charset=utf-8', ...reply.headers });
    res.end(JSON.stringify(reply.body));
  }

  const server = await serveFake('fake X', handle);
  baseUrl = server.baseUrl;

  return {
    baseUrl,
    accountId,
    account,
    audiences,
    requests,
    authRejections,
    rejectedValues,
    failNext: failures.add,
    close: server.close,
  };
}
