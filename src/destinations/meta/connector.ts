import { z } from 'zod';
import { Platform } from '../../generated/prisma/enums.js';
import {
  DestinationError,
  type BatchOutcome,
  type DestinationConnector,
  type EncodedMember,
  type UploadSession,
} from '../destination.js';
import { encodeByRule, mappingEncoder, type FieldRule } from '../encoding.js';
import { sha256Hex } from '../hashing.js';
import { outboundFetch } from '../../infra/address-policy.js';
import { parseJson } from '../../infra/json.js';
import { newestVersion, supportedVersions, type VersionTable } from '../api-versions.js';
import { quoteForeignText } from '../foreign-text.js';
import { platformUrl } from '../platform-url.js';
import { strictConfig } from '../strict-config.js';

/**
 * The Marketing API versions this connector supports, newest first, with the dates Meta switches
 * them off, as Meta's Marketing API version history gives them (Release Date / Expiration Date):
 * v27.0 November 4, 2026 / TBD, v26.0 July 29, 2026 / TBD, v25.0 February 18, 2026 / February 23, 2027,
 * v24.0 October 8, 2025 / November 10, 2026, v23.0 May 29, 2025 / June 9, 2026, v22.0 January 21,
 * 2025 / February 19, 2026
 * (https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions,
 * checked 2026-12-07). Marketing API versions expire sooner than the Graph API versions of the same
 * number (Graph API v25.0 lasts until July 29, 2028): this table is the one that applies to custom audiences.
 */
export const META_API_VERSIONS: VersionTable = {
  api: 'Meta API',
  field: 'apiVersion',
  versions: [
    { version: 'v27.0', sunset: null },
    { version: 'v26.0', sunset: null },
    { version: 'v25.0', sunset: '2027-02-23' },
    { version: 'v24.0', sunset: '2026-11-10' },
    { version: 'v23.0', sunset: '2026-06-09' },
    { version: 'v22.0', sunset: '2026-02-19' },
  ],
};
const META_VERSIONS = supportedVersions(META_API_VERSIONS) as [string, ...string[]];

/** A Meta destination's settings: the ad account and, rarely, the API version or root. */
export const metaConfigFields = z.object({
  adAccountId: z
    .string()
    .regex(/^(act_)?\d+$/, 'adAccountId must be the ad account number, optionally prefixed with act_')
    .describe('The ad account number, with or without its act_ prefix.'),
  apiVersion: z
    .enum(META_VERSIONS, {
      error: `apiVersion must be a Marketing API version this gateway supports: ${META_VERSIONS.join(', ')}`,
    })
    .default(newestVersion(META_API_VERSIONS))
    .describe('The Marketing API version; the newest supported one unless given.'),
  baseUrl: platformUrl('baseUrl', ['https://graph.facebook.com'])
    .default('https://graph.facebook.com')
    .describe("The Graph API's root URL."),
});
export const metaConfigSchema = strictConfig(metaConfigFields);
export type MetaConfig = z.infer<typeof metaConfigSchema>;

export const metaCredentialsSchema = z.object({
  accessToken: z.string().min(1, 'accessToken is required').describe('A system-user or user access token with ads_management.'),
});
export type MetaCredentials = z.infer<typeof metaCredentialsSchema>;

export const META_FIELDS = ['EMAIL', 'PHONE', 'FN', 'LN', 'ZIP', 'COUNTRY', 'MADID', 'EXTERN_ID'] as const;
type MetaField = (typeof META_FIELDS)[number];

const MAX_ROWS_PER_REQUEST = 10_000;
const REQUEST_TIMEOUT_MS = 60_000;
const THROTTLE_CODES = new Set([4, 17, 613, 80003]);
const AUDIENCE_DELETED_CODE = 1487366;
/** Meta keeps custom audiences above a minimum size and refuses removals that would shrink one
 * further. Recorded answers carry code 200 (which alone means a permissions error), subcode 1870047
 * and error_user_title "Audience Size too Low": the subcode and title decide before the code. */
const AUDIENCE_TOO_SMALL_SUBCODE = 1870047;
const AUDIENCE_TOO_SMALL_TITLE = 'audience size too low';
/** Since 2025-09-02 an audience Meta flags as implying health or financial status has
 * operation_status 471, and adding or removing its users fails with subcode 1713230, title
 * "Audience Upload Blocked" (Custom Audience Users reference:
 * https://developers.facebook.com/documentation/ads-commerce/marketing-api/reference/custom-audience/users). */
const FLAGGED_AUDIENCE_SUBCODE = 1713230;
const FLAGGED_AUDIENCE_TITLE = 'audience upload blocked';
/** Our code for the too-small refusal, so the removal path can tell it from other failures. */
const AUDIENCE_TOO_SMALL_REFUSAL = 'AUDIENCE_TOO_SMALL';
const REMOVAL_REFUSED =
  'Meta refused to remove these members: the audience would become too small (Meta keeps custom audiences ' +
  'above about 100 people). They stay listed for removal and later runs try again; adds are not affected.';
const AUDIENCE_FLAGGED =
  'Meta has blocked all changes to this audience: it flagged the audience as possibly implying health or ' +
  'financial status (operation status 471), and adds and removes fail until the restriction is resolved. ' +
  'Meta expects you to appeal the restriction in Ads Manager (Audiences), or to create a new audience from data ' +
  'that implies no such status and give its id to the sync as platformAudienceId. Runs fail until then.';

const normalizeName = (value: string) => value.normalize('NFC').toLowerCase().replace(/[^\p{L}\p{M}]/gu, '');

/** Meta's normalization rules; `hashed: false` fields are sent as normalized plain text. */
const FIELD_RULES: Record<MetaField, FieldRule> = {
  EMAIL: { normalize: (value) => value.trim().toLowerCase(), hashed: true },
  PHONE: { normalize: (value) => value.replace(/\D/g, '').replace(/^0+/, ''), hashed: true },
  FN: { normalize: normalizeName, hashed: true },
  LN: { normalize: normalizeName, hashed: true },
  ZIP: { normalize: (value) => value.toLowerCase().replace(/[\s-]/g, ''), hashed: true },
  COUNTRY: { normalize: (value) => (/^[a-z]{2}$/i.test(value.trim()) ? value.trim().toLowerCase() : ''), hashed: true },
  MADID: { normalize: (value) => value.trim().toLowerCase(), hashed: false },
  EXTERN_ID: { normalize: (value) => value, hashed: false },
};

const encodeContact = mappingEncoder({
  fields: META_FIELDS,
  encodeValue: (field, raw) => encodeByRule(FIELD_RULES[field], raw),
  unknownField: (field) => `Meta has no field "${field}"; map to one of ${META_FIELDS.join(', ')}`,
});

// Meta's session_id is a 64-bit integer; 13 hex digits (52 bits) stay exact as a JS number.
function metaSessionId(uploadId: string): number {
  return Number.parseInt(sha256Hex(uploadId).slice(0, 13), 16);
}

function buildUsersBody(members: EncodedMember[], session: UploadSession) {
  const schema = META_FIELDS.filter((field) => members.some((member) => member.identifiers[field] !== undefined));
  return {
    payload: {
      schema,
      data: members.map((member) => schema.map((field) => member.identifiers[field] ?? '')),
    },
    session: {
      session_id: metaSessionId(session.id),
      batch_seq: session.batchSeq,
      last_batch_flag: session.lastBatch,
      estimated_num_total: session.estimatedTotal,
    },
  };
}

const graphErrorSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string().optional(),
    code: z.number().optional(),
    error_subcode: z.number().optional(),
    error_user_title: z.string().optional(),
    fbtrace_id: z.string().optional(),
    is_transient: z.boolean().optional(),
  }),
});

const businessUseCaseUsageSchema = z.record(
  z.string(),
  z.array(z.object({ estimated_time_to_regain_access: z.number().optional() })),
);

const createdAudienceSchema = z.object({ id: z.string() });

/** Meta's `account_status` of an ad account in good standing (2 disabled, 3 unsettled, 7 in review…). */
const ACTIVE_AD_ACCOUNT = 1;
const adAccountSchema = z.object({ name: z.string(), account_status: z.number() });

/** A custom audience's counts and statuses. Meta gives the matched size as a range, and -1 when
 * it is too small to tell (Custom Audience reference:
 * https://developers.facebook.com/docs/marketing-api/reference/custom-audience#Reading). */
const AUDIENCE_FIELDS = 'approximate_count_lower_bound,approximate_count_upper_bound,operation_status,delivery_status';
const statusSchema = z.object({ code: z.number(), description: z.string().optional() }).optional();
const audienceSchema = z.object({
  approximate_count_lower_bound: z.number().optional(),
  approximate_count_upper_bound: z.number().optional(),
  operation_status: statusSchema,
  delivery_status: statusSchema,
});
const count = (value: number | undefined) => (value === undefined || value < 0 ? null : value);

const usersResponseSchema = z.object({
  num_received: z.number(),
  num_invalid_entries: z.number(),
  invalid_entry_samples: z.record(z.string(), z.string()).default({}),
});

function minutesUntilAccessRegained(usageHeader: string | null): number {
  const usage = businessUseCaseUsageSchema.safeParse(parseJson(usageHeader ?? '')).data ?? {};
  const minutes = Object.values(usage).flatMap((entries) => entries.map((e) => e.estimated_time_to_regain_access ?? 0));
  return Math.max(0, ...minutes);
}

function toDestinationError(response: Response, body: unknown, accessToken: string): DestinationError {
  const error = graphErrorSchema.safeParse(body).data?.error;
  const status = response.status;
  const code = error?.code;
  const retryAfterSeconds = Number(response.headers.get('retry-after'));
  const fail = (message: string, retryable: boolean, retryAfterMs?: number) =>
    new DestinationError(message, {
      platform: Platform.META,
      status,
      code,
      retryable,
      ...(retryAfterMs ? { retryAfterMs } : {}),
    });

  // The subcode and user title say what happened; the top-level code only which family it is in.
  const subcode = error?.error_subcode;
  const title = error?.error_user_title?.trim().toLowerCase();
  if (subcode === AUDIENCE_TOO_SMALL_SUBCODE || title === AUDIENCE_TOO_SMALL_TITLE) {
    return new DestinationError(REMOVAL_REFUSED, {
      platform: Platform.META,
      status,
      code: AUDIENCE_TOO_SMALL_REFUSAL,
      retryable: false,
    });
  }
  if (subcode === FLAGGED_AUDIENCE_SUBCODE || title === FLAGGED_AUDIENCE_TITLE) {
    return new DestinationError(AUDIENCE_FLAGGED, { platform: Platform.META, status, code: subcode, retryable: false });
  }
  if (code === AUDIENCE_DELETED_CODE || subcode === AUDIENCE_DELETED_CODE) {
    return fail('The Meta audience was deleted — pick or create another audience for this sync', false);
  }
  if (code === 100 && subcode === 33) {
    return fail(
      'The Meta audience does not exist or the connected user cannot access it — check the audience in Ads Manager',
      false,
    );
  }
  if (code === 190) {
    return fail('Meta rejected the access token: it has expired or is invalid — reconnect the destination', false);
  }
  if (code === 10 || (code !== undefined && code >= 200 && code <= 299)) {
    return fail(
      'Meta refused access: the connected Meta user lacks permission to manage custom audiences on this ad account — ' +
        'reconnect with a user who has ads_management access to it',
      false,
    );
  }
  if (status === 429 || (code !== undefined && THROTTLE_CODES.has(code))) {
    const minutes = minutesUntilAccessRegained(response.headers.get('x-business-use-case-usage'));
    const hint = minutes > 0 ? ` (Meta expects access back in about ${minutes} minutes)` : '';
    const retryAfterMs = minutes > 0 ? minutes * 60_000 : retryAfterSeconds > 0 ? retryAfterSeconds * 1000 : undefined;
    return fail(`Meta is rate-limiting this ad account; the sync will retry later${hint}`, true, retryAfterMs);
  }
  if (status >= 500 || error?.is_transient === true) {
    return fail('Meta had a temporary problem; the sync will retry', true);
  }
  const detail = error ? quoteForeignText(error.message, [accessToken]) : `HTTP ${status}`;
  const trace = error?.fbtrace_id ? ` (Meta trace id ${quoteForeignText(error.fbtrace_id, [accessToken])})` : '';
  return fail(`Meta rejected the request: ${detail}${trace}`, false);
}

export function createMetaConnector(config: MetaConfig, credentials: MetaCredentials): DestinationConnector {
  const graphUrl = `${config.baseUrl.replace(/\/+$/, '')}/${config.apiVersion}`;
  const adAccountPath = `act_${config.adAccountId.replace(/^act_/, '')}`;

  /** Reads (GET, fields in the query string) or writes (payload in the JSON body, never the URL). */
  async function callGraph(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    let text: string;
    try {
      response = await outboundFetch(`${graphUrl}/${path}`, {
        method,
        headers: {
          authorization: `Bearer ${credentials.accessToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await response.text();
    } catch {
      throw new DestinationError('Could not reach Meta (network error or timeout); the sync will retry', {
        platform: Platform.META,
        retryable: true,
      });
    }
    const json = parseJson(text);
    if (!response.ok) throw toDestinationError(response, json, credentials.accessToken);
    return json;
  }

  function unexpectedResponse(): DestinationError {
    return new DestinationError('Meta returned a response this gateway does not understand', {
      platform: Platform.META,
      retryable: false,
    });
  }

  async function sendMembers(
    method: 'POST' | 'DELETE',
    audienceId: string,
    members: EncodedMember[],
    session: UploadSession,
  ): Promise<BatchOutcome> {
    if (members.length > MAX_ROWS_PER_REQUEST) {
      throw new RangeError(`Meta accepts at most ${MAX_ROWS_PER_REQUEST} members per request, got ${members.length}`);
    }
    let json: unknown;
    try {
      json = await callGraph(method, `${encodeURIComponent(audienceId)}/users`, buildUsersBody(members, session));
    } catch (error) {
      if (method === 'DELETE' && error instanceof DestinationError && error.details.code === AUDIENCE_TOO_SMALL_REFUSAL) {
        return { received: 0, invalid: 0, invalidSamples: [], refused: REMOVAL_REFUSED };
      }
      throw error;
    }
    const result = usersResponseSchema.safeParse(json);
    if (!result.success) throw unexpectedResponse();
    return {
      received: result.data.num_received,
      invalid: result.data.num_invalid_entries,
      invalidSamples: Object.entries(result.data.invalid_entry_samples).map(([value, reason]) =>
        quoteForeignText(`${value}: ${reason}`, [credentials.accessToken]),
      ),
    };
  }

  return {
    platform: Platform.META,
    maxBatchSize: MAX_ROWS_PER_REQUEST,
    destinationFields: META_FIELDS,

    encode: encodeContact,

    async checkAccess() {
      const json = await callGraph('GET', `${adAccountPath}?fields=name,account_status`);
      const account = adAccountSchema.safeParse(json);
      if (!account.success) throw unexpectedResponse();
      const { name, account_status: status } = account.data;
      if (status !== ACTIVE_AD_ACCOUNT) {
        throw new DestinationError(
          `The Meta ad account ${adAccountPath} (${name}) is not active (status ${status}): custom audiences cannot be updated until it is`,
          { platform: Platform.META, retryable: false },
        );
      }
      return `Meta ad account ${adAccountPath} (${name}) is active and the access token works`;
    },

    async ensureAudience({ platformAudienceId, name }) {
      if (platformAudienceId) return platformAudienceId;
      const json = await callGraph('POST', `${adAccountPath}/customaudiences`, {
        name,
        subtype: 'CUSTOM',
        customer_file_source: 'USER_PROVIDED_ONLY',
        description: 'Kept in sync by the audience sync gateway',
      });
      const created = createdAudienceSchema.safeParse(json);
      if (!created.success) throw unexpectedResponse();
      return created.data.id;
    },

    async readAudience(audienceId) {
      const json = await callGraph('GET', `${encodeURIComponent(audienceId)}?fields=${AUDIENCE_FIELDS}`);
      const audience = audienceSchema.safeParse(json);
      if (!audience.success) throw unexpectedResponse();
      const { operation_status: operation, delivery_status: delivery } = audience.data;
      return {
        sizeLowerBound: count(audience.data.approximate_count_lower_bound),
        sizeUpperBound: count(audience.data.approximate_count_upper_bound),
        // Meta does not say how many of the rows sent it matched.
        matchRate: null,
        status: operation ? `${operation.code}${operation.description ? ` ${operation.description}` : ''}` : null,
        statusDetail: delivery?.description ?? null,
      };
    },

    addMembers: (audienceId, members, session) => sendMembers('POST', audienceId, members, session),
    removeMembers: (audienceId, members, session) => sendMembers('DELETE', audienceId, members, session),
  };
}
