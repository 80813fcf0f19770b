import type { Platform } from '../generated/prisma/enums.js';

/** The contact fields a field mapping may read (`FieldMapping.sourceField`). */
export const SOURCE_FIELDS = [
  'email',
  'phone',
  'firstName',
  'lastName',
  'country',
  'zip',
  'externalId',
  'mobileAdId',
] as const;
export type SourceField = (typeof SOURCE_FIELDS)[number];

export interface FieldMapping {
  sourceField: SourceField;
  destinationField: string;
}

/** A contact as the sync engine streams it out of PostgreSQL; values are as stored (already
 * trimmed; phone in E.164 with `+`; email lowercased). */
export type ContactIdentity = { id: bigint } & { [F in SourceField]: string | null };

/** The identifiers of one member as the destination receives them, keyed by destination field
 * (for Meta: `EMAIL`, `PHONE`…), normalized and hashed by the platform's rules. */
export type EncodedIdentifiers = Record<string, string>;

export interface EncodedMember {
  contactId: bigint;
  identifiers: EncodedIdentifiers;
}

/** Describes one upload (a run's adds, or its removes) that spans several requests. */
export interface UploadSession {
  /** Stable for the whole upload; platforms use it to group the batches. */
  id: string;
  /** 1-based position of this batch in the upload. */
  batchSeq: number;
  lastBatch: boolean;
  estimatedTotal: number;
}

export interface BatchOutcome {
  /** Rows the platform itself reports it received (Meta's `num_received`); left out when it does not say. */
  received?: number;
  /** Rows the platform rejected as invalid (they are not retried). */
  invalid: number;
  invalidSamples: string[];
  /** Set when the platform refused the whole batch for a reason that is not the members' fault
   * (Meta will not remove users when the audience would become too small). Nothing of the batch
   * was applied: its members stay pending for a later run. The text says why, for the user. */
  refused?: string;
  /** Set when the platform applies the batch later, in a job that may span the upload's batches (the
   * Google Ads API's offline user data jobs): the engine records the batch's members against it and,
   * once a batch `started` it, follows it through `checkJob`. */
  platformJob?: { resourceName: string; started: boolean };
  /** Set when the platform reports on the batch's request later, by this id (the Data Manager API's
   * ingestion request id, whose status carries the upload's match rate): the engine keeps the latest
   * per sync and hands it to `readAudience`. */
  platformRequestId?: string;
}

/** Where a platform job stands; `PENDING`: created but never started. `reason` says, for a
 * marketer, why it failed. */
export type PlatformJobState =
  | { status: 'PENDING' }
  | { status: 'RUNNING' }
  | { status: 'SUCCEEDED' }
  | { status: 'FAILED'; reason: string };

/** What a platform reports about an audience it holds; what it does not report is null. */
export interface PlatformAudienceReport {
  /** How many people the platform matched: a range where it gives one (Meta's approximate count
   * bounds), otherwise the one number it reports as both bounds. */
  sizeLowerBound: number | null;
  sizeUpperBound: number | null;
  /** The share, 0–1, of the members sent that the platform matched, where it reports one number;
   * null where it reports only a range (the bounds below). */
  matchRate: number | null;
  /** The range, 0–1, the match rate lies in where the platform reports a range (the Data Manager
   * API's `uploadMatchRateRange`); left out where it reports one number, which is then both bounds. */
  matchRateLowerBound?: number | null;
  matchRateUpperBound?: number | null;
  /** The platform's status of the audience, in its own terms (e.g. READY). */
  status: string | null;
  /** What the platform says about that status, when it says more. */
  statusDetail: string | null;
}

/** What the engine knows of the sync's past uploads, for `readAudience`. */
export interface AudienceReadContext {
  /** The `platformRequestId` of the latest batch a run sent, when the platform gave one. */
  lastPlatformRequestId: string | null;
}

export interface AudienceRef {
  /** The platform's id of the audience, when a previous run created or was given one. */
  platformAudienceId: string | null;
  /** The display name to create the audience with. */
  name: string;
}

/** One ad platform (or webhook) behind a uniform contract. Instances are bound to one
 * destination's config and decrypted credentials. */
export interface DestinationConnector {
  readonly platform: Platform;
  /** Most members one request may carry. */
  readonly maxBatchSize: number;
  /** Destination fields a field mapping may target on this platform. */
  readonly destinationFields: readonly string[];
  /** Normalizes and hashes the mapped fields of a contact; `null` when none is usable. */
  encode(contact: ContactIdentity, mapping: readonly FieldMapping[]): EncodedIdentifiers | null;
  /** Checks the credentials and that the account (or URL) is reachable and usable, without
   * changing anything; returns what was checked, in words for the user. Throws DestinationError. */
  checkAccess(): Promise<string>;
  /** Returns the platform audience id, creating the audience when there is none yet. */
  ensureAudience(audience: AudienceRef): Promise<string>;
  addMembers(platformAudienceId: string, members: EncodedMember[], session: UploadSession): Promise<BatchOutcome>;
  removeMembers(platformAudienceId: string, members: EncodedMember[], session: UploadSession): Promise<BatchOutcome>;
  /** What the platform reports about the audience now (size, match rate, status). Throws DestinationError. */
  readAudience?(platformAudienceId: string, context?: AudienceReadContext): Promise<PlatformAudienceReport>;
  /** For platforms whose batches report a `platformJob`: that job's state now. Throws DestinationError. */
  checkJob?(resourceName: string): Promise<PlatformJobState>;
}

/** A failure the platform reported. `retryable` is false for credential and permission
 * problems: retrying cannot help, the user has to act. The message is written for a marketer. */
export class DestinationError extends Error {
  constructor(
    message: string,
    readonly details: {
      platform: Platform;
      status?: number;
      code?: number | string;
      retryable: boolean;
      /** How long the platform asked us to wait before trying again (throttling), when it said. */
      retryAfterMs?: number;
    },
  ) {
    super(message);
    this.name = 'DestinationError';
  }
}
