import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { Platform } from '../../generated/prisma/enums.js';
import {
  DestinationError,
  type BatchOutcome,
  type DestinationConnector,
  type EncodedMember,
} from '../destination.js';
import { mappingEncoder } from '../encoding.js';
import { isSha256Hex, sha256Hex } from '../hashing.js';
import { outboundFetch } from '../../infra/address-policy.js';
import { parseJson } from '../../infra/json.js';
import { newestVersion, supportedVersions, type VersionTable } from '../api-versions.js';
import { quoteForeignText } from '../foreign-text.js';
import { platformUrl } from '../platform-url.js';
import { strictConfig } from '../strict-config.js';

/**
 * The LinkedIn Marketing API versions this connector supports, newest first, with LinkedIn's sunset
 * dates as its API Migration Status table gives them: 202603 "March 16, 2027", 202602 "February 15,
 * 2027", 202601 "January 15, 2027", 202511 "November 16, 2026", 202510 "October 15, 2026"; the table
 * has no December 2025 version (https://learn.microsoft.com/en-us/linkedin/marketing/integrations/migrations,
 * checked 2026-12-07). Versions "are supported and stable for a minimum of one year before sunset"
 * (https://learn.microsoft.com/en-us/linkedin/marketing/versioning).
 * LinkedIn has released later versions (its Recent Marketing API Changes page lists "August 2026 -
 * Version 202608 (Latest)"), but no copy of the migrations table read on 2026-12-07 gave their
 * sunset dates, so they are not listed here yet: add them with their dates from that table.
 */
export const LINKEDIN_API_VERSIONS: VersionTable = {
  api: 'LinkedIn Marketing API',
  field: 'apiVersion',
  versions: [
    { version: '202603', sunset: '2027-03-16' },
    { version: '202602', sunset: '2027-02-15' },
    { version: '202601', sunset: '2027-01-15' },
    { version: '202511', sunset: '2026-11-16' },
    { version: '202510', sunset: '2026-10-15' },
  ],
};
const LINKEDIN_VERSIONS = supportedVersions(LINKEDIN_API_VERSIONS) as [string, ...string[]];

/** A LinkedIn destination's settings. */
export const linkedInConfigFields = z.object({
  adAccountId: z
    .string()
    .regex(/^\d+$/, 'adAccountId must be the LinkedIn ad account number (digits only)')
    .describe('The LinkedIn ad account number.'),
  apiVersion: z
    .enum(LINKEDIN_VERSIONS, {
      error: `apiVersion must be a LinkedIn-Version this gateway supports: ${LINKEDIN_VERSIONS.join(', ')}`,
    })
    .default(newestVersion(LINKEDIN_API_VERSIONS))
    .describe('The LinkedIn-Version header (YYYYMM); the newest supported one unless given.'),
  baseUrl: platformUrl('baseUrl', ['https://api.linkedin.com']).default('https://api.linkedin.com'),
  /** The partner value LinkedIn assigns with Audiences API access; only needed to create segments. */
  sourcePlatform: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]*$/, 'sourcePlatform must be the upper-case value LinkedIn gave you, e.g. MY_COMPANY')
    .optional()
    .describe('The partner value LinkedIn gave with Audiences API access; needed only to create segments.'),
  /** LinkedIn asks for a pause between creating a segment and adding users to it. */
  segmentReadyDelayMs: z
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(5_000)
    .describe('Milliseconds to wait after creating a segment before adding users (LinkedIn asks for 5 s).'),
});
export const linkedInConfigSchema = strictConfig(linkedInConfigFields);
export type LinkedInConfig = z.infer<typeof linkedInConfigSchema>;

export const linkedInCredentialsSchema = z.object({
  accessToken: z.string().min(1, 'accessToken is required'),
});
export type LinkedInCredentials = z.infer<typeof linkedInCredentialsSchema>;

export const LINKEDIN_FIELDS = ['SHA256_EMAIL', 'SHA512_EMAIL', 'GOOGLE_AID'] as const;
type LinkedInField = (typeof LINKEDIN_FIELDS)[number];

// LinkedIn's DMP Segment Users page publishes no cap on elements per request (checked 2026-12-07:
// https://learn.microsoft.com/en-us/linkedin/marketing/matched-audiences/create-and-manage-segment-users);
// 5,000 is what partner integrations send, not a LinkedIn figure. The page does publish the pace:
// "a 1 minute limit of 600 requests per user" (member) on /users (500 before the page was revised in
// 2025), answered with HTTP 429 beyond it; the connector relies on the 429, not on the number.
const MAX_ELEMENTS_PER_REQUEST = 5_000;
const REQUEST_TIMEOUT_MS = 60_000;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
const GOOGLE_AID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Ad account statuses under which its audiences can be managed (the others: CANCELED, PENDING_DELETION, REMOVED). */
const USABLE_ACCOUNT_STATUSES = new Set(['ACTIVE', 'DRAFT']);
/** "Starting August 2026, each sponsored account is restricted to a maximum of 1,000 DMP segments
 * ... Requests to the /dmpSegments endpoint from ad accounts that exceed this threshold return a 429
 * error with the code SEGMENT_LIMIT_EXCEEDED. This update applies to all versions" (Recent Marketing
 * API Changes, August 2026: https://learn.microsoft.com/en-us/linkedin/marketing/integrations/recent-changes,
 * checked 2026-12-07). A 429 that waiting cannot cure: the user has to delete segments. */
const MAX_SEGMENTS_PER_ACCOUNT = 1_000;
const SEGMENT_LIMIT_CODE = 'SEGMENT_LIMIT_EXCEEDED';
const TOKEN_MESSAGE = 'LinkedIn rejected the access token: it has expired — reconnect the destination';

/** Emails are trimmed and lowercased before hashing; a stored SHA-256 email can only go out as SHA256_EMAIL. */
function encodeValue(field: LinkedInField, raw: string): string | null {
  const value = raw.trim().toLowerCase();
  switch (field) {
    case 'SHA256_EMAIL':
      return isSha256Hex(value) ? value : EMAIL.test(value) ? sha256Hex(value) : null;
    case 'SHA512_EMAIL':
      return EMAIL.test(value) ? createHash('sha512').update(value, 'utf8').digest('hex') : null;
    case 'GOOGLE_AID':
      return GOOGLE_AID.test(value) ? value : null;
  }
}

const encodeContact = mappingEncoder({
  fields: LINKEDIN_FIELDS,
  encodeValue,
  unknownField: (field) => `LinkedIn has no identifier "${field}"; map to one of ${LINKEDIN_FIELDS.join(', ')}`,
});

const linkedInErrorSchema = z.object({
  message: z.string().optional(),
  code: z.string().optional(),
  serviceErrorCode: z.number().optional(),
});

const batchCreateResultSchema = z.object({
  elements: z.array(z.object({ status: z.number(), error: z.object({ message: z.string().optional() }).optional() })),
});

const adAccountSchema = z.object({ name: z.string(), status: z.string() });
/**
 * A DMP segment. Its status and counts are its destination's (LINKEDIN): "Note that matchedCount
 * only returns matches for the last seven days. audienceSize should be used for available audience
 * for targeting" (DMP Segment Destinations:
 * https://learn.microsoft.com/en-us/linkedin/marketing/matched-audiences/create-and-manage-segment-destinations);
 * the FAQ says to "check the status value from destinations object"
 * (https://learn.microsoft.com/en-us/linkedin/marketing/matched-audiences/matched-audiences-faq).
 * `inputCount`, on the segment, is what it was sent over the same 7 days, and LinkedIn's Postman
 * collection computes "Match Rate ... by rounding matchedCount / inputCount" (step "Monitor Status
 * of the Company DMP Segments", read through its mirror at
 * https://developers.qodex.ai/linkedin-marketing-solutions-versioned-apis/audiences/use-cases-streaming-companies-account-targeting/8-monitor-status-of-the-company-dmp-segments).
 * A segment still BUILDING has no counts yet. All checked 2026-12-07.
 */
const segmentSchema = z.object({
  inputCount: z.number().optional(),
  destinations: z
    .array(
      z.object({
        destination: z.string(),
        status: z.string().optional(),
        audienceSize: z.number().optional(),
        matchedCount: z.number().optional(),
      }),
    )
    .default([]),
});

/** Retry-After in seconds or as an HTTP date; undefined when absent (LinkedIn often leaves it out). */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return ms > 0 ? ms : undefined;
}

interface LinkedInReply {
  headers: Headers;
  json: unknown;
}

export function createLinkedInConnector(config: LinkedInConfig, credentials: LinkedInCredentials): DestinationConnector {
  const restUrl = `${config.baseUrl.replace(/\/+$/, '')}/rest`;
  const accountUrn = `urn:li:sponsoredAccount:${config.adAccountId}`;
  /** Segments this connector created, with when: users sent too early may be dropped by LinkedIn. */
  const createdSegments = new Map<string, number>();

  function fail(
    message: string,
    details: { status?: number; code?: string | number; retryable: boolean; retryAfterMs?: number },
  ): DestinationError {
    const { retryAfterMs: wait, ...rest } = details;
    return new DestinationError(message, { platform: Platform.LINKEDIN, ...rest, ...(wait ? { retryAfterMs: wait } : {}) });
  }

  function toDestinationError(response: Response, body: unknown, notFound?: () => DestinationError): DestinationError {
    const error = linkedInErrorSchema.safeParse(body).data;
    const status = response.status;
    const details = { status, code: error?.code ?? error?.serviceErrorCode };
    if (status === 401) return fail(TOKEN_MESSAGE, { ...details, retryable: false });
    if (status === 403) {
      return fail(
        `LinkedIn refused access: the connected member cannot manage matched audiences on ad account ${config.adAccountId} — ` +
          'reconnect with a member whose role on it is above Viewer, through an app granted the rw_dmp_segments permission',
        { ...details, retryable: false },
      );
    }
    if (status === 404 && notFound) return notFound();
    if (status === 426) {
      return fail(
        `LinkedIn no longer serves API version ${config.apiVersion}: set apiVersion in the destination's config to ${newestVersion(LINKEDIN_API_VERSIONS)}`,
        { ...details, retryable: false },
      );
    }
    if (status === 429 && details.code === SEGMENT_LIMIT_CODE) {
      return fail(
        `LinkedIn allows at most ${MAX_SEGMENTS_PER_ACCOUNT.toLocaleString('en-US')} DMP segments per ad account and ad account ${config.adAccountId} ` +
          'has reached it: delete unused segments in Campaign Manager, or give the sync the id of an existing segment',
        { ...details, retryable: false },
      );
    }
    if (status === 429) {
      const wait = retryAfterMs(response.headers.get('retry-after'));
      const hint = wait ? ` (LinkedIn asked for ${Math.ceil(wait / 1000)} s)` : '';
      return fail(`LinkedIn is rate-limiting this member's requests; the sync will retry${hint}`, {
        ...details,
        retryable: true,
        retryAfterMs: wait,
      });
    }
    if (status >= 500) return fail('LinkedIn had a temporary problem; the sync will retry', { ...details, retryable: true });
    const detail = error?.message ? quoteForeignText(error.message, [credentials.accessToken]) : `HTTP ${status}`;
    return fail(`LinkedIn rejected the request: ${detail}`, { ...details, retryable: false });
  }

  async function callLinkedIn(request: {
    method: 'GET' | 'POST';
    path: string;
    body?: unknown;
    batchCreate?: boolean;
    /** What a 404 means for this call. */
    notFound?: () => DestinationError;
  }): Promise<LinkedInReply> {
    let response: Response;
    let text: string;
    try {
      response = await outboundFetch(`${restUrl}/${request.path}`, {
        method: request.method,
        headers: {
          authorization: `Bearer ${credentials.accessToken}`,
          'linkedin-version': config.apiVersion,
          'x-restli-protocol-version': '2.0.0',
          ...(request.batchCreate ? { 'x-restli-method': 'BATCH_CREATE' } : {}),
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await response.text();
    } catch {
      throw fail('Could not reach LinkedIn (network error or timeout); the sync will retry', { retryable: true });
    }
    const json = parseJson(text);
    if (!response.ok) throw toDestinationError(response, json, request.notFound);
    return { headers: response.headers, json };
  }

  function unexpectedResponse(): DestinationError {
    return fail('LinkedIn returned a response this gateway does not understand', { retryable: false });
  }

  function segmentNotFound(segmentId: string): () => DestinationError {
    return () => {
      if (createdSegments.has(segmentId)) {
        return fail('LinkedIn is still setting up the new segment; the sync will retry shortly', {
          status: 404,
          retryable: true,
          retryAfterMs: config.segmentReadyDelayMs,
        });
      }
      return fail(
        `The LinkedIn segment ${segmentId} does not exist or the connected member cannot access it — check it in Campaign Manager`,
        { status: 404, retryable: false },
      );
    };
  }

  async function sendUsers(action: 'ADD' | 'REMOVE', segmentId: string, members: EncodedMember[]): Promise<BatchOutcome> {
    if (members.length > MAX_ELEMENTS_PER_REQUEST) {
      throw new RangeError(`LinkedIn accepts at most ${MAX_ELEMENTS_PER_REQUEST} users per request, got ${members.length}`);
    }
    const createdAt = createdSegments.get(segmentId);
    if (createdAt !== undefined) await sleep(Math.max(0, createdAt + config.segmentReadyDelayMs - Date.now()));

    const { json } = await callLinkedIn({
      method: 'POST',
      path: `dmpSegments/${encodeURIComponent(segmentId)}/users`,
      batchCreate: true,
      body: {
        elements: members.map((member) => ({
          action,
          userIds: Object.entries(member.identifiers).map(([idType, idValue]) => ({ idType, idValue })),
        })),
      },
      notFound: segmentNotFound(segmentId),
    });
    const result = batchCreateResultSchema.safeParse(json);
    if (!result.success || result.data.elements.length !== members.length) throw unexpectedResponse();

    // A refused user is LinkedIn's per-element status; the rest of the batch still counts.
    const invalidSamples = result.data.elements.flatMap((element, index) => {
      if (element.status >= 200 && element.status < 300) return [];
      const [idType, idValue] = Object.entries(members[index]?.identifiers ?? {})[0] ?? [];
      return [`${idType}:${idValue}: ${element.error?.message ? quoteForeignText(element.error.message, [credentials.accessToken]) : `status ${element.status}`}`];
    });
    return { received: members.length, invalid: invalidSamples.length, invalidSamples };
  }

  return {
    platform: Platform.LINKEDIN,
    maxBatchSize: MAX_ELEMENTS_PER_REQUEST,
    destinationFields: LINKEDIN_FIELDS,

    encode: encodeContact,

    async checkAccess() {
      const accountNotFound = () =>
        fail(`LinkedIn has no ad account ${config.adAccountId} that the connected member can see — check adAccountId`, {
          status: 404,
          retryable: false,
        });
      const { json } = await callLinkedIn({ method: 'GET', path: `adAccounts/${config.adAccountId}`, notFound: accountNotFound });
      const account = adAccountSchema.safeParse(json);
      if (!account.success) throw unexpectedResponse();
      const { name, status } = account.data;
      if (!USABLE_ACCOUNT_STATUSES.has(status)) {
        throw fail(
          `The LinkedIn ad account ${config.adAccountId} (${name}) is ${status}: its matched audiences cannot be updated`,
          { retryable: false },
        );
      }
      // Reading the account's segments proves the token carries the matched-audiences permission too.
      await callLinkedIn({
        method: 'GET',
        path: `dmpSegments?q=account&account=${encodeURIComponent(accountUrn)}&count=1`,
        notFound: accountNotFound,
      });
      return `LinkedIn ad account ${config.adAccountId} (${name}) is ${status} and the access token can manage its matched audiences`;
    },

    async ensureAudience({ platformAudienceId, name }) {
      if (platformAudienceId) return platformAudienceId;
      if (!config.sourcePlatform) {
        throw fail(
          "To create a LinkedIn segment, set sourcePlatform in the destination's config (the partner value LinkedIn " +
            "gave you with Audiences API access), or give the sync the id of an existing DMP segment",
          { retryable: false },
        );
      }
      const { headers } = await callLinkedIn({
        method: 'POST',
        path: 'dmpSegments',
        body: {
          name,
          sourcePlatform: config.sourcePlatform,
          account: accountUrn,
          accessPolicy: 'PRIVATE',
          type: 'USER',
          destinations: [{ destination: 'LINKEDIN' }],
        },
      });
      const id = headers.get('x-restli-id') ?? headers.get('x-linkedin-id');
      if (!id) throw unexpectedResponse();
      createdSegments.set(id, Date.now());
      return id;
    },

    async readAudience(segmentId) {
      const { json } = await callLinkedIn({
        method: 'GET',
        path: `dmpSegments/${encodeURIComponent(segmentId)}`,
        notFound: segmentNotFound(segmentId),
      });
      const segment = segmentSchema.safeParse(json);
      if (!segment.success) throw unexpectedResponse();
      const linkedIn = segment.data.destinations.find((destination) => destination.destination === 'LINKEDIN');
      const size = linkedIn?.audienceSize ?? null;
      const sent = segment.data.inputCount;
      const matched = linkedIn?.matchedCount;
      const matchRate = sent && matched !== undefined ? Math.min(1, matched / sent) : null;
      return { sizeLowerBound: size, sizeUpperBound: size, matchRate, status: linkedIn?.status ?? null, statusDetail: null };
    },

    addMembers: (segmentId, members) => sendUsers('ADD', segmentId, members),
    removeMembers: (segmentId, members) => sendUsers('REMOVE', segmentId, members),
  };
}
