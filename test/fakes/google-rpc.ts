import { randomUUID } from 'node:crypto';
import { isRecord } from './fake-server.js';

// google.rpc.Status answers and strict JSON reading, shared by the fake Google APIs.

const DOMAIN = 'datamanager.googleapis.com';

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const CANONICAL_HTTP: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

export interface Violation {
  field: string;
  description: string;
  reason: string;
}

/** Thrown inside a handler to answer with a google.rpc.Status. */
export class RpcError extends Error {
  constructor(
    readonly status: keyof typeof CANONICAL_HTTP,
    message: string,
    readonly extra: {
      reason?: string;
      violations?: Violation[];
      details?: object[];
      headers?: Record<string, string>;
      /** The Google Ads API details its errors in a GoogleAdsFailure instead. */
      adsErrors?: AdsError[];
    } = {},
  ) {
    super(message);
  }

  toReply(): Reply {
    const details: object[] = this.extra.adsErrors ? [googleAdsFailure(this.extra.adsErrors)] : [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: this.extra.reason ?? this.status,
        domain: DOMAIN,
        metadata: { requestId: randomUUID() },
      },
      ...(this.extra.violations
        ? [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: this.extra.violations }]
        : []),
      ...(this.extra.details ?? []),
    ];
    const code = CANONICAL_HTTP[this.status]!;
    return { status: code, body: { error: { code, message: this.message, status: this.status, details } }, headers: this.extra.headers };
  }
}

export interface AdsError {
  /** E.g. `{ databaseError: 'CONCURRENT_MODIFICATION' }`. */
  errorCode: Record<string, string>;
  message: string;
  /** The operation it concerns. */
  index?: number;
}

export function googleAdsFailure(errors: AdsError[]) {
  return {
    '@type': 'type.googleapis.com/google.ads.googleads.v23.errors.GoogleAdsFailure',
    errors: errors.map(({ errorCode, message, index }) => ({
      errorCode,
      message,
      ...(index === undefined ? {} : { location: { fieldPathElements: [{ fieldName: 'operations', index }] } }),
    })),
    requestId: randomUUID(),
  };
}

/** A Google Ads API error with one GoogleAdsError. */
export const adsError = (status: keyof typeof CANONICAL_HTTP, errorCode: Record<string, string>, message: string) =>
  new RpcError(status, status === 'INVALID_ARGUMENT' ? 'Request contains an invalid argument.' : message, {
    adsErrors: [{ errorCode, message }],
  });

export const invalid = (field: string, description: string, reason = 'INVALID_ARGUMENT') =>
  new RpcError('INVALID_ARGUMENT', 'There was a problem with the request.', { reason, violations: [{ field, description, reason }] });

export const unauthenticated = () =>
  new RpcError(
    'UNAUTHENTICATED',
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
    { reason: 'ACCESS_TOKEN_EXPIRED', headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' } },
  );

/** Refuses fields the message does not have, by the name Google's error would use. */
export function checkKnownFields(value: Record<string, unknown>, known: readonly string[], at: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const where = at ? ` at '${at}'` : '';
      throw new RpcError('INVALID_ARGUMENT', `Invalid JSON payload received. Unknown name "${key}"${where}: Cannot find field.`, {
        violations: [{ field: at, description: `Invalid JSON payload received. Unknown name "${key}"${where}: Cannot find field.`, reason: 'INVALID_ARGUMENT' }],
      });
    }
  }
}

export function requireRecord(value: unknown, field: string, known: readonly string[]): Record<string, unknown> {
  if (!isRecord(value)) throw invalid(field, `${field} is required.`, 'REQUIRED_FIELD_MISSING');
  checkKnownFields(value, known, field);
  return value;
}

export function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(field, `${field} is required.`, 'REQUIRED_FIELD_MISSING');
  return value;
}

