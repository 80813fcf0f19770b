import { createHmac } from 'node:crypto';
import OAuth from 'oauth-1.0a';
import { z } from 'zod';
import { Platform } from '../../generated/prisma/enums.js';
import {
  DestinationError,
  type BatchOutcome,
  type DestinationConnector,
  type EncodedMember,
} from '../destination.js';
import { encodeByRule, mappingEncoder, type FieldRule } from '../encoding.js';
import { outboundFetch } from '../../infra/address-policy.js';
import { parseJson } from '../../infra/json.js';
import { quoteForeignText } from '../foreign-text.js';
import { platformUrl } from '../platform-url.js';
import { strictConfig } from '../strict-config.js';

/** An X destination's settings. */
export const xConfigFields = z.object({
  accountId: z
    .string()
    .regex(/^[0-9a-z]+$/, 'accountId must be the X ads account id, such as 18ce54d4x5t')
    .describe('The X ads account id.'),
  baseUrl: platformUrl('baseUrl', ['https://ads-api.x.com']).default('https://ads-api.x.com'),
});
export const xConfigSchema = strictConfig(xConfigFields);
export type XConfig = z.infer<typeof xConfigSchema>;

const requiredSecret = (name: string) => z.string().min(1, `${name} is required`);

/** The app's consumer key pair and the connected user's access token pair (OAuth 1.0a). */
export const xCredentialsSchema = z.object({
  consumerKey: requiredSecret('consumerKey'),
  consumerSecret: requiredSecret('consumerSecret'),
  accessToken: requiredSecret('accessToken'),
  accessTokenSecret: requiredSecret('accessTokenSecret'),
});
export type XCredentials = z.infer<typeof xCredentialsSchema>;

export const X_FIELDS = ['email', 'phone_number', 'handle', 'twitter_id', 'device_id', 'partner_user_id'] as const;
type XField = (typeof X_FIELDS)[number];

/** X's versions table lists 12.0 (introduced October 27, 2022) with deprecation and end-of-life
 * dates "TBD" (Versions, https://docs.x.com/x-ads-api/fundamentals/versioning, checked 2026-12-07),
 * so the version is not a setting. */
const API_VERSION = '12';
/** POST accounts/:account_id/custom_audiences/:custom_audience_id/users: "The current maximum batch
 * size is 2500" operations, "The max request POST body size this endpoint can accept is 5,000,000
 * bytes", "The rate limits for this endpoint are 1500 per 1 minute window", and "Batch requests
 * fail or succeed together as a group" (Custom Audiences Users, in the Audiences API reference:
 * https://docs.x.com/x-ads-api/audiences/reference; the rate-limit chart of
 * https://docs.x.com/x-ads-api/fundamentals/rate-limiting gives Audience endpoints 1500 per
 * 1-minute window too; both checked 2026-12-07). */
const MAX_OPERATIONS_PER_REQUEST = 2_500;
const MAX_BODY_BYTES = 5_000_000;
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * X's normalization rules; every field but partner_user_id is then SHA-256 hashed ("without a salt",
 * lowercase hex). From "Custom Audiences User Data" (https://docs.x.com/x-ads-api/audiences, checked
 * 2026-12-07): emails "lowercase, remove leading and trailing spaces"; usernames "no @, lowercased and
 * leading and trailing spaces trimmed"; user IDs "Standard integer"; IDFA "lower-cased with dashes",
 * AdID "not capitalized with dashes", Android id "not capitalized without dashes or spaces".
 * X publishes no rule for phone numbers on that page or in the endpoint reference; the digits with
 * the country code (E.164 without the "+") are this gateway's choice, not X's documentation.
 */
const FIELD_RULES: Record<XField, FieldRule> = {
  email: { normalize: (value) => value.trim().toLowerCase(), hashed: true },
  phone_number: { normalize: (value) => value.replace(/\D/g, '').replace(/^0+/, ''), hashed: true },
  handle: { normalize: (value) => value.trim().replace(/^@/, '').toLowerCase(), hashed: true },
  twitter_id: { normalize: (value) => (/^\d+$/.test(value.trim()) ? value.trim() : ''), hashed: true },
  device_id: { normalize: (value) => value.trim().toLowerCase(), hashed: true },
  partner_user_id: { normalize: (value) => value.trim(), hashed: false },
};

const encodeContact = mappingEncoder({
  fields: X_FIELDS,
  encodeValue: (field, raw) => encodeByRule(FIELD_RULES[field], raw),
  unknownField: (field) => `X has no field "${field}"; map to one of ${X_FIELDS.join(', ')}`,
});

type OperationType = 'Update' | 'Delete';

/** One member is one operation, so X's per-operation errors point at exactly one member. */
function toOperation(type: OperationType, member: EncodedMember) {
  const user = Object.fromEntries(Object.entries(member.identifiers).map(([field, value]) => [field, [value]]));
  return { operation_type: type, params: { users: [user] } };
}

/** Splits a batch into the requests X accepts: at most 2,500 operations and 5,000,000 bytes each. */
function splitIntoRequests(type: OperationType, members: EncodedMember[]): EncodedMember[][] {
  const requests: EncodedMember[][] = [];
  let current: EncodedMember[] = [];
  let bytes = 2; // the array's brackets
  for (const member of members) {
    const size = Buffer.byteLength(JSON.stringify(toOperation(type, member))) + 1; // and its comma
    if (current.length === MAX_OPERATIONS_PER_REQUEST || (current.length > 0 && bytes + size > MAX_BODY_BYTES)) {
      requests.push(current);
      current = [];
      bytes = 2;
    }
    current.push(member);
    bytes += size;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

const xErrorSchema = z.object({ code: z.string().optional(), message: z.string().optional() });
const xErrorsSchema = z.object({ errors: z.array(xErrorSchema) });
const operationErrorsSchema = z.object({ operation_errors: z.array(z.unknown()) });
const usersResponseSchema = z.object({ data: z.object({ success_count: z.number(), total_count: z.number() }) });
const createdAudienceSchema = z.object({ data: z.object({ id: z.string() }) });
/** A custom audience (GET accounts/:account_id/custom_audiences/:custom_audience_id, in
 * https://docs.x.com/x-ads-api/audiences/reference): `audience_size` is null until X can tell, and
 * `reasons_not_targetable` says why it cannot be targeted yet (PROCESSING, TOO_SMALL). */
const audienceSchema = z.object({
  data: z.object({
    audience_size: z.number().nullable().optional(),
    targetable: z.boolean().optional(),
    reasons_not_targetable: z.array(z.string()).default([]),
  }),
});
const accountSchema = z.object({ data: z.object({ id: z.string(), name: z.string(), deleted: z.boolean() }) });

type XError = z.infer<typeof xErrorSchema>;

/** The errors X reports for one operation: an entry of `operation_errors` is a list of errors, a
 * single error, or empty for an operation that was fine. */
function errorsOfOperation(entry: unknown): XError[] {
  const candidates = Array.isArray(entry) ? entry : [entry];
  return candidates.flatMap((candidate) => {
    const error = xErrorSchema.safeParse(candidate);
    return error.success && (error.data.code ?? error.data.message) ? [error.data] : [];
  });
}

/** How long until X's rate-limit window resets (`x-rate-limit-reset`, epoch seconds). */
function millisecondsUntilReset(headers: Headers): number | undefined {
  const resetAt = Number(headers.get('x-rate-limit-reset')) * 1000;
  const wait = resetAt - Date.now();
  return Number.isFinite(wait) && wait > 0 ? Math.ceil(wait) : undefined;
}

export function createXConnector(config: XConfig, credentials: XCredentials): DestinationConnector {
  const apiUrl = `${config.baseUrl.replace(/\/+$/, '')}/${API_VERSION}`;
  const accountPath = `accounts/${config.accountId}`;
  const oauth = new OAuth({
    consumer: { key: credentials.consumerKey, secret: credentials.consumerSecret },
    signature_method: 'HMAC-SHA1',
    hash_function: (baseString, key) => createHmac('sha1', key).update(baseString).digest('base64'),
  });
  const token = { key: credentials.accessToken, secret: credentials.accessTokenSecret };
  const secrets = Object.values(credentials);
  const quote = (text: string) => quoteForeignText(text, secrets);

  const fail = (message: string, details: { status?: number; code?: string; retryable: boolean; retryAfterMs?: number }) =>
    new DestinationError(message, { platform: Platform.X, ...details });
  const accountNotFound = `X has no ads account ${config.accountId} that the connected user can access — check the accountId`;

  function toDestinationError(response: Response, json: unknown, notFound: string): DestinationError {
    const errors = xErrorsSchema.safeParse(json).data?.errors ?? [];
    const status = response.status;
    const code = errors[0]?.code;
    const details = { status, ...(code ? { code } : {}) };

    if (status === 401) {
      return fail('X rejected the credentials — reconnect the destination', { ...details, retryable: false });
    }
    // X answers an ads account it does not know with 403 ACCOUNT_NOT_FOUND, not 404 (Error codes and
    // responses: https://docs.x.com/x-ads-api/fundamentals/error-codes-and-responses).
    if (status === 403 && code === 'ACCOUNT_NOT_FOUND') return fail(accountNotFound, { ...details, retryable: false });
    if (status === 403) {
      return fail(
        `X refused access: the connected X user cannot manage audiences on ads account ${config.accountId} — ` +
          'reconnect with a user who has access to it and the Partner Audience Manager permission',
        { ...details, retryable: false },
      );
    }
    if (status === 404) return fail(notFound, { ...details, retryable: false });
    if (status === 429) {
      const retryAfterMs = millisecondsUntilReset(response.headers);
      const hint = retryAfterMs ? ` (X expects capacity back in about ${Math.ceil(retryAfterMs / 1000)} seconds)` : '';
      return fail(`X is rate-limiting this ads account; the sync will retry${hint}`, {
        ...details,
        retryable: true,
        ...(retryAfterMs ? { retryAfterMs } : {}),
      });
    }
    if (status >= 500) return fail('X had a temporary problem; the sync will retry', { ...details, retryable: true });
    const detail = errors.map((error) => error.message ?? error.code).join('; ') || `HTTP ${status}`;
    return fail(`X rejected the request: ${quote(detail)}`, { ...details, retryable: false });
  }

  /** One signed request. Only the query string is signed: OAuth 1.0a leaves JSON bodies out. */
  async function send(
    method: 'GET' | 'POST',
    path: string,
    options: { query?: Record<string, string>; body?: unknown } = {},
  ): Promise<{ response: Response; json: unknown }> {
    // Encoded as OAuth encodes it (RFC 3986), so the URL sent is the URL signed.
    const query = Object.entries(options.query ?? {})
      .map(([key, value]) => `${oauth.percentEncode(key)}=${oauth.percentEncode(value)}`)
      .join('&');
    const url = `${apiUrl}/${path}${query ? `?${query}` : ''}`;
    try {
      const response = await outboundFetch(url, {
        method,
        headers: {
          authorization: oauth.toHeader(oauth.authorize({ url, method }, token)).Authorization,
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      return { response, json: parseJson(await response.text()) };
    } catch {
      throw fail('Could not reach X (network error or timeout); the sync will retry', { retryable: true });
    }
  }

  async function callX(
    method: 'GET' | 'POST',
    path: string,
    notFound: string,
    query?: Record<string, string>,
  ): Promise<unknown> {
    const { response, json } = await send(method, path, { query });
    if (!response.ok) throw toDestinationError(response, json, notFound);
    return json;
  }

  const unexpectedResponse = () =>
    fail('X returned a response this gateway does not understand', { retryable: false });

  /**
   * Sends one batch as one or more requests. X applies a request entirely or not at all, so when
   * it names invalid operations those members are set aside as invalid and the rest is sent again.
   * Requests already applied stay applied if a later one fails: the retried batch repeats them,
   * which is harmless as adding or deleting a user twice changes nothing.
   */
  async function sendMembers(type: OperationType, audienceId: string, members: EncodedMember[]): Promise<BatchOutcome> {
    if (members.length > MAX_OPERATIONS_PER_REQUEST) {
      throw new RangeError(`X accepts at most ${MAX_OPERATIONS_PER_REQUEST} members per batch, got ${members.length}`);
    }
    const path = `${accountPath}/custom_audiences/${encodeURIComponent(audienceId)}/users`;
    const notFound = `The X audience ${audienceId} does not exist or the connected user cannot access it — check it in X Audience Manager`;
    const outcome = { received: 0, invalid: 0, invalidSamples: [] as string[] } satisfies BatchOutcome;

    for (let pending of splitIntoRequests(type, members)) {
      while (pending.length > 0) {
        const operations = pending.map((member) => toOperation(type, member));
        const { response, json } = await send('POST', path, { body: operations });
        if (response.ok) {
          const counts = usersResponseSchema.safeParse(json);
          if (!counts.success) throw unexpectedResponse();
          const { success_count: succeeded, total_count: total } = counts.data.data;
          if (succeeded !== total || total !== operations.length) {
            throw fail(`X processed ${succeeded} of ${operations.length} audience changes; the sync will retry`, {
              status: response.status,
              retryable: true,
            });
          }
          outcome.received += total;
          break;
        }
        const rejected = (operationErrorsSchema.safeParse(json).data?.operation_errors ?? []).map(errorsOfOperation);
        const accepted = pending.filter((_, index) => (rejected[index] ?? []).length === 0);
        if (accepted.length === pending.length) throw toDestinationError(response, json, notFound);
        pending.forEach((member, index) => {
          const errors = rejected[index] ?? [];
          if (errors.length === 0) return;
          const [field, value] = Object.entries(member.identifiers)[0] ?? ['', ''];
          outcome.received++;
          outcome.invalid++;
          outcome.invalidSamples.push(`${field} ${value}: ${quote(errors.map((e) => e.message ?? e.code).join('; '))}`);
        });
        pending = accepted;
      }
    }
    return outcome;
  }

  return {
    platform: Platform.X,
    maxBatchSize: MAX_OPERATIONS_PER_REQUEST,
    destinationFields: X_FIELDS,

    encode: encodeContact,

    async checkAccess() {
      const json = await callX('GET', accountPath, accountNotFound);
      const account = accountSchema.safeParse(json);
      if (!account.success) throw unexpectedResponse();
      const { id, name, deleted } = account.data.data;
      if (deleted) {
        throw fail(`The X ads account ${id} (${name}) is deleted: its audiences cannot be updated`, { retryable: false });
      }
      return `X ads account ${id} (${name}) is reachable and the credentials work`;
    },

    async ensureAudience({ platformAudienceId, name }) {
      if (platformAudienceId) return platformAudienceId;
      // X takes the new audience's parameters in the query string, not in a body.
      const json = await callX('POST', `${accountPath}/custom_audiences`, accountNotFound, { name });
      const created = createdAudienceSchema.safeParse(json);
      if (!created.success) throw unexpectedResponse();
      return created.data.data.id;
    },

    async readAudience(audienceId) {
      const notFound = `The X audience ${audienceId} does not exist or the connected user cannot access it — check it in X Audience Manager`;
      const json = await callX('GET', `${accountPath}/custom_audiences/${encodeURIComponent(audienceId)}`, notFound);
      const audience = audienceSchema.safeParse(json);
      if (!audience.success) throw unexpectedResponse();
      const { audience_size: size, targetable, reasons_not_targetable: reasons } = audience.data.data;
      return {
        sizeLowerBound: size ?? null,
        sizeUpperBound: size ?? null,
        matchRate: null,
        status: targetable === undefined ? null : targetable ? 'TARGETABLE' : 'NOT_TARGETABLE',
        statusDetail: reasons.length > 0 ? reasons.join(', ') : null,
      };
    },

    addMembers: (audienceId, members) => sendMembers('Update', audienceId, members),
    removeMembers: (audienceId, members) => sendMembers('Delete', audienceId, members),
  };
}
