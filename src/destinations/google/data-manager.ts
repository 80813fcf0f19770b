import { z } from 'zod';
import type { BatchOutcome, EncodedMember } from '../destination.js';
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
 * Data Manager API reports no match rate for a list. It does report one per ingestion request, as a
 * range (IngestUserDataStatus `uploadMatchRateRange`, MATCH_RATE_RANGE_LESS_THAN_20 to
 * MATCH_RATE_RANGE_91_TO_100, with `recordCount` and `userIdentifierCount`, from requestStatus.retrieve:
 * https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve, checked
 * 2026-12-07); the gateway does not keep the request ids to read it yet. */
const userListSizeSchema = z.object({
  membershipStatus: z.string().optional(),
  sizeInfo: z
    .object({
      displayNetworkMembersCount: z.coerce.number().optional(),
      searchNetworkMembersCount: z.coerce.number().optional(),
    })
    .optional(),
});
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
    if (!requestIdSchema.safeParse(json).success) throw unexpectedResponse();
    // The API fails a request as a whole when any member is invalid, so an accepted one took all.
    return { invalid: 0, invalidSamples: [] };
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

    async readAudience(listId) {
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
      return {
        sizeLowerBound: sizes.length > 0 ? Math.min(...sizes) : null,
        sizeUpperBound: sizes.length > 0 ? Math.max(...sizes) : null,
        matchRate: null,
        status: list.data.membershipStatus ?? null,
        statusDetail: null,
      };
    },

    addMembers: (listId, members) => sendMembers('ingest', listId, members),
    removeMembers: (listId, members) => sendMembers('remove', listId, members),
  };
}
