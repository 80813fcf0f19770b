import { z } from 'zod';
import { Platform } from '../../generated/prisma/enums.js';
import { DestinationError } from '../destination.js';
import { quoteForeignText } from '../foreign-text.js';

// Google APIs answer errors with a google.rpc.Status: { error: { code, message, status, details[] } }.

const googleAdsErrorSchema = z.object({
  errorCode: z.record(z.string(), z.string()).default({}),
  message: z.string().default(''),
  location: z
    .object({ fieldPathElements: z.array(z.object({ fieldName: z.string(), index: z.number().optional() })).default([]) })
    .optional(),
  details: z.object({ quotaErrorDetails: z.object({ retryDelay: z.string().optional() }).optional() }).optional(),
});

const detailSchema = z.looseObject({
  '@type': z.string(),
  reason: z.string().optional(),
  retryDelay: z.string().optional(),
  fieldViolations: z
    .array(z.object({ field: z.string().optional(), description: z.string().optional(), reason: z.string().optional() }))
    .optional(),
  /** The Google Ads API's GoogleAdsFailure. */
  errors: z.array(googleAdsErrorSchema).optional(),
});

const rpcStatusBodySchema = z.object({
  code: z.number().optional(),
  message: z.string().default(''),
  status: z.string().optional(),
  details: z.array(detailSchema).default([]),
});
const rpcStatusSchema = z.object({ error: rpcStatusBodySchema });

interface FieldViolation {
  field?: string;
  description?: string;
  reason?: string;
}

export interface RpcStatus {
  /** The canonical code name, e.g. `INVALID_ARGUMENT`. */
  status: string | undefined;
  message: string;
  /** ErrorInfo reasons, field-violation reasons and Google Ads error codes, e.g. `SERVICE_DISABLED`,
   * `INVALID_SHA256_FORMAT`, `CONCURRENT_MODIFICATION`. */
  reasons: string[];
  violations: FieldViolation[];
  /** RetryInfo.retryDelay, in milliseconds. */
  retryDelayMs: number | undefined;
}

const isType = (detail: { '@type': string }, name: string) => detail['@type'].endsWith(`google.rpc.${name}`);

/** A protobuf Duration in JSON ("1s", "0.250s") in milliseconds. */
function durationMs(value: string | undefined): number | undefined {
  const seconds = /^(\d+(?:\.\d+)?)s$/.exec(value ?? '')?.[1];
  return seconds === undefined ? undefined : Math.ceil(Number(seconds) * 1000);
}

export interface GoogleAdsError {
  /** The error code's value, e.g. `CONCURRENT_MODIFICATION`. */
  code: string | undefined;
  message: string;
  /** The index of the operation it concerns, in a partial failure. */
  operationIndex: number | undefined;
  retryDelayMs: number | undefined;
}

/** The errors of the GoogleAdsFailure details of a google.rpc.Status (the `error` member's value). */
export function googleAdsErrors(status: unknown): GoogleAdsError[] {
  const details = rpcStatusBodySchema.safeParse(status).data?.details ?? [];
  return details.flatMap((detail) =>
    isGoogleAdsFailure(detail)
      ? (detail.errors ?? []).map((error) => ({
          code: Object.values(error.errorCode)[0],
          message: error.message,
          operationIndex: error.location?.fieldPathElements.find((element) => element.fieldName === 'operations')?.index,
          retryDelayMs: durationMs(error.details?.quotaErrorDetails?.retryDelay),
        }))
      : [],
  );
}

const isGoogleAdsFailure = (detail: { '@type': string }) => detail['@type'].endsWith('.errors.GoogleAdsFailure');

export function parseRpcStatus(body: unknown): RpcStatus | undefined {
  const parsed = rpcStatusSchema.safeParse(body);
  if (!parsed.success) return undefined;
  const { status, message, details } = parsed.data.error;
  const adsErrors = googleAdsErrors(parsed.data.error);
  const violations = [
    ...details.filter((d) => isType(d, 'BadRequest')).flatMap((d) => d.fieldViolations ?? []),
    ...adsErrors.map((error) => ({ description: error.message, reason: error.code })),
  ];
  return {
    status,
    message,
    reasons: [
      ...details.filter((d) => isType(d, 'ErrorInfo')).flatMap((d) => (d.reason ? [d.reason] : [])),
      ...violations.flatMap((v) => (v.reason ? [v.reason] : [])),
    ],
    violations,
    retryDelayMs:
      details.filter((d) => isType(d, 'RetryInfo')).map((d) => durationMs(d.retryDelay))[0] ??
      adsErrors.find((error) => error.retryDelayMs !== undefined)?.retryDelayMs,
  };
}

/** What the error messages name: the account and, for member uploads, the list. */
export interface ErrorContext {
  /** "the Data Manager API" or "the Google Ads API". */
  api: string;
  /** E.g. "Google Ads account 1234567890". */
  account: string;
  listId?: string;
  /** Secrets to blank out of anything Google echoes back. */
  secrets: string[];
}

const MAX_VIOLATIONS_SHOWN = 3;
const RETRYABLE_STATUSES = new Set(['UNAVAILABLE', 'INTERNAL', 'DEADLINE_EXCEEDED', 'ABORTED', 'UNKNOWN']);

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

function describeViolations(violations: FieldViolation[], secrets: string[]): string {
  return violations
    .slice(0, MAX_VIOLATIONS_SHOWN)
    .map((v) => quoteForeignText([v.field, v.description].filter(Boolean).join(': ') + (v.reason ? ` (${v.reason})` : ''), secrets))
    .join('; ');
}

/** Maps a failed Google API response to an error a marketer can act on, retryable when waiting helps. */
export function toDestinationError(response: Response, body: unknown, context: ErrorContext): DestinationError {
  const rpc = parseRpcStatus(body);
  const httpStatus = response.status;
  const status = rpc?.status;
  const reasons = new Set(rpc?.reasons ?? []);
  const fail = (message: string, retryable: boolean, retryAfterMs?: number) =>
    new DestinationError(message, {
      platform: Platform.GOOGLE,
      status: httpStatus,
      code: status ?? httpStatus,
      retryable,
      ...(retryAfterMs ? { retryAfterMs } : {}),
    });
  const googleSaid = rpc?.message ? ` (Google said: ${quoteForeignText(rpc.message, context.secrets)})` : '';
  const list = context.listId ? `Customer Match list ${context.listId}` : 'the Customer Match list';

  const developerTokenReason = [...reasons].find((reason) => reason.startsWith('DEVELOPER_TOKEN'));
  const developerTokenProblem = developerTokenReason && quoteForeignText(developerTokenReason, context.secrets);
  if (developerTokenProblem) {
    return fail(
      `Google rejected the developer token (${developerTokenProblem}) — check developerToken in the destination's credentials`,
      false,
    );
  }
  if (httpStatus === 401 || status === 'UNAUTHENTICATED') {
    return fail('Google rejected the credentials: the access token is invalid or has expired — reconnect the destination', false);
  }
  if (reasons.has('ACCESS_TOKEN_SCOPE_INSUFFICIENT')) {
    return fail(
      'Google rejected the credentials: they were not granted the scope this API needs — reconnect the destination and allow it',
      false,
    );
  }
  if (reasons.has('SERVICE_DISABLED')) {
    return fail(
      `${capitalize(context.api)} is not enabled in the Google Cloud project of the OAuth client — enable it there, then try again`,
      false,
    );
  }
  if (httpStatus === 403 || status === 'PERMISSION_DENIED') {
    return fail(
      `Google refused access: the connected Google account cannot manage Customer Match lists of ${context.account} — ` +
        `give it access there, or set loginAccount to the manager account it signs in with${googleSaid}`,
      false,
    );
  }
  if (reasons.has('CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE')) {
    return fail(
      'Google no longer lets this developer token use Customer Match through the Google Ads API — ' +
        'switch the destination to the Data Manager API (leave out api: ADS_API)',
      false,
    );
  }
  if (httpStatus === 429 || status === 'RESOURCE_EXHAUSTED' || reasons.has('RESOURCE_TEMPORARILY_EXHAUSTED')) {
    const retryAfterSeconds = Number(response.headers.get('retry-after'));
    const retryAfterMs = rpc?.retryDelayMs ?? (retryAfterSeconds > 0 ? retryAfterSeconds * 1000 : undefined);
    return fail(`Google is rate-limiting requests to ${context.api}; the sync will retry later`, true, retryAfterMs);
  }
  if (status === 'ABORTED' || reasons.has('CONCURRENT_MODIFICATION')) {
    return fail(`Google reported a concurrent change to ${list}; the sync will retry`, true);
  }
  if (httpStatus >= 500 || (status !== undefined && RETRYABLE_STATUSES.has(status))) {
    return fail('Google had a temporary problem; the sync will retry', true);
  }
  if (reasons.has('TERMS_AND_CONDITIONS_NOT_SIGNED')) {
    return fail(
      `Google says the Customer Match terms are not accepted for ${context.account} — accept them in Google Ads ` +
        '(Tools › Shared library › Audience manager), then run the sync again',
      false,
    );
  }
  const unknownList = reasons.has('INVALID_USER_LIST_ID') || reasons.has('USER_LIST_DOES_NOT_EXIST');
  if (unknownList || httpStatus === 404 || status === 'NOT_FOUND') {
    return fail(
      `Google does not know ${list} in ${context.account} — check the sync's platformAudienceId and the destination's account`,
      false,
    );
  }
  if (reasons.has('INVALID_USER_LIST_TYPE')) {
    return fail(
      `${list} takes another kind of identifier than this sync sends (contact details or mobile ids) — ` +
        'map the fields the list was created for, or use another list',
      false,
    );
  }
  if (status === 'ALREADY_EXISTS' || reasons.has('NAME_ALREADY_USED')) {
    return fail(
      `Google refused to create the list: one with this name already exists in ${context.account} — set its id as ` +
        "the sync's platformAudienceId, or give the sync another platformAudienceName",
      false,
    );
  }
  const violations = describeViolations(rpc?.violations ?? [], context.secrets);
  const message = rpc?.message ? quoteForeignText(rpc.message, context.secrets) : `HTTP ${httpStatus}`;
  const detail = [message, violations].filter(Boolean).join(' — ');
  return fail(`Google rejected the request: ${detail}`, false);
}
