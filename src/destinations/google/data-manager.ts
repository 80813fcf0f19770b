import { z } from 'zod';
import { DestinationError, type BatchOutcome, type EncodedMember, type PlatformAudienceReport } from '../destination.js';
import { unexpectedResponse, type CallGoogle } from './client.js';
import type { GoogleConfig, ListOperations, ProductAccount } from './settings.js';

/** The API takes at most this many audience members a request. */
export const DATA_MANAGER_MAX_MEMBERS = 10_000;

/** One person as the Data Manager API takes them: all their identifiers in one audience member. */
function toAudienceMember({ identifiers }: EncodedMember) {
  const { EMAIL, PHONE, FIRST_NAME, LAST_NAME, COUNTRY, ZIP, MOBILE_ID } = identifiers;
  if (MOBILE_ID !== undefined) return { mobileData: { mobileIds: [MOBILE_ID] } };
  const userIdentifiers: object[] = [];
  if (EMAIL !== undefined) userIdentifiers.push({ emailAddress: EMAIL });
  if (PHONE !== undefined) userIdentifiers.push({ phoneNumber: PHONE });
  if (FIRST_NAME !== undefined && LAST_NAME !== undefined && COUNTRY !== undefined && ZIP !== undefined) {
    userIdentifiers.push({
      address: { givenName: FIRST_NAME, familyName: LAST_NAME, regionCode: COUNTRY, postalCode: ZIP },
    });
  }
  return { userData: { userIdentifiers } };
}

const requestIdSchema = z.object({ requestId: z.string() });
const userListSchema = z.object({ id: z.string().regex(/^\d+$/) });
/** A list's sizes (int64, as strings) and status (UserList:
 * https://developers.google.com/data-manager/api/reference/rest/v1/accountTypes.accounts.userLists). The
 * Data Manager API reports no match rate for a list: it reports one per ingestion request (below). */
const userListSizeSchema = z.object({
  membershipStatus: z.string().optional(),
  sizeInfo: z
    .object({
      displayNetworkMembersCount: z.coerce.number().optional(),
      searchNetworkMembersCount: z.coerce.number().optional(),
    })
    .optional(),
});
/**
 * The status of one ingestion request, from requestStatus.retrieve
 * (https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve, checked
 * 2026-12-07): `requestStatusPerDestination[]`, one per destination of the request, in its order, each
 * with `requestStatus` (REQUEST_STATUS_UNKNOWN, SUCCESS, PROCESSING, FAILED, PARTIAL_SUCCESS), an
 * `errorInfo.errorCounts[]` of `{ recordCount, reason }` (FAILED, PARTIAL_SUCCESS) and, for an ingestion
 * of contact details, `audienceMembersIngestionStatus.userDataIngestionStatus` (IngestUserDataStatus):
 * `recordCount`, `userIdentifierCount` (int64, as strings) and `uploadMatchRateRange`. Mobile ids
 * (`mobileDataIngestionStatus`) come without a match rate. Unknown values are kept, not refused.
 */
const requestStatusSchema = z.object({
  requestStatusPerDestination: z
    .array(
      z.object({
        destination: z.object({ productDestinationId: z.string().optional() }).optional(),
        requestStatus: z.string().default('REQUEST_STATUS_UNKNOWN'),
        errorInfo: z
          .object({
            errorCounts: z
              .array(z.object({ recordCount: z.coerce.number().optional(), reason: z.string().optional() }))
              .default([]),
          })
          .optional(),
        audienceMembersIngestionStatus: z
          .object({
            userDataIngestionStatus: z
              .object({
                recordCount: z.coerce.number().optional(),
                userIdentifierCount: z.coerce.number().optional(),
                uploadMatchRateRange: z.string().optional(),
              })
              .optional(),
          })
          .optional(),
      }),
    )
    .default([]),
});
type DestinationRequestStatus = z.infer<typeof requestStatusSchema>['requestStatusPerDestination'][number];

/** The MatchRateRange values that give a range, as shares (0–1); MATCH_RATE_RANGE_UNKNOWN and
 * MATCH_RATE_RANGE_NOT_ELIGIBLE give none. "Less than 20%" is reported as 0 to 0.2. */
const MATCH_RATE_RANGES: Record<string, [number, number]> = {
  MATCH_RATE_RANGE_LESS_THAN_20: [0, 0.2],
  MATCH_RATE_RANGE_20_TO_30: [0.2, 0.3],
  MATCH_RATE_RANGE_31_TO_40: [0.31, 0.4],
  MATCH_RATE_RANGE_41_TO_50: [0.41, 0.5],
  MATCH_RATE_RANGE_51_TO_60: [0.51, 0.6],
  MATCH_RATE_RANGE_61_TO_70: [0.61, 0.7],
  MATCH_RATE_RANGE_71_TO_80: [0.71, 0.8],
  MATCH_RATE_RANGE_81_TO_90: [0.81, 0.9],
  MATCH_RATE_RANGE_91_TO_100: [0.91, 1],
};

type UploadMatch = Pick<PlatformAudienceReport, 'matchRateLowerBound' | 'matchRateUpperBound' | 'statusDetail'>;

const noMatch = (statusDetail: string): UploadMatch => ({ matchRateLowerBound: null, matchRateUpperBound: null, statusDetail });

const errorReasons = (status: DestinationRequestStatus) =>
  (status.errorInfo?.errorCounts ?? [])
    .map(({ reason, recordCount }) => `${reason ?? 'unknown reason'}${recordCount === undefined ? '' : ` × ${recordCount}`}`)
    .join(', ');

/** What the status of the last ingestion request says about its match, for a marketer. */
function uploadMatch(requestId: string, status: DestinationRequestStatus | undefined): UploadMatch {
  const upload = `the last upload (Data Manager request ${requestId})`;
  if (!status) return noMatch(`Google reports nothing about this list for ${upload}`);
  if (status.requestStatus === 'PROCESSING') {
    return noMatch(`Google is still processing ${upload}: its match rate is not known yet`);
  }
  if (status.requestStatus === 'FAILED') {
    return noMatch(`Google failed ${upload}, so it has no match rate${status.errorInfo ? `: ${errorReasons(status)}` : ''}`);
  }
  const userData = status.audienceMembersIngestionStatus?.userDataIngestionStatus;
  const range = userData?.uploadMatchRateRange;
  const bounds = range === undefined ? undefined : MATCH_RATE_RANGES[range];
  const partly = status.requestStatus === 'PARTIAL_SUCCESS' ? ` Google refused part of it: ${errorReasons(status)}.` : '';
  if (!bounds) {
    const why = range === 'MATCH_RATE_RANGE_NOT_ELIGIBLE' ? 'it is not eligible for one' : 'it has none yet';
    return noMatch(`Google reports no match rate for ${upload}: ${why}.${partly}`);
  }
  const sent = userData?.recordCount === undefined ? '' : ` of ${userData.recordCount} members sent`;
  const [low, high] = bounds;
  return {
    matchRateLowerBound: low,
    matchRateUpperBound: high,
    statusDetail: `Google matched ${Math.round(low * 100)}–${Math.round(high * 100)}%${sent} in ${upload}.${partly}`,
  };
}

const userListsPageSchema = z.object({ userLists: z.array(z.unknown()).default([]) });

const accountPath = (account: ProductAccount) => `accountTypes/${account.accountType}/accounts/${account.accountId}`;

/**
 * Customer Match through the Data Manager API: members are ingested into and removed from a
 * list (`productDestinationId`), lists are created through its UserList service, and access is
 * checked by listing the account's lists.
 */
export function dataManagerOperations(config: GoogleConfig, call: CallGoogle, account: string): ListOperations {
  /** The UserList service names the login account in a header rather than in the body. */
  const loginAccountHeader = config.loginAccount ? { 'login-account': accountPath(config.loginAccount) } : undefined;

  async function sendMembers(operation: 'ingest' | 'remove', listId: string, members: EncodedMember[]): Promise<BatchOutcome> {
    if (members.length > DATA_MANAGER_MAX_MEMBERS) {
      throw new RangeError(`Google accepts at most ${DATA_MANAGER_MAX_MEMBERS} members per request, got ${members.length}`);
    }
    const body = {
      destinations: [
        {
          operatingAccount: config.operatingAccount,
          ...(config.loginAccount ? { loginAccount: config.loginAccount } : {}),
          productDestinationId: listId,
        },
      ],
      audienceMembers: members.map(toAudienceMember),
      encoding: 'HEX',
      // Consent and terms belong to ingestion only: the remove call refuses them as unknown fields.
      ...(operation === 'ingest'
        ? { consent: config.consent, termsOfService: { customerMatchTermsOfServiceStatus: 'ACCEPTED' } }
        : {}),
    };
    const json = await call({ method: 'POST', path: `audienceMembers:${operation}`, body, listId });
    const accepted = requestIdSchema.safeParse(json);
    if (!accepted.success) throw unexpectedResponse();
    // The API fails a request as a whole when any member is invalid, so an accepted one took all.
    // An ingestion's status reports its match rate: the engine keeps the last one's id.
    return {
      invalid: 0,
      invalidSamples: [],
      ...(operation === 'ingest' ? { platformRequestId: accepted.data.requestId } : {}),
    };
  }

  /** The status of ingestion request `requestId` for list `listId`: match rate range, or why none. */
  async function readUploadMatch(requestId: string, listId: string): Promise<UploadMatch> {
    let json: unknown;
    try {
      json = await call({ method: 'GET', path: `requestStatus:retrieve?requestId=${encodeURIComponent(requestId)}` });
    } catch (error) {
      // Google does not say how long it keeps a request's status; one it no longer knows has none.
      if (error instanceof DestinationError && error.details.status === 404) {
        return noMatch(`Google no longer knows the last upload (Data Manager request ${requestId}), so it has no match rate`);
      }
      throw error;
    }
    const parsed = requestStatusSchema.safeParse(json);
    if (!parsed.success) throw unexpectedResponse();
    const statuses = parsed.data.requestStatusPerDestination;
    // The gateway sends one destination a request; a status naming another list is not this one's.
    const status = statuses.find((entry) => (entry.destination?.productDestinationId ?? listId) === listId);
    return uploadMatch(requestId, status);
  }

  return {
    async checkAccess() {
      const json = await call({
        method: 'GET',
        path: `${accountPath(config.operatingAccount)}/userLists?pageSize=1`,
        headers: loginAccountHeader,
      });
      if (!userListsPageSchema.safeParse(json).success) throw unexpectedResponse();
      return `The Google credentials work and can read the Customer Match lists of ${account}`;
    },

    async ensureAudience({ platformAudienceId, name }) {
      if (platformAudienceId) return platformAudienceId;
      const json = await call({
        method: 'POST',
        path: `${accountPath(config.operatingAccount)}/userLists`,
        headers: loginAccountHeader,
        body: {
          displayName: name,
          description: 'Kept in sync by the audience sync gateway',
          ingestedUserListInfo: {
            uploadKeyTypes: ['CONTACT_ID'],
            contactIdInfo: { dataSourceType: 'DATA_SOURCE_TYPE_FIRST_PARTY' },
          },
        },
      });
      const created = userListSchema.safeParse(json);
      if (!created.success) throw unexpectedResponse();
      return created.data.id;
    },

    async readAudience(listId, context) {
      if (!/^\d+$/.test(listId)) throw unexpectedResponse();
      const json = await call({
        method: 'GET',
        path: `${accountPath(config.operatingAccount)}/userLists/${listId}`,
        headers: loginAccountHeader,
        listId,
      });
      const list = userListSizeSchema.safeParse(json);
      if (!list.success) throw unexpectedResponse();
      const { displayNetworkMembersCount: display, searchNetworkMembersCount: search } = list.data.sizeInfo ?? {};
      const sizes = [display, search].filter((size) => size !== undefined);
      const requestId = context?.lastPlatformRequestId;
      const match = requestId
        ? await readUploadMatch(requestId, listId)
        : { matchRateLowerBound: null, matchRateUpperBound: null, statusDetail: null };
      return {
        sizeLowerBound: sizes.length > 0 ? Math.min(...sizes) : null,
        sizeUpperBound: sizes.length > 0 ? Math.max(...sizes) : null,
        // A range, not one number: the bounds carry it.
        matchRate: null,
        status: list.data.membershipStatus ?? null,
        ...match,
      };
    },

    addMembers: (listId, members) => sendMembers('ingest', listId, members),
    removeMembers: (listId, members) => sendMembers('remove', listId, members),
  };
}
