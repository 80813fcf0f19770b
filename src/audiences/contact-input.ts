import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { isSha256Hex } from '../destinations/hashing.js';

/** A member as a caller sends it. */
export interface ContactInput {
  email?: string | null;
  phone?: string | null;
  firstName?: string | null;
  lastName?: string | null;
  country?: string | null;
  zip?: string | null;
  externalId?: string | null;
  mobileAdId?: string | null;
  attributes?: unknown;
}

/** A contact ready to store: identifiers normalized once, at the door, so every destination
 * derives its own format from the same clean values. */
export interface NormalizedContact {
  key: string;
  email: string | null;
  phone: string | null;
  firstName: string | null;
  lastName: string | null;
  country: string | null;
  zip: string | null;
  externalId: string | null;
  mobileAdId: string | null;
  attributes: Record<string, unknown>;
}

export type NormalizeResult = { ok: true; contact: NormalizedContact } | { ok: false; field: string; message: string };

const MAX_FIELD_LENGTH = 255;
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function clean(value: string | null | undefined): string | null {
  const trimmed = value?.trim();
  return trimmed ? trimmed : null;
}

/** Whether a parsed JSON value holds Infinity (a literal like 1e400 parses to it; JSON stores it as null). */
function holdsNonFiniteNumber(value: unknown): boolean {
  const pending = [value];
  while (pending.length > 0) {
    const current = pending.pop();
    if (typeof current === 'number' && !Number.isFinite(current)) return true;
    if (typeof current === 'object' && current !== null) pending.push(...Object.values(current));
  }
  return false;
}

/** Validates and normalizes one member. Pre-hashed emails and phones (64 lowercase hex) are
 * kept as they are. */
export function normalizeContact(input: ContactInput): NormalizeResult {
  for (const field of ['email', 'phone', 'firstName', 'lastName', 'country', 'zip', 'externalId', 'mobileAdId'] as const) {
    if ((input[field]?.length ?? 0) > MAX_FIELD_LENGTH) {
      return { ok: false, field, message: `must be at most ${MAX_FIELD_LENGTH} characters` };
    }
  }
  const country = clean(input.country)?.toUpperCase() ?? null;
  if (country && !/^[A-Z]{2}$/.test(country)) {
    return { ok: false, field: 'country', message: 'must be an ISO 3166 alpha-2 code such as "US"' };
  }

  const email = clean(input.email)?.toLowerCase() ?? null;
  if (email && !isSha256Hex(email) && !EMAIL_PATTERN.test(email)) {
    return { ok: false, field: 'email', message: 'is not an email address (nor a SHA-256 hex hash)' };
  }

  let phone = clean(input.phone);
  if (phone && !isSha256Hex(phone.toLowerCase())) {
    const parsed = parsePhoneNumberFromString(phone, (country ?? undefined) as CountryCode | undefined);
    if (!parsed?.isValid()) {
      return {
        ok: false,
        field: 'phone',
        message: 'is not a valid phone number: use E.164 (e.g. +14155550100) or give the contact a country',
      };
    }
    phone = parsed.number;
  } else if (phone) {
    phone = phone.toLowerCase();
  }

  const attributes = input.attributes ?? {};
  if (typeof attributes !== 'object' || Array.isArray(attributes) || attributes === null) {
    return { ok: false, field: 'attributes', message: 'must be a JSON object' };
  }
  if (holdsNonFiniteNumber(attributes)) {
    return { ok: false, field: 'attributes', message: 'holds a number too large for JSON (such as 1e400), which would be stored as null' };
  }

  const externalId = clean(input.externalId);
  const mobileAdId = clean(input.mobileAdId)?.toLowerCase() ?? null;
  const key = externalId
    ? `ext:${externalId}`
    : email
      ? `email:${email}`
      : phone
        ? `phone:${phone}`
        : mobileAdId
          ? `madid:${mobileAdId}`
          : null;
  if (!key) {
    return { ok: false, field: 'email', message: 'a member needs at least one of email, phone, externalId or mobileAdId' };
  }
  return {
    ok: true,
    contact: {
      key,
      email,
      phone,
      firstName: clean(input.firstName),
      lastName: clean(input.lastName),
      country,
      zip: clean(input.zip),
      externalId,
      mobileAdId,
      attributes: attributes as Record<string, unknown>,
    },
  };
}
