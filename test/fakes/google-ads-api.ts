import { randomUUID } from 'node:crypto';
import {
  adsError,
  checkKnownFields,
  googleAdsFailure,
  requireRecord,
  RpcError,
  type AdsError,
  type Reply,
} from './google-rpc.js';
import { isRecord } from './fake-server.js';
import type { FakeUserList } from './google-server.js';

// The Google Ads API's side of Customer Match: offline user data jobs, user lists, and the GAQL
// searches the gateway makes. A job goes PENDING (created, taking operations in requests of at most
// 10,000, as Google recommends) → RUNNING (`:run`, refused while another job runs on its list) → SUCCESS or FAILED, and
// changes its list only when it succeeds. Running jobs finish when told
// (`completeJobs`) or, with `holdJobs` off, the first time their status is read.

export interface FakeAdsJob {
  listId: string;
  status: 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAILED';
  /** Set when the job runs, if it is to fail: the failure reason it will carry. */
  failWith?: string;
  /** A failed job's `failure_reason`. */
  failureReason?: string;
  consent: unknown;
  /** `create` or `remove`, once the job has operations: a job cannot mix them. */
  kind: 'create' | 'remove' | undefined;
  /** Each accepted operation's keys, as the list stores them. */
  operations: string[][];
}

const MAX_IDENTIFIERS_PER_REQUEST = 100_000;
/** Google's hard limit is the identifiers per request; it recommends at most 10,000 operations per
 * request, and the fake holds the gateway to that (the error is the fake's own). */
const MAX_OPERATIONS_PER_REQUEST = 10_000;
const MAX_IDENTIFIERS_PER_USER = 20;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const MOBILE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const KNOWN_FIELDS = {
  createJob: ['job', 'validateOnly', 'enableMatchRateRangePreview'],
  job: ['type', 'customerMatchUserListMetadata'],
  metadata: ['userList', 'consent'],
  addOperations: ['operations', 'enablePartialFailure', 'enableWarnings', 'validateOnly'],
  operation: ['create', 'remove', 'removeAll'],
  userData: ['userIdentifiers', 'transactionAttribute', 'userAttribute', 'consent'],
  userIdentifier: ['userIdentifierSource', 'hashedEmail', 'hashedPhoneNumber', 'mobileId', 'thirdPartyUserId', 'addressInfo'],
  addressInfo: ['hashedFirstName', 'hashedLastName', 'city', 'state', 'countryCode', 'postalCode', 'hashedStreetAddress'],
  mutate: ['operations', 'partialFailure', 'validateOnly', 'responseContentType'],
  userList: ['name', 'description', 'membershipStatus', 'integrationCode', 'membershipLifeSpan', 'crmBasedUserList'],
} as const;

const invalidArgument = (group: string, code: string, message: string) => adsError('INVALID_ARGUMENT', { [group]: code }, message);

/** An operation's keys, or why Google refuses it. */
function parseUserData(value: unknown): { keys: string[] } | { error: string } {
  if (!isRecord(value)) return { error: 'The operation has no user data.' };
  checkKnownFields(value, KNOWN_FIELDS.userData, 'user_data');
  const identifiers = value['userIdentifiers'];
  if (!Array.isArray(identifiers) || identifiers.length === 0) return { error: 'User data has no identifiers.' };
  if (identifiers.length > MAX_IDENTIFIERS_PER_USER) return { error: 'Too many identifiers in one user data.' };
  const keys: string[] = [];
  for (const raw of identifiers) {
    if (!isRecord(raw)) return { error: 'A user identifier must be an object.' };
    checkKnownFields(raw, KNOWN_FIELDS.userIdentifier, 'user_identifiers');
    const { hashedEmail, hashedPhoneNumber, mobileId, addressInfo } = raw;
    if (Object.keys(raw).length !== 1) return { error: 'A user identifier must hold exactly one identifier.' };
    if (hashedEmail !== undefined || hashedPhoneNumber !== undefined) {
      const hash = String(hashedEmail ?? hashedPhoneNumber);
      if (!SHA256_HEX.test(hash)) return { error: 'The identifier is not a lowercase SHA-256 hex digest.' };
      keys.push(`${hashedEmail !== undefined ? 'EMAIL' : 'PHONE'}:${hash}`);
    } else if (mobileId !== undefined) {
      if (typeof mobileId !== 'string' || !MOBILE_ID.test(mobileId)) return { error: 'The mobile id is not valid.' };
      keys.push(`MOBILE_ID:${mobileId}`);
    } else if (isRecord(addressInfo)) {
      checkKnownFields(addressInfo, KNOWN_FIELDS.addressInfo, 'address_info');
      const { hashedFirstName, hashedLastName, countryCode, postalCode } = addressInfo;
      if (!SHA256_HEX.test(String(hashedFirstName)) || !SHA256_HEX.test(String(hashedLastName))) {
        return { error: 'Names must be lowercase SHA-256 hex digests.' };
      }
      if (typeof countryCode !== 'string' || !/^[A-Z]{2}$/.test(countryCode) || typeof postalCode !== 'string' || !postalCode) {
        return { error: 'An address needs a country code and a postal code, unhashed.' };
      }
      keys.push(`ADDRESS:${String(hashedFirstName)}|${String(hashedLastName)}|${countryCode}|${postalCode}`);
    } else {
      return { error: 'The user identifier holds no identifier this fake knows.' };
    }
  }
  return { keys };
}

export function googleAdsApi(options: {
  customerId: string;
  userLists: Map<string, FakeUserList>;
  /** False for a developer token Google no longer lets use Customer Match here. */
  allowlisted: () => boolean;
}) {
  const jobs = new Map<string, FakeAdsJob>();
  const customer = `customers/${options.customerId}`;
  let holdJobs = true;
  let nextJobFailure: string | undefined;
  let nextJobId = 700_000_001;
  let nextListId = 8_100_000_001;

  function userListId(resourceName: unknown): string {
    const id = new RegExp(`^${customer}/userLists/(\\d+)$`).exec(String(resourceName))?.[1];
    if (!id || !options.userLists.has(id)) throw invalidArgument('userListError', 'USER_LIST_DOES_NOT_EXIST', 'The user list does not exist.');
    return id;
  }

  function jobOf(jobId: string): FakeAdsJob {
    const job = jobs.get(jobId);
    if (!job) throw adsError('NOT_FOUND', { requestError: 'RESOURCE_NAME_MALFORMED' }, 'The job does not exist.');
    return job;
  }

  function createJob(body: Record<string, unknown>): Reply {
    checkKnownFields(body, KNOWN_FIELDS.createJob, '');
    if (!options.allowlisted()) {
      throw invalidArgument(
        'notAllowlistedError',
        'CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE',
        'Customer is not allowlisted for accessing this feature.',
      );
    }
    const job = requireRecord(body['job'], 'job', KNOWN_FIELDS.job);
    if (job['type'] !== 'CUSTOMER_MATCH_USER_LIST') {
      throw invalidArgument('offlineUserDataJobError', 'INVALID_JOB_TYPE', 'This fake only runs Customer Match jobs.');
    }
    const metadata = requireRecord(job['customerMatchUserListMetadata'], 'customer_match_user_list_metadata', KNOWN_FIELDS.metadata);
    const consent = metadata['consent'];
    if (consent !== undefined) {
      const values = isRecord(consent) ? Object.values(consent) : [undefined];
      if (!values.every((value) => value === 'GRANTED' || value === 'DENIED')) {
        throw invalidArgument('fieldError', 'INVALID_VALUE', 'Consent values must be GRANTED or DENIED.');
      }
    }
    const id = String(nextJobId++);
    jobs.set(id, { listId: userListId(metadata['userList']), status: 'PENDING', consent, kind: undefined, operations: [] });
    return { status: 200, body: { resourceName: `${customer}/offlineUserDataJobs/${id}` } };
  }

  function addOperations(jobId: string, body: Record<string, unknown>): Reply {
    checkKnownFields(body, KNOWN_FIELDS.addOperations, '');
    const job = jobOf(jobId);
    if (job.status !== 'PENDING') {
      throw invalidArgument('offlineUserDataJobError', 'INVALID_JOB_STATUS', 'Operations can only be added to a pending job.');
    }
    const operations = body['operations'];
    if (!Array.isArray(operations) || operations.length === 0) {
      throw invalidArgument('requestError', 'REQUIRED_FIELD_MISSING', 'operations is required.');
    }
    if (operations.length > MAX_OPERATIONS_PER_REQUEST) {
      throw invalidArgument('offlineUserDataJobError', 'TOO_MANY_OPERATIONS', 'At most 10,000 operations per request.');
    }
    const kinds = operations.map((raw) => {
      const operation = requireRecord(raw, 'operations', KNOWN_FIELDS.operation);
      const kind = Object.keys(operation);
      if (kind.length !== 1 || (kind[0] !== 'create' && kind[0] !== 'remove')) {
        throw invalidArgument('mutateError', 'INVALID_OPERATION', 'Each operation must be one create or one remove.');
      }
      return kind[0];
    });
    if (new Set([...kinds, ...(job.kind ? [job.kind] : [])]).size > 1) {
      throw invalidArgument('offlineUserDataJobError', 'CONFLICTING_OPERATION', 'A job cannot both add and remove members.');
    }
    const identifiers = operations.reduce((sum: number, raw: Record<string, { userIdentifiers?: unknown[] }>) => {
      const data = Object.values(raw)[0];
      return sum + (Array.isArray(data?.userIdentifiers) ? data.userIdentifiers.length : 0);
    }, 0);
    if (identifiers > MAX_IDENTIFIERS_PER_REQUEST) {
      throw invalidArgument('offlineUserDataJobError', 'TOO_MANY_USER_IDENTIFIERS', 'At most 100,000 identifiers per request.');
    }
    const failures: AdsError[] = [];
    const accepted: string[][] = [];
    operations.forEach((raw: Record<string, unknown>, index) => {
      const parsed = parseUserData(Object.values(raw)[0]);
      if ('keys' in parsed) accepted.push(parsed.keys);
      else failures.push({ errorCode: { offlineUserDataJobError: 'INVALID_USER_DATA' }, message: parsed.error, index });
    });
    if (failures.length > 0 && body['enablePartialFailure'] !== true) {
      throw new RpcError('INVALID_ARGUMENT', 'Request contains an invalid argument.', { adsErrors: failures });
    }
    job.kind = kinds[0] as 'create' | 'remove';
    job.operations.push(...accepted);
    const partialFailureError =
      failures.length > 0 ? { code: 3, message: 'Some operations failed.', details: [googleAdsFailure(failures)] } : undefined;
    return { status: 200, body: partialFailureError ? { partialFailureError } : {} };
  }

  function runJob(jobId: string): Reply {
    const job = jobOf(jobId);
    if (job.status !== 'PENDING' || job.operations.length === 0) {
      throw invalidArgument('offlineUserDataJobError', 'INVALID_JOB_STATUS', 'Only a pending job with operations can run.');
    }
    if ([...jobs.values()].some((other) => other.listId === job.listId && other.status === 'RUNNING')) {
      throw adsError('ABORTED', { databaseError: 'CONCURRENT_MODIFICATION' }, 'Another job is running on this user list.');
    }
    job.status = 'RUNNING';
    job.failWith = nextJobFailure;
    nextJobFailure = undefined;
    return { status: 200, body: { name: `${customer}/operations/${randomUUID()}` } };
  }

  /** Ends a running job: a failing one changes nothing; otherwise its operations apply to its list. */
  function finishJob(job: FakeAdsJob): void {
    if (job.failWith !== undefined) {
      job.status = 'FAILED';
      job.failureReason = job.failWith;
      return;
    }
    const members = options.userLists.get(job.listId)!.members;
    for (const key of job.operations.flat()) {
      if (job.kind === 'create') members.add(key);
      else members.delete(key);
    }
    job.status = 'SUCCESS';
  }

  /** Jobs have no get method: their state is read with a search by resource name. */
  function jobStatus(resourceName: string): Reply {
    const id = new RegExp(`^${customer}/offlineUserDataJobs/(\\d+)$`).exec(resourceName)?.[1];
    const job = id === undefined ? undefined : jobs.get(id);
    if (!job) return { status: 200, body: { results: [] } };
    if (job.status === 'RUNNING' && !holdJobs) finishJob(job);
    const offlineUserDataJob = {
      resourceName,
      status: job.status,
      ...(job.failureReason === undefined ? {} : { failureReason: job.failureReason }),
    };
    return { status: 200, body: { results: [{ offlineUserDataJob }], fieldMask: 'offlineUserDataJob.status,offlineUserDataJob.failureReason' } };
  }

  function search(body: Record<string, unknown>): Reply {
    const query = String(body['query'] ?? '');
    if (/^SELECT customer\.id, customer\.descriptive_name FROM customer LIMIT 1$/.test(query)) {
      const row = { customer: { resourceName: customer, id: options.customerId, descriptiveName: 'Fake Ads account' } };
      return { status: 200, body: { results: [row], fieldMask: 'customer.id,customer.descriptiveName' } };
    }
    const statusOf =
      /^SELECT offline_user_data_job\.status, offline_user_data_job\.failure_reason FROM offline_user_data_job WHERE offline_user_data_job\.resource_name = '([^']+)'$/.exec(
        query,
      );
    if (statusOf) return jobStatus(statusOf[1]!);
    const listOf =
      /^SELECT user_list\.size_for_display, user_list\.size_for_search, user_list\.match_rate_percentage, user_list\.membership_status FROM user_list WHERE user_list\.resource_name = '([^']+)'$/.exec(
        query,
      );
    if (listOf) {
      const id = listOf[1]!.split('/').at(-1)!;
      const list = listOf[1] === `${customer}/userLists/${id}` ? options.userLists.get(id) : undefined;
      const userList = list && {
        resourceName: listOf[1],
        sizeForDisplay: String(list.members.size),
        sizeForSearch: String(list.members.size),
        membershipStatus: 'OPEN',
        ...(list.matchRatePercentage === undefined ? {} : { matchRatePercentage: list.matchRatePercentage }),
      };
      return { status: 200, body: { results: userList ? [{ userList }] : [] } };
    }
    const running = /FROM offline_user_data_job WHERE offline_user_data_job\.type = 'CUSTOMER_MATCH_USER_LIST' AND offline_user_data_job\.status = 'RUNNING'$/;
    if (query.includes('offline_user_data_job.customer_match_user_list_metadata.user_list') && running.test(query)) {
      const results = [...jobs]
        .filter(([, job]) => job.status === 'RUNNING')
        .map(([id, job]) => ({
          offlineUserDataJob: {
            resourceName: `${customer}/offlineUserDataJobs/${id}`,
            customerMatchUserListMetadata: { userList: `${customer}/userLists/${job.listId}` },
          },
        }));
      return { status: 200, body: { results } };
    }
    throw invalidArgument('queryError', 'UNEXPECTED_INPUT', `This fake does not answer the query: ${query}`);
  }

  function mutateUserLists(body: Record<string, unknown>): Reply {
    checkKnownFields(body, KNOWN_FIELDS.mutate, '');
    const operations = body['operations'];
    if (!Array.isArray(operations) || operations.length !== 1) {
      throw invalidArgument('requestError', 'REQUIRED_FIELD_MISSING', 'This fake takes one operation.');
    }
    const userList = requireRecord(requireRecord(operations[0], 'operations', ['create'])['create'], 'create', KNOWN_FIELDS.userList);
    const name = userList['name'];
    if (typeof name !== 'string' || !name) throw invalidArgument('fieldError', 'REQUIRED', 'name is required.');
    const crm = userList['crmBasedUserList'];
    if (!isRecord(crm) || !['CONTACT_INFO', 'MOBILE_ADVERTISING_ID'].includes(String(crm['uploadKeyType']))) {
      throw invalidArgument('userListError', 'INVALID_UPLOAD_KEY_TYPE', 'A Customer Match list needs crmBasedUserList.uploadKeyType.');
    }
    if ([...options.userLists.values()].some((list) => list.displayName === name)) {
      throw invalidArgument('userListError', 'NAME_ALREADY_USED', 'Name is already being used for another user list for the account.');
    }
    const id = String(nextListId++);
    const uploadKeyType = crm['uploadKeyType'] === 'CONTACT_INFO' ? 'CONTACT_ID' : 'MOBILE_ID';
    options.userLists.set(id, { displayName: name, uploadKeyType, members: new Set() });
    return { status: 200, body: { results: [{ resourceName: `${customer}/userLists/${id}` }] } };
  }

  return {
    jobs,
    /** Finishes every running job: it succeeds, applying its operations to its list, or fails as told. */
    completeJobs() {
      for (const job of jobs.values()) if (job.status === 'RUNNING') finishJob(job);
    },
    /** True (the default): running jobs stay RUNNING until `completeJobs`. False: a running job
     * finishes the first time its status is read. */
    get holdJobs() {
      return holdJobs;
    },
    set holdJobs(value: boolean) {
      holdJobs = value;
    },
    /** The next job to run will fail, carrying this failure reason (an OfflineUserDataJobFailureReason). */
    failNextJob(reason: string) {
      nextJobFailure = reason;
    },
    /** Answers `POST /vNN/customers/{id}/…`; the caller has checked the token and developer token. */
    route(path: string, body: Record<string, unknown>): Reply {
      const match = /^\/v\d+\/customers\/(\d+)\/(.+)$/.exec(path);
      if (match?.[1] !== options.customerId) {
        throw adsError('PERMISSION_DENIED', { authorizationError: 'USER_PERMISSION_DENIED' }, "User doesn't have permission to access customer.");
      }
      const rest = match[2]!;
      const jobPath = /^offlineUserDataJobs\/(\d+):(addOperations|run)$/.exec(rest);
      if (rest === 'offlineUserDataJobs:create') return createJob(body);
      if (jobPath?.[2] === 'addOperations') return addOperations(jobPath[1]!, body);
      if (jobPath?.[2] === 'run') return runJob(jobPath[1]!);
      if (rest === 'googleAds:search') return search(body);
      if (rest === 'userLists:mutate') return mutateUserLists(body);
      throw adsError('NOT_FOUND', { requestError: 'UNKNOWN' }, `The requested URL ${path} was not found on this server.`);
    },
  };
}
