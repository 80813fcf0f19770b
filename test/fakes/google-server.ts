import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { googleAdsApi, type FakeAdsJob } from './google-ads-api.js';
import {
  adsError,
  RpcError,
  checkKnownFields,
  invalid,
  requireRecord,
  requireString,
  unauthenticated,
  type Reply,
} from './google-rpc.js';
import { failureQueue, isRecord, parseJson, readBody, serveFake } from './fake-server.js';

/** Canned failures the fake returns, in order, before looking at the request: `token-server-error`
 * to the next token request, the others to the next API request. */
export type FakeGoogleFailure =
  | 'unauthenticated'
  | 'permission-denied'
  | 'throttle'
  | 'http-429-retry-after'
  | 'unavailable'
  | 'aborted'
  | 'token-server-error';

/** Picks the requests a queued failure applies to. */
export type RequestFilter = (request: { method: string; path: string }) => boolean;

export interface RecordedRequest {
  method: string;
  /** Path and query string exactly as received. */
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  loginAccount: string | undefined;
  /** The Google Ads API's headers. */
  developerToken: string | undefined;
  loginCustomerId: string | undefined;
  /** The parsed JSON body, the form fields of a token request, or the raw text. */
  body: unknown;
}

export interface FakeUserList {
  displayName: string;
  uploadKeyType: 'CONTACT_ID' | 'MOBILE_ID';
  /** What the list holds: `EMAIL:<hex>`, `PHONE:<hex>`, `ADDRESS:<given>|<family>|<region>|<postal>`, `MOBILE_ID:<id>`. */
  members: Set<string>;
  /** What the Google Ads API reports as the list's match rate, once a test sets one (Google computes
   * it some time after uploads; until then the field is absent). */
  matchRatePercentage?: number;
}

/** An audienceMembers ingest or remove request the fake answered, as requestStatus.retrieve reports it. */
export interface FakeDataManagerRequest {
  operation: 'ingest' | 'remove';
  dataType: 'CONTACT_ID' | 'MOBILE_ID';
  /** The request's destinations, as sent. */
  destinations: Record<string, unknown>[];
  recordCount: number;
  identifierCount: number;
  /** Members with at least one identifier in `googleUsers`. */
  matchedCount: number;
  /** PROCESSING while `holdRequests` kept it so, until `completeRequests`; a test may set the others. */
  status: 'PROCESSING' | 'SUCCESS' | 'FAILED' | 'PARTIAL_SUCCESS';
  /** The ErrorInfo counts of a FAILED or PARTIAL_SUCCESS request, set by a test. */
  errorCounts?: { reason: string; recordCount: number }[];
  /** What Google reports instead of the range of what the fake matched (MATCH_RATE_RANGE_NOT_ELIGIBLE ...). */
  uploadMatchRateRange?: string;
}

export interface FakeGoogleOptions {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  /** A long-lived access token the fake also accepts, for `{ accessToken }` credentials. */
  staticAccessToken?: string;
  /** The operating account (digits) the credentials may manage. */
  accountId: string;
  /** Seconds the access tokens it issues last. */
  tokenLifetimeSeconds?: number;
  /** The scopes the tokens it issues carry (space-separated); the Data Manager scope by default. */
  scope?: string;
  /** The developer token the Google Ads API routes require. */
  developerToken?: string;
}

export interface FakeGoogle {
  baseUrl: string;
  tokenUrl: string;
  /** Customer Match lists of the account by id; add one to make it exist. */
  userLists: Map<string, FakeUserList>;
  requests: RecordedRequest[];
  /** Answers the next `count` requests (only those `when` accepts, if given) with a canned failure. */
  failNext(kind: FakeGoogleFailure, count?: number, when?: RequestFilter): void;
  /** The user withdrew the app's access: the refresh token and the tokens issued for it stop working. */
  revokeAccess(): void;
  /** Calls `listener` as each request arrives, before it is answered: to change the fake's state mid-flow. */
  onRequest(listener: (request: { method: string; path: string }) => void): void;
  /** The Google Ads API's offline user data jobs by id. */
  adsJobs: Map<string, FakeAdsJob>;
  /** Finishes the running jobs: they apply to their lists, or fail as `failNextAdsJob` said. */
  completeAdsJobs(): void;
  /** True (the default): running jobs stay RUNNING until `completeAdsJobs`. False: a running job
   * finishes the first time its status is read. */
  holdAdsJobs: boolean;
  /** The next job to run fails when it finishes, with this failure reason, applying nothing. */
  failNextAdsJob(reason: string): void;
  /** Whether the developer token may still use Customer Match on the Google Ads API. */
  adsAllowlisted: boolean;
  /** The people Google knows, by identifier in the form of FakeUserList.members (`EMAIL:<hex>` ...):
   * an ingested member matches when one of its identifiers is here. */
  googleUsers: Set<string>;
  /** The Data Manager API's ingest and remove requests by request id (validateOnly ones are not kept:
   * Google gives them no status). */
  dataManagerRequests: Map<string, FakeDataManagerRequest>;
  /** False (the default): a request's status is SUCCESS at once. True: new requests stay PROCESSING
   * until `completeRequests`. */
  holdRequests: boolean;
  /** The requests still PROCESSING become SUCCESS. */
  completeRequests(): void;
  close(): Promise<void>;
}

export const DATA_MANAGER_SCOPE = 'https://www.googleapis.com/auth/datamanager';
export const ADS_SCOPE = 'https://www.googleapis.com/auth/adwords';
/** Seconds the `throttle` failure asks to wait, in its RetryInfo detail. */
export const THROTTLE_RETRY_DELAY_SECONDS = 1;

const MAX_MEMBERS = 10_000;
const MAX_IDENTIFIERS = 10;
const MAX_DESTINATIONS = 10;
const ACCOUNT_TYPES = ['GOOGLE_ADS', 'DISPLAY_VIDEO_ADVERTISER', 'DISPLAY_VIDEO_PARTNER', 'DATA_PARTNER'];
const CONSENT_STATUSES = ['CONSENT_GRANTED', 'CONSENT_DENIED'];
const DATA_SOURCE_TYPES = [
  'DATA_SOURCE_TYPE_FIRST_PARTY',
  'DATA_SOURCE_TYPE_THIRD_PARTY_CREDIT_BUREAU',
  'DATA_SOURCE_TYPE_THIRD_PARTY_VOTER_FILE',
  'DATA_SOURCE_TYPE_THIRD_PARTY_PARTNER_DATA',
];
const HEX = /^[0-9a-fA-F]*$/;
const MOBILE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Fields each message accepts; anything else is an unknown-field error, as Google's JSON parser answers. */
const KNOWN_FIELDS = {
  ingest: ['destinations', 'audienceMembers', 'consent', 'validateOnly', 'encoding', 'encryptionInfo', 'termsOfService'],
  remove: ['destinations', 'audienceMembers', 'validateOnly', 'encoding', 'encryptionInfo'],
  destination: ['reference', 'loginAccount', 'linkedAccount', 'operatingAccount', 'productDestinationId'],
  productAccount: ['accountType', 'accountId'],
  audienceMember: ['destinationReferences', 'userData', 'mobileData', 'consent'],
  userData: ['userIdentifiers'],
  userIdentifier: ['emailAddress', 'phoneNumber', 'address'],
  address: ['givenName', 'familyName', 'regionCode', 'postalCode'],
  mobileData: ['mobileIds'],
  consent: ['adUserData', 'adPersonalization'],
  termsOfService: ['customerMatchTermsOfServiceStatus'],
  userList: ['displayName', 'description', 'integrationCode', 'membershipDuration', 'membershipStatus', 'ingestedUserListInfo'],
  ingestedUserListInfo: ['uploadKeyTypes', 'contactIdInfo', 'mobileIdInfo'],
} as const;

const FAILURES: Record<Exclude<FakeGoogleFailure, 'token-server-error'>, () => RpcError> = {
  unauthenticated,
  'permission-denied': () => new RpcError('PERMISSION_DENIED', 'The caller does not have permission'),
  throttle: () =>
    new RpcError('RESOURCE_EXHAUSTED', 'Quota exceeded for quota metric \'Requests\' of service datamanager.googleapis.com.', {
      reason: 'RATE_LIMIT_EXCEEDED',
      details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${THROTTLE_RETRY_DELAY_SECONDS}s` }],
    }),
  'http-429-retry-after': () =>
    new RpcError('RESOURCE_EXHAUSTED', 'Too many requests.', { headers: { 'retry-after': String(THROTTLE_RETRY_DELAY_SECONDS) } }),
  unavailable: () => new RpcError('UNAVAILABLE', 'The service is currently unavailable.'),
  aborted: () => new RpcError('ABORTED', 'The operation was aborted because of a concurrent modification.'),
};

/** A HEX-encoded SHA-256 digest, lowercased. */
function hashed(value: unknown, field: string): string {
  const text = requireString(value, field);
  if (!HEX.test(text) || text.length % 2 !== 0) throw invalid(field, 'The HEX encoded value is malformed.', 'INVALID_HEX_ENCODING');
  if (text.length !== 64) throw invalid(field, 'The SHA256 encoded value is malformed.', 'INVALID_SHA256_FORMAT');
  return text.toLowerCase();
}

function parseProductAccount(value: unknown, field: string) {
  const account = requireRecord(value, field, KNOWN_FIELDS.productAccount);
  const accountType = requireString(account['accountType'], `${field}.account_type`);
  if (!ACCOUNT_TYPES.includes(accountType)) throw invalid(`${field}.account_type`, 'Enum value cannot be used.', 'INVALID_ENUM_VALUE');
  const accountId = requireString(account['accountId'], `${field}.account_id`);
  if (!/^\d+$/.test(accountId)) throw invalid(`${field}.account_id`, 'Format is invalid.', 'INVALID_FORMAT');
  return { accountType, accountId };
}

/** The members' keys in the list, by data type; throws on the first invalid member (fast fail). */
function parseMembers(value: unknown, encoding: unknown): { keys: string[][]; dataType: 'CONTACT_ID' | 'MOBILE_ID' } {
  if (!Array.isArray(value) || value.length === 0) throw invalid('audience_members', 'audience_members is required.', 'REQUIRED_FIELD_MISSING');
  if (value.length > MAX_MEMBERS) {
    throw invalid('audience_members', 'Maximum number of audience members allowed per request is 10,000.', 'TOO_MANY_AUDIENCE_MEMBERS');
  }
  const types = new Set<'CONTACT_ID' | 'MOBILE_ID'>();
  const keys = value.map((raw, i) => {
    const at = `audience_members[${i}]`;
    const member = requireRecord(raw, at, KNOWN_FIELDS.audienceMember);
    if (member['userData'] !== undefined && member['mobileData'] !== undefined) {
      throw invalid(at, 'This audience member is not valid.', 'INVALID_AUDIENCE_MEMBER');
    }
    if (member['mobileData'] !== undefined) {
      types.add('MOBILE_ID');
      const ids = requireRecord(member['mobileData'], `${at}.mobile_data`, KNOWN_FIELDS.mobileData)['mobileIds'];
      if (!Array.isArray(ids) || ids.length === 0) throw invalid(`${at}.mobile_data.mobile_ids`, 'mobile_ids is required.', 'REQUIRED_FIELD_MISSING');
      if (ids.length > MAX_IDENTIFIERS) throw invalid(`${at}.mobile_data.mobile_ids`, 'Too many mobile ids.', 'TOO_MANY_USER_IDENTIFIERS');
      return ids.map((id, j) => {
        if (typeof id !== 'string' || !MOBILE_ID.test(id)) {
          throw invalid(`${at}.mobile_data.mobile_ids[${j}]`, 'Mobile ID format is not valid.', 'INVALID_MOBILE_ID_FORMAT');
        }
        return `MOBILE_ID:${id}`;
      });
    }
    types.add('CONTACT_ID');
    if (encoding !== 'HEX') throw invalid('encoding', 'encoding is required for user data (this fake takes HEX).', 'REQUIRED_FIELD_MISSING');
    const identifiers = requireRecord(member['userData'], `${at}.user_data`, KNOWN_FIELDS.userData)['userIdentifiers'];
    const idsAt = `${at}.user_data.user_identifiers`;
    if (!Array.isArray(identifiers) || identifiers.length === 0) throw invalid(idsAt, 'user_identifiers is required.', 'REQUIRED_FIELD_MISSING');
    if (identifiers.length > MAX_IDENTIFIERS) {
      throw invalid(idsAt, 'Maximum number of user identifiers allowed per audience member is 10.', 'TOO_MANY_USER_IDENTIFIERS');
    }
    return identifiers.map((rawIdentifier, j) => {
      const identifier = requireRecord(rawIdentifier, `${idsAt}[${j}]`, KNOWN_FIELDS.userIdentifier);
      const kinds = Object.keys(identifier);
      if (kinds.length !== 1) throw invalid(`${idsAt}[${j}]`, 'Exactly one identifier must be set.', 'INVALID_ARGUMENT');
      if (identifier['emailAddress'] !== undefined) return `EMAIL:${hashed(identifier['emailAddress'], `${idsAt}[${j}].email_address`)}`;
      if (identifier['phoneNumber'] !== undefined) return `PHONE:${hashed(identifier['phoneNumber'], `${idsAt}[${j}].phone_number`)}`;
      const addressAt = `${idsAt}[${j}].address`;
      const address = requireRecord(identifier['address'], addressAt, KNOWN_FIELDS.address);
      const regionCode = requireString(address['regionCode'], `${addressAt}.region_code`);
      if (!/^[A-Z]{2}$/.test(regionCode)) throw invalid(`${addressAt}.region_code`, 'Format is invalid.', 'INVALID_FORMAT');
      const postalCode = requireString(address['postalCode'], `${addressAt}.postal_code`);
      if (HEX.test(postalCode) && postalCode.length === 64) {
        throw invalid(`${addressAt}.postal_code`, 'Postal code is not valid.', 'INVALID_POSTAL_CODE');
      }
      const given = hashed(address['givenName'], `${addressAt}.given_name`);
      const family = hashed(address['familyName'], `${addressAt}.family_name`);
      return `ADDRESS:${given}|${family}|${regionCode}|${postalCode}`;
    });
  });
  if (types.size > 1) {
    throw invalid('audience_members', 'Multiple data types are not allowed to be ingested in a single request.', 'MULTIPLE_DATA_TYPES_NOT_ALLOWED');
  }
  return { keys, dataType: [...types][0]! };
}

function parseConsent(value: unknown, field: string): void {
  if (value === undefined) return;
  const consent = requireRecord(value, field, KNOWN_FIELDS.consent);
  for (const key of ['adUserData', 'adPersonalization']) {
    if (consent[key] !== undefined && !CONSENT_STATUSES.includes(consent[key] as string)) {
      throw invalid(`${field}.${key}`, 'Enum value cannot be used.', 'INVALID_ENUM_VALUE');
    }
  }
}

/** The MatchRateRange Google reports for a share matched (0–1), by whole percent. */
function matchRateRange(share: number): string {
  const percent = Math.floor(share * 100);
  if (percent < 20) return 'MATCH_RATE_RANGE_LESS_THAN_20';
  if (percent <= 30) return 'MATCH_RATE_RANGE_20_TO_30';
  const low = Math.floor((percent - 1) / 10) * 10 + 1;
  return `MATCH_RATE_RANGE_${low}_TO_${low + 9}`;
}

/**
 * requestStatus.retrieve's answer for one request, shaped as its reference
 * (https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve):
 * `requestStatusPerDestination[]` in the order of the request's destinations, each with its
 * `destination`, `requestStatus` and the status of its kind: `audienceMembersIngestionStatus` with
 * `userDataIngestionStatus` (`recordCount`, `userIdentifierCount`, int64 as strings, and
 * `uploadMatchRateRange`) or `mobileDataIngestionStatus` (`recordCount`, `mobileIdCount`), or
 * `audienceMembersRemovalStatus` with `userDataRemovalStatus` / `mobileDataRemovalStatus`. The match
 * rate is what the fake matched of what was sent; while PROCESSING the counts are absent.
 */
function toRequestStatus(request: FakeDataManagerRequest) {
  const counts = (identifierField: string) => ({
    recordCount: String(request.recordCount),
    [identifierField]: String(request.identifierCount),
  });
  const done = request.status !== 'PROCESSING';
  const failed = request.status === 'FAILED' || request.status === 'PARTIAL_SUCCESS';
  const status = () => {
    if (request.operation === 'remove') {
      return request.dataType === 'MOBILE_ID'
        ? { audienceMembersRemovalStatus: { mobileDataRemovalStatus: counts('mobileIdCount') } }
        : { audienceMembersRemovalStatus: { userDataRemovalStatus: counts('userIdentifierCount') } };
    }
    if (request.dataType === 'MOBILE_ID') return { audienceMembersIngestionStatus: { mobileDataIngestionStatus: counts('mobileIdCount') } };
    return {
      audienceMembersIngestionStatus: {
        userDataIngestionStatus: {
          ...counts('userIdentifierCount'),
          ...(request.status === 'FAILED'
            ? {}
            : { uploadMatchRateRange: request.uploadMatchRateRange ?? matchRateRange(request.matchedCount / request.recordCount) }),
        },
      },
    };
  };
  return {
    requestStatusPerDestination: request.destinations.map((destination) => ({
      destination,
      requestStatus: request.status,
      ...(failed
        ? { errorInfo: { errorCounts: (request.errorCounts ?? []).map((count) => ({ ...count, recordCount: String(count.recordCount) })) } }
        : {}),
      ...(done ? status() : {}),
    })),
  };
}

function toUserListResource(accountPath: string, id: string, list: FakeUserList) {
  return {
    name: `${accountPath}/userLists/${id}`,
    id,
    displayName: list.displayName,
    membershipStatus: 'OPEN',
    // int64 counts travel as strings in Google's JSON; the fake counts the identifiers it holds.
    sizeInfo: { displayNetworkMembersCount: String(list.members.size), searchNetworkMembersCount: String(list.members.size) },
    ingestedUserListInfo: {
      uploadKeyTypes: [list.uploadKeyType],
      ...(list.uploadKeyType === 'CONTACT_ID' ? { contactIdInfo: { dataSourceType: 'DATA_SOURCE_TYPE_FIRST_PARTY' } } : {}),
    },
  };
}

export async function startFakeGoogle(options: FakeGoogleOptions): Promise<FakeGoogle> {
  const userLists = new Map<string, FakeUserList>();
  const requests: RecordedRequest[] = [];
  const failures = failureQueue<FakeGoogleFailure, { method: string; path: string }>();
  const listeners: ((request: { method: string; path: string }) => void)[] = [];
  const issuedTokens = new Set<string>();
  let refreshTokenValid = true;
  let nextTokenNumber = 1;
  let nextListId = 9_100_000_001;
  const scope = options.scope ?? DATA_MANAGER_SCOPE;
  let adsAllowlisted = true;
  const googleUsers = new Set<string>();
  const dataManagerRequests = new Map<string, FakeDataManagerRequest>();
  let holdRequests = false;
  const adsApi = googleAdsApi({ customerId: options.accountId, userLists, allowlisted: () => adsAllowlisted });

  function issueToken(form: URLSearchParams): Reply {
    const oauthError = (status: number, error: string, description: string): Reply => ({
      status,
      body: { error, error_description: description },
    });
    if (form.get('grant_type') !== 'refresh_token') return oauthError(400, 'unsupported_grant_type', 'Invalid grant_type.');
    if (form.get('client_id') !== options.clientId || form.get('client_secret') !== options.clientSecret) {
      return oauthError(401, 'invalid_client', 'The OAuth client was not found.');
    }
    if (!refreshTokenValid || form.get('refresh_token') !== options.refreshToken) {
      return oauthError(400, 'invalid_grant', 'Token has been expired or revoked.');
    }
    const token = `ya29.fake-${nextTokenNumber++}-${randomUUID()}`;
    issuedTokens.add(token);
    return {
      status: 200,
      body: {
        access_token: token,
        expires_in: options.tokenLifetimeSeconds ?? 3599,
        scope,
        token_type: 'Bearer',
      },
    };
  }

  /** Every token the fake knows carries the scopes of `options.scope`. */
  function authenticate(req: IncomingMessage, requiredScope: string): void {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !(issuedTokens.has(token) || token === options.staticAccessToken)) throw unauthenticated();
    if (!scope.split(' ').includes(requiredScope)) {
      throw new RpcError('PERMISSION_DENIED', 'Request had insufficient authentication scopes.', {
        reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT',
      });
    }
  }

  function checkDeveloperToken(req: IncomingMessage): void {
    const given = req.headers['developer-token'];
    if (given === undefined) {
      throw adsError('UNAUTHENTICATED', { authenticationError: 'DEVELOPER_TOKEN_PARAMETER_MISSING' }, 'Developer token is missing.');
    }
    if (given !== options.developerToken) {
      throw adsError('UNAUTHENTICATED', { authenticationError: 'DEVELOPER_TOKEN_INVALID' }, 'The developer token is not valid.');
    }
    const login = req.headers['login-customer-id'];
    if (login !== undefined && !/^\d+$/.test(String(login))) {
      throw adsError('INVALID_ARGUMENT', { authenticationError: 'LOGIN_CUSTOMER_ID_PARAMETER_INVALID' }, 'login-customer-id must be digits.');
    }
  }

  function checkAccount(account: { accountType: string; accountId: string }, field: string): void {
    if (account.accountType !== 'GOOGLE_ADS' || account.accountId !== options.accountId) {
      throw new RpcError('PERMISSION_DENIED', `The caller does not have permission to access ${field}.`, {
        reason: 'PERMISSION_DENIED',
      });
    }
  }

  function changeMembers(operation: 'ingest' | 'remove', body: Record<string, unknown>): Reply {
    checkKnownFields(body, KNOWN_FIELDS[operation], '');
    const destinations = body['destinations'];
    if (!Array.isArray(destinations) || destinations.length === 0) throw invalid('destinations', 'destinations is required.', 'REQUIRED_FIELD_MISSING');
    if (destinations.length > MAX_DESTINATIONS) {
      throw invalid('destinations', 'Maximum number of destinations allowed per request is 10.', 'TOO_MANY_DESTINATIONS');
    }
    const lists = destinations.map((raw, i) => {
      const at = `destinations[${i}]`;
      const destination = requireRecord(raw, at, KNOWN_FIELDS.destination);
      checkAccount(parseProductAccount(destination['operatingAccount'], `${at}.operating_account`), `${at}.operating_account`);
      if (destination['loginAccount'] !== undefined) parseProductAccount(destination['loginAccount'], `${at}.login_account`);
      const listId = requireString(destination['productDestinationId'], `${at}.product_destination_id`);
      const list = userLists.get(listId);
      if (!list) throw invalid(`${at}.product_destination_id`, 'User list is not valid.', 'INVALID_USER_LIST_ID');
      return list;
    });
    if (body['encoding'] !== undefined && body['encoding'] !== 'HEX' && body['encoding'] !== 'BASE64') {
      throw invalid('encoding', 'Enum value cannot be used.', 'INVALID_ENUM_VALUE');
    }
    const { keys, dataType } = parseMembers(body['audienceMembers'], body['encoding']);
    if (operation === 'ingest') {
      parseConsent(body['consent'], 'consent');
      const terms = body['termsOfService'];
      if (isRecord(terms)) checkKnownFields(terms, KNOWN_FIELDS.termsOfService, 'terms_of_service');
      if (!isRecord(terms) || terms['customerMatchTermsOfServiceStatus'] !== 'ACCEPTED') {
        throw invalid('terms_of_service', 'Required terms and conditions are not accepted.', 'TERMS_AND_CONDITIONS_NOT_SIGNED');
      }
    }
    for (const list of lists) {
      if (list.uploadKeyType !== dataType) {
        throw invalid('destinations', 'Type of the user list is not applicable for this request.', 'INVALID_USER_LIST_TYPE');
      }
    }
    const requestId = randomUUID();
    if (body['validateOnly'] !== true) {
      for (const list of lists) {
        for (const key of keys.flat()) {
          if (operation === 'ingest') list.members.add(key);
          else list.members.delete(key);
        }
      }
      dataManagerRequests.set(requestId, {
        operation,
        dataType,
        destinations: destinations as Record<string, unknown>[],
        recordCount: keys.length,
        identifierCount: keys.flat().length,
        matchedCount: keys.filter((member) => member.some((key) => googleUsers.has(key))).length,
        status: holdRequests ? 'PROCESSING' : 'SUCCESS',
      });
    }
    return { status: 200, body: { requestId } };
  }

  function userListsOf(req: IncomingMessage, url: URL, accountType: string, accountId: string, body: unknown): Reply {
    const accountPath = `accountTypes/${accountType}/accounts/${accountId}`;
    const login = req.headers['login-account'];
    if (login !== undefined && !/^accountTypes\/[A-Z_]+\/accounts\/\d+$/.test(String(login))) {
      throw invalid('login-account', 'The login-account header must look like accountTypes/GOOGLE_ADS/accounts/123.', 'INVALID_FORMAT');
    }
    checkAccount({ accountType, accountId }, 'parent');
    if (req.method === 'GET') {
      const pageSize = url.searchParams.get('pageSize');
      if (pageSize !== null && !/^[1-9]\d*$/.test(pageSize)) throw invalid('page_size', 'page_size must be positive.');
      const all = [...userLists].map(([id, list]) => toUserListResource(accountPath, id, list));
      return { status: 200, body: { userLists: all.slice(0, Number(pageSize ?? 100)) } };
    }
    const userList = requireRecord(body, 'user_list', KNOWN_FIELDS.userList);
    const displayName = requireString(userList['displayName'], 'user_list.display_name');
    const info = requireRecord(userList['ingestedUserListInfo'], 'user_list.ingested_user_list_info', KNOWN_FIELDS.ingestedUserListInfo);
    const keyTypes = info['uploadKeyTypes'];
    if (!Array.isArray(keyTypes) || keyTypes.length !== 1 || !['CONTACT_ID', 'MOBILE_ID'].includes(keyTypes[0] as string)) {
      throw invalid('user_list.ingested_user_list_info.upload_key_types', 'Exactly one upload key type is required.', 'INVALID_ARGUMENT');
    }
    const dataSourceType = isRecord(info['contactIdInfo']) ? info['contactIdInfo']['dataSourceType'] : undefined;
    if (dataSourceType !== undefined && !DATA_SOURCE_TYPES.includes(dataSourceType as string)) {
      throw invalid('user_list.ingested_user_list_info.contact_id_info.data_source_type', 'Enum value cannot be used.', 'INVALID_ENUM_VALUE');
    }
    if ([...userLists.values()].some((list) => list.displayName === displayName)) {
      throw new RpcError('ALREADY_EXISTS', `A user list named "${displayName}" already exists.`);
    }
    const id = String(nextListId++);
    const list: FakeUserList = { displayName, uploadKeyType: keyTypes[0] as FakeUserList['uploadKeyType'], members: new Set() };
    userLists.set(id, list);
    return { status: 200, body: toUserListResource(accountPath, id, list) };
  }

  function route(req: IncomingMessage, rawBody: string, body: unknown): Reply {
    const url = new URL(req.url ?? '/', 'http://fake');
    const isTokenRequest = url.pathname === '/token';
    const request = { method: req.method ?? '', path: url.pathname };
    for (const listener of listeners) listener(request);
    const failure = failures.take(request, (kind) => (kind === 'token-server-error') === isTokenRequest);
    if (failure === 'token-server-error') return { status: 503, body: 'Service Unavailable' };
    if (failure) return FAILURES[failure]().toReply();

    if (isTokenRequest) {
      if (req.method !== 'POST' || req.headers['content-type'] !== 'application/x-www-form-urlencoded') {
        return { status: 400, body: { error: 'invalid_request', error_description: 'Bad Request' } };
      }
      return issueToken(new URLSearchParams(rawBody));
    }
    const readJsonBody = () => {
      if (req.headers['content-type'] !== 'application/json') {
        throw new RpcError('INVALID_ARGUMENT', 'Invalid JSON payload received: the content type must be application/json.');
      }
      if (!isRecord(body)) throw new RpcError('INVALID_ARGUMENT', 'Invalid JSON payload received.');
      return body;
    };
    if (/^\/v\d+\/customers\//.test(url.pathname) && req.method === 'POST') {
      authenticate(req, ADS_SCOPE);
      checkDeveloperToken(req);
      return adsApi.route(url.pathname, readJsonBody());
    }
    authenticate(req, DATA_MANAGER_SCOPE);

    const members = /^\/v1\/audienceMembers:(ingest|remove)$/.exec(url.pathname);
    if (members?.[1] && req.method === 'POST') return changeMembers(members[1] as 'ingest' | 'remove', readJsonBody());
    if (url.pathname === '/v1/requestStatus:retrieve' && req.method === 'GET') {
      const requestId = url.searchParams.get('requestId');
      if (!requestId) throw invalid('request_id', 'request_id is required.', 'REQUIRED_FIELD_MISSING');
      const request = dataManagerRequests.get(requestId);
      // Google does not document its answer for an id it does not know; the fake says NOT_FOUND.
      if (!request) throw new RpcError('NOT_FOUND', 'Requested entity was not found.');
      return { status: 200, body: toRequestStatus(request) };
    }
    const lists = /^\/v1\/accountTypes\/([A-Z_]+)\/accounts\/(\d+)\/userLists$/.exec(url.pathname);
    if (lists?.[1] && lists[2] && req.method === 'GET') return userListsOf(req, url, lists[1], lists[2], undefined);
    if (lists?.[1] && lists[2] && req.method === 'POST') return userListsOf(req, url, lists[1], lists[2], readJsonBody());
    const one = /^\/v1\/(accountTypes\/([A-Z_]+)\/accounts\/(\d+))\/userLists\/(\d+)$/.exec(url.pathname);
    if (one?.[1] && one[2] && one[3] && one[4] && req.method === 'GET') {
      checkAccount({ accountType: one[2], accountId: one[3] }, 'name');
      const list = userLists.get(one[4]);
      if (!list) throw new RpcError('NOT_FOUND', `Requested entity was not found.`);
      return { status: 200, body: toUserListResource(one[1], one[4], list) };
    }
    throw new RpcError('NOT_FOUND', `The requested URL ${url.pathname} was not found on this server.`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const isForm = req.headers['content-type'] === 'application/x-www-form-urlencoded';
    const body = isForm ? Object.fromEntries(new URLSearchParams(rawBody)) : parseJson(rawBody);
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      loginAccount: req.headers['login-account'] as string | undefined,
      developerToken: req.headers['developer-token'] as string | undefined,
      loginCustomerId: req.headers['login-customer-id'] as string | undefined,
      body: body ?? rawBody,
    });

    let reply: Reply;
    try {
      reply = route(req, rawBody, body);
    } catch (error) {
      if (!(error instanceof RpcError)) throw error;
      reply = error.toReply();
    }
    const isJson = typeof reply.body !== 'string';
    res.writeHead(reply.status, { 'content-type': isJson ? 'application/json; charset=UTF-8' : 'text/plain', ...reply.headers });
    res.end(isJson ? JSON.stringify(reply.body) : reply.body);
  }

  const server = await serveFake('fake Google', handle);
  const baseUrl = server.baseUrl;

  return {
    baseUrl,
    tokenUrl: `${baseUrl}/token`,
    userLists,
    requests,
    failNext: failures.add,
    adsJobs: adsApi.jobs,
    completeAdsJobs: adsApi.completeJobs,
    get holdAdsJobs() {
      return adsApi.holdJobs;
    },
    set holdAdsJobs(value) {
      adsApi.holdJobs = value;
    },
    failNextAdsJob: adsApi.failNextJob,
    get adsAllowlisted() {
      return adsAllowlisted;
    },
    set adsAllowlisted(value) {
      adsAllowlisted = value;
    },
    googleUsers,
    dataManagerRequests,
    get holdRequests() {
      return holdRequests;
    },
    set holdRequests(value) {
      holdRequests = value;
    },
    completeRequests() {
      for (const request of dataManagerRequests.values()) if (request.status === 'PROCESSING') request.status = 'SUCCESS';
    },
    onRequest(listener) {
      listeners.push(listener);
    },
    revokeAccess() {
      refreshTokenValid = false;
      issuedTokens.clear();
    },
    close: server.close,
  };
}
