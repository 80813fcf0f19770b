import type { IncomingMessage, ServerResponse } from 'node:http';
import { failureQueue, isRecord, parseJson, readBody, serveFake } from './fake-server.js';

/** Canned failures the fake returns, in order, before looking at the request. `throttle` is a 429
 * without Retry-After, as LinkedIn usually sends it; `throttle-retry-after` says 1 second. */
export type FakeLinkedInFailure =
  | 'token-expired'
  | 'permission-denied'
  | 'throttle'
  | 'throttle-retry-after'
  | 'server-error';

/** Picks the requests a queued failure applies to. */
export type RequestFilter = (request: { method: string; url: string }) => boolean;

export interface RecordedRequest {
  method: string;
  /** Path and query string exactly as received. */
  url: string;
  headers: {
    authorization?: string;
    linkedInVersion?: string;
    restliProtocolVersion?: string;
    restliMethod?: string;
    contentType?: string;
  };
  /** The parsed JSON body, or the raw text when it is not JSON. */
  body: unknown;
}

export interface FakeLinkedIn {
  baseUrl: string;
  /** The one ad account the token can use. */
  adAccount: { id: string; name: string; status: string };
  /** Who each DMP segment holds, as `idType:idValue` strings. Add an entry to make a segment exist. */
  segments: Map<string, Set<string>>;
  requests: RecordedRequest[];
  /** Identifier values LinkedIn refuses with a per-element error (the rest of the batch goes through). */
  rejectedIdValues: Set<string>;
  /** Identifier values LinkedIn takes but matches to no member: counted in `inputCount`, not in
   * `matchedCount` or `audienceSize`. */
  unmatchedIdValues: Set<string>;
  /** Answers the next `count` requests (only those `when` accepts, if given) with a canned failure. */
  failNext(kind: FakeLinkedInFailure, count?: number, when?: RequestFilter): void;
  close(): Promise<void>;
}

export interface FakeLinkedInOptions {
  accessToken: string;
  adAccountId?: string;
  /** Users sent to a segment younger than this get a 404, as the segment is not set up yet. */
  segmentReadyAfterMs?: number;
  /** The header carrying a new segment's id (LinkedIn documents x-restli-id; some answers use x-linkedin-id). */
  idHeader?: 'x-restli-id' | 'x-linkedin-id';
}

/** LinkedIn sunsets versioned APIs after about a year; older versions get 426. As in December 2026:
 * 202511 was switched off on 2026-11-16. */
export const OLDEST_ACTIVE_VERSION = '202601';
export const MAX_ELEMENTS = 5_000;
/** DMP segments an ad account may hold since August 2026; /dmpSegments answers 429 SEGMENT_LIMIT_EXCEEDED
 * beyond (https://learn.microsoft.com/en-us/linkedin/marketing/integrations/recent-changes). */
export const MAX_SEGMENTS = 1_000;

const ID_FORMATS: Record<string, RegExp> = {
  SHA256_EMAIL: /^[0-9a-f]{64}$/,
  SHA512_EMAIL: /^[0-9a-f]{128}$/,
  GOOGLE_AID: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
};
const ELEMENT_FIELDS = new Set(['action', 'userIds', 'firstName', 'lastName', 'title', 'company', 'country']);
const SEGMENT_FIELDS = new Set(['name', 'description', 'sourcePlatform', 'account', 'accessPolicy', 'type', 'destinations']);

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Thrown inside a handler to answer with a LinkedIn error body. */
class LinkedInError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: { code?: string; serviceErrorCode?: number; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }

  toReply(): Reply {
    const { headers, ...codes } = this.extra;
    return { status: this.status, body: { status: this.status, ...codes, message: this.message }, headers };
  }
}

function throttled(headers?: Record<string, string>): Reply {
  return new LinkedInError(429, 'Resource level throttle MEMBER MINUTE limit for calls to this resource is reached.', {
    code: 'TOO_MANY_REQUESTS',
    serviceErrorCode: 101,
    headers,
  }).toReply();
}

const FAILURES: Record<FakeLinkedInFailure, () => Reply> = {
  'token-expired': () =>
    new LinkedInError(401, 'The token used in the request has expired', {
      code: 'EXPIRED_ACCESS_TOKEN',
      serviceErrorCode: 65601,
    }).toReply(),
  'permission-denied': () =>
    new LinkedInError(403, 'Not enough permissions to access: dmpSegmentsUsers.BATCH_CREATE', {
      code: 'ACCESS_DENIED',
      serviceErrorCode: 100,
    }).toReply(),
  throttle: () => throttled(),
  'throttle-retry-after': () => throttled({ 'retry-after': '1' }),
  'server-error': () => ({ status: 500, body: { status: 500, message: 'Internal Server Error' } }),
};

function badRequest(message: string): LinkedInError {
  return new LinkedInError(400, message, { code: 'INVALID_REQUEST' });
}

function refuseUnknownFields(value: Record<string, unknown>, allowed: Set<string>, where: string): void {
  const unknown = Object.keys(value).filter((key) => !allowed.has(key));
  if (unknown.length > 0) throw badRequest(`Unrecognized field ${unknown[0]} in ${where}`);
}

interface UserId {
  idType: string;
  idValue: string;
}

/** Shape problems fail the whole request, as Rest.li schema validation does. */
function parseElements(body: unknown): { action: 'ADD' | 'REMOVE'; userIds: UserId[] }[] {
  if (!isRecord(body)) throw badRequest('The request body must be a JSON object');
  refuseUnknownFields(body, new Set(['elements']), 'the batch');
  const elements = body['elements'];
  if (!Array.isArray(elements) || elements.length === 0) throw badRequest('elements must be a non-empty array');
  if (elements.length > MAX_ELEMENTS) {
    throw badRequest(`Batch of ${elements.length} elements exceeds the maximum of ${MAX_ELEMENTS}`);
  }
  return elements.map((element, index) => {
    if (!isRecord(element)) throw badRequest(`elements[${index}] must be an object`);
    refuseUnknownFields(element, ELEMENT_FIELDS, `elements[${index}]`);
    const { action, userIds } = element;
    if (action !== 'ADD' && action !== 'REMOVE') throw badRequest(`elements[${index}].action must be ADD or REMOVE`);
    if (!Array.isArray(userIds) || userIds.length === 0) {
      throw badRequest(`elements[${index}].userIds must be a non-empty array`);
    }
    for (const userId of userIds) {
      if (!isRecord(userId) || typeof userId['idValue'] !== 'string' || !(String(userId['idType']) in ID_FORMATS)) {
        throw badRequest(`elements[${index}].userIds holds an entry without a known idType and a string idValue`);
      }
      refuseUnknownFields(userId, new Set(['idType', 'idValue']), `elements[${index}].userIds`);
    }
    return { action, userIds: userIds as UserId[] };
  });
}

export async function startFakeLinkedIn(options: FakeLinkedInOptions): Promise<FakeLinkedIn> {
  const segments = new Map<string, Set<string>>();
  const createdAt = new Map<string, number>();
  const requests: RecordedRequest[] = [];
  const rejectedIdValues = new Set<string>();
  const unmatchedIdValues = new Set<string>();
  const failures = failureQueue<FakeLinkedInFailure, { method: string; url: string }>();
  const adAccount = { id: options.adAccountId ?? '508000123', name: 'Fake LinkedIn ad account', status: 'ACTIVE' };
  const accountUrn = () => `urn:li:sponsoredAccount:${adAccount.id}`;
  let nextSegmentId = 19_000_001;

  /** Problems with one element's values: LinkedIn answers them in that element's status. */
  function elementProblem(userIds: UserId[]): string | null {
    const types = userIds.map((userId) => userId.idType);
    if (new Set(types).size !== types.length) return 'Each idType may appear once per user';
    for (const { idType, idValue } of userIds) {
      if (!ID_FORMATS[idType]!.test(idValue)) return `Invalid ${idType} value`;
      if (rejectedIdValues.has(idValue)) return `The ${idType} value could not be processed`;
    }
    return null;
  }

  function updateUsers(segmentId: string, req: IncomingMessage, body: unknown): Reply {
    if (req.headers['x-restli-method'] !== 'BATCH_CREATE') {
      throw badRequest('Adding users takes a batch: send X-RestLi-Method: BATCH_CREATE');
    }
    const members = segments.get(segmentId);
    const created = createdAt.get(segmentId) ?? 0;
    if (!members || Date.now() - created < (options.segmentReadyAfterMs ?? 0)) {
      throw new LinkedInError(404, `DmpSegment ${segmentId} not found`, { code: 'NOT_FOUND' });
    }
    const elements = parseElements(body).map(({ action, userIds }) => {
      const problem = elementProblem(userIds);
      if (problem) return { status: 400, error: { status: 400, message: problem } };
      for (const { idType, idValue } of userIds) {
        if (action === 'ADD') members.add(`${idType}:${idValue}`);
        else members.delete(`${idType}:${idValue}`);
      }
      return { status: 201 };
    });
    return { status: 200, body: { elements } };
  }

  function createSegment(body: unknown): Reply {
    if (!isRecord(body)) throw badRequest('The request body must be a JSON object');
    refuseUnknownFields(body, SEGMENT_FIELDS, 'the DMP segment');
    const { name, sourcePlatform, account, accessPolicy, type, destinations } = body;
    if (typeof name !== 'string' || name.trim() === '') throw badRequest('name is required');
    if (typeof sourcePlatform !== 'string' || !/^[A-Z][A-Z0-9_]*$/.test(sourcePlatform)) {
      throw badRequest('sourcePlatform must be your partner enum value');
    }
    if (typeof account !== 'string' || !/^urn:li:sponsoredAccount:\d+$/.test(account)) {
      throw badRequest('account must be a sponsoredAccount URN');
    }
    if (account !== accountUrn()) {
      throw new LinkedInError(403, `Not enough permissions to access: dmpSegments.CREATE for ${account}`, {
        code: 'ACCESS_DENIED',
      });
    }
    if (accessPolicy !== undefined && accessPolicy !== 'PRIVATE' && accessPolicy !== 'PUBLIC') {
      throw badRequest('accessPolicy must be PRIVATE or PUBLIC');
    }
    if (type !== 'USER' && type !== 'COMPANY') throw badRequest('type must be USER or COMPANY');
    if (JSON.stringify(destinations) !== JSON.stringify([{ destination: 'LINKEDIN' }])) {
      throw badRequest('destinations must be [{ "destination": "LINKEDIN" }]');
    }
    if (segments.size >= MAX_SEGMENTS) {
      throw new LinkedInError(429, `The ad account already has ${MAX_SEGMENTS} DMP segments`, { code: 'SEGMENT_LIMIT_EXCEEDED' });
    }
    const id = String(nextSegmentId++);
    segments.set(id, new Set());
    createdAt.set(id, Date.now());
    return { status: 201, headers: { [options.idHeader ?? 'x-restli-id']: id } };
  }

  function listSegments(url: URL): Reply {
    if (url.searchParams.get('q') !== 'account') throw badRequest('Finder q=account is required');
    if (url.searchParams.get('account') !== accountUrn()) {
      throw new LinkedInError(403, 'Not enough permissions to access: dmpSegments.FINDER-account', { code: 'ACCESS_DENIED' });
    }
    const count = Number(url.searchParams.get('count') ?? 10);
    const elements = [...segments.keys()].slice(0, count).map((id) => ({ id: Number(id), account: accountUrn(), type: 'USER' }));
    return { status: 200, body: { elements, paging: { start: 0, count, total: segments.size } } };
  }

  function readAdAccount(accountId: string): Reply {
    if (accountId !== adAccount.id) throw new LinkedInError(404, `AdAccount ${accountId} not found`, { code: 'NOT_FOUND' });
    const { name, status } = adAccount;
    return {
      status: 200,
      body: { id: Number(accountId), name, status, type: 'BUSINESS', currency: 'USD', reference: 'urn:li:organization:42' },
    };
  }

  function checkHeaders(req: IncomingMessage): void {
    if (req.headers.authorization !== `Bearer ${options.accessToken}`) {
      throw new LinkedInError(401, 'Invalid access token', { code: 'INVALID_ACCESS_TOKEN', serviceErrorCode: 65600 });
    }
    const version = req.headers['linkedin-version'];
    if (typeof version !== 'string' || !/^\d{6}$/.test(version)) {
      throw new LinkedInError(400, 'A version must be present in the LinkedIn-Version header (YYYYMM)', {
        code: 'VERSION_MISSING',
      });
    }
    const month = Number(version.slice(4));
    if (version < OLDEST_ACTIVE_VERSION || month < 1 || month > 12) {
      throw new LinkedInError(426, `Requested version ${version} is not active`, { code: 'NONEXISTENT_VERSION' });
    }
    if (req.headers['x-restli-protocol-version'] !== '2.0.0') {
      throw badRequest('X-Restli-Protocol-Version: 2.0.0 is required');
    }
    if (req.method === 'POST' && !req.headers['content-type']?.startsWith('application/json')) {
      throw badRequest('The request body must be JSON (content-type: application/json)');
    }
  }

  /** A segment as LinkedIn reports it: `inputCount` on the segment, and on its LINKEDIN destination
   * the status, `matchedCount` (both over the last 7 days: the fake counts all it holds) and
   * `audienceSize`, over everything matched (the fake shows 0 under 300, as LinkedIn's audience
   * counts do). A segment that holds nobody is BUILDING, without counts. */
  function readSegment(segmentId: string): Reply {
    const members = segments.get(segmentId);
    if (!members) throw new LinkedInError(404, `DmpSegment ${segmentId} does not exist`, { code: 'NOT_FOUND' });
    const created = createdAt.get(segmentId) ?? 0;
    const destination = { destination: 'LINKEDIN', destinationSegmentId: `urn:li:adSegment:${segmentId}`, created, lastModified: created };
    const matched = [...members].filter((member) => !unmatchedIdValues.has(member.slice(member.indexOf(':') + 1))).length;
    return {
      status: 200,
      body: {
        id: Number(segmentId),
        name: `Segment ${segmentId}`,
        account: accountUrn(),
        type: 'USER',
        accessPolicy: 'PRIVATE',
        created,
        lastModified: created,
        ...(members.size > 0 ? { inputCount: members.size } : {}),
        destinations: [
          members.size > 0
            ? { ...destination, status: 'READY', matchedCount: matched, audienceSize: matched >= 300 ? matched : 0 }
            : { ...destination, status: 'BUILDING' },
        ],
      },
    };
  }

  function route(req: IncomingMessage, body: unknown): Reply {
    const request = { method: req.method ?? '', url: req.url ?? '' };
    const failure = failures.take(request);
    if (failure) return FAILURES[failure]();

    checkHeaders(req);
    const url = new URL(request.url, 'http://fake');
    const account = /^\/rest\/adAccounts\/(\d+)$/.exec(url.pathname);
    if (req.method === 'GET' && account?.[1]) return readAdAccount(account[1]);
    if (req.method === 'GET' && url.pathname === '/rest/dmpSegments') return listSegments(url);
    const segment = /^\/rest\/dmpSegments\/(\d+)$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && segment) return readSegment(segment);
    if (req.method === 'POST' && url.pathname === '/rest/dmpSegments') {
      if (req.headers['x-restli-method'] !== undefined && req.headers['x-restli-method'] !== 'CREATE') {
        throw badRequest(`${String(req.headers['x-restli-method'])} is not supported on dmpSegments`);
      }
      return createSegment(body);
    }
    const users = /^\/rest\/dmpSegments\/(\d+)\/users$/.exec(url.pathname);
    if (req.method === 'POST' && users?.[1]) return updateUsers(users[1], req, body);
    throw new LinkedInError(404, `No resource at ${req.method} ${url.pathname}`, { code: 'NOT_FOUND' });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const body = parseJson(rawBody);
    const header = (name: string) => {
      const value = req.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: {
        authorization: header('authorization'),
        linkedInVersion: header('linkedin-version'),
        restliProtocolVersion: header('x-restli-protocol-version'),
        restliMethod: header('x-restli-method'),
        contentType: header('content-type'),
      },
      body: body ?? rawBody,
    });

    let reply: Reply;
    try {
      reply = route(req, body);
    } catch (error) {
      if (!(error instanceof LinkedInError)) throw error;
      reply = error.toReply();
    }
    res.writeHead(reply.status, {
      ...(reply.body === undefined ? {} : { 'content-type': 'application/json' }),
      'x-restli-protocol-version': '2.0.0',
      ...reply.headers,
    });
    res.end(reply.body === undefined ? undefined : JSON.stringify(reply.body));
  }

  const server = await serveFake('fake LinkedIn', handle);

  return {
    baseUrl: server.baseUrl,
    adAccount,
    segments,
    requests,
    rejectedIdValues,
    unmatchedIdValues,
    failNext: failures.add,
    close: server.close,
  };
}
