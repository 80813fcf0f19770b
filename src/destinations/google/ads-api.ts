import { z } from 'zod';
import type { BatchOutcome, EncodedMember, PlatformJobState, UploadSession } from '../destination.js';
import { unexpectedResponse, type CallGoogle } from './client.js';
import type { GoogleConfig, ListOperations } from './settings.js';
import { googleAdsErrors } from './rpc-status.js';

/** Operations a batch may carry: each addOperations request stays at 10,000, as Google documents. */
export const ADS_API_MAX_OPERATIONS = 10_000;

const ADS_CONSENT = { CONSENT_GRANTED: 'GRANTED', CONSENT_DENIED: 'DENIED' } as const;

/** One person as a Customer Match `UserData`: all their identifiers together. */
function toUserData({ identifiers }: EncodedMember) {
  const { EMAIL, PHONE, FIRST_NAME, LAST_NAME, COUNTRY, ZIP, MOBILE_ID } = identifiers;
  if (MOBILE_ID !== undefined) return { userIdentifiers: [{ mobileId: MOBILE_ID }] };
  const userIdentifiers: object[] = [];
  if (EMAIL !== undefined) userIdentifiers.push({ hashedEmail: EMAIL });
  if (PHONE !== undefined) userIdentifiers.push({ hashedPhoneNumber: PHONE });
  if (FIRST_NAME !== undefined && LAST_NAME !== undefined && COUNTRY !== undefined && ZIP !== undefined) {
    userIdentifiers.push({
      addressInfo: { hashedFirstName: FIRST_NAME, hashedLastName: LAST_NAME, countryCode: COUNTRY, postalCode: ZIP },
    });
  }
  return { userIdentifiers };
}

const resourceNameSchema = z.object({ resourceName: z.string() });
const mutateResultSchema = z.object({ results: z.array(resourceNameSchema).length(1) });
const searchSchema = z.object({ results: z.array(z.record(z.string(), z.unknown())).default([]) });
const runningJobsSchema = z.object({
  results: z
    .array(
      z.object({
        offlineUserDataJob: z.object({
          resourceName: z.string(),
          customerMatchUserListMetadata: z.object({ userList: z.string() }).optional(),
        }),
      }),
    )
    .default([]),
});
const addOperationsSchema = z.object({ partialFailureError: z.unknown().optional() });
const jobStatusSchema = z.object({
  results: z
    .array(z.object({ offlineUserDataJob: z.object({ status: z.string(), failureReason: z.string().optional() }) }))
    .default([]),
});
/** A list's sizes (int64, as strings) and match rate (0–100), which Google fills some time after
 * uploads (UserList: https://developers.google.com/google-ads/api/reference/rpc/v24/UserList). */
const userListSchema = z.object({
  results: z
    .array(
      z.object({
        userList: z.object({
          sizeForDisplay: z.coerce.number().optional(),
          sizeForSearch: z.coerce.number().optional(),
          matchRatePercentage: z.number().min(0).max(100).optional(),
          membershipStatus: z.string().optional(),
        }),
      }),
    )
    .default([]),
});
const JOB_RESOURCE_NAME = /^customers\/\d+\/offlineUserDataJobs\/\d+$/;

/** A failed job's reason, for a marketer. Google documents failure reasons for store sales jobs only;
 * what a failed Customer Match job carries is not documented, so an unknown one is shown as it is. */
function failureReasonText(reason: string | undefined): string {
  if (!reason || reason === 'UNSPECIFIED' || reason === 'UNKNOWN') {
    return 'Google reported the job as failed without giving a reason';
  }
  return `Google reported the job as failed (${reason.toLowerCase().replaceAll('_', ' ')})`;
}

/** What addOperations' partial failure says: the operations Google refused, and why. */
function refusedOperations(partialFailureError: unknown): { invalid: number; samples: string[] } {
  const errors = googleAdsErrors(partialFailureError);
  const indexes = new Set(errors.map((error) => error.operationIndex ?? -1));
  return { invalid: indexes.size, samples: errors.map((error) => error.message) };
}

/**
 * Customer Match through the Google Ads API's offline user data jobs. Each upload (a run's adds, or
 * its removes: a job never mixes them) is one job: its first batch creates it, each batch adds its
 * operations in one addOperations request, and its last batch runs it. Every batch reports the job
 * (`platformJob`, `started` on the last), so the gateway records its members against the job, follows
 * the job with `checkJob` once it runs, and undoes the record if it fails or is never run. An upload
 * starts a job only when none is running on the list (Google would refuse to run it): otherwise it is
 * refused for now and its members stay pending; once the job finishes, the sync runs again to send them.
 */
export function adsApiOperations(config: GoogleConfig, call: CallGoogle, account: string): ListOperations {
  const customer = `customers/${config.operatingAccount.accountId}`;
  const userListName = (listId: string) => `${customer}/userLists/${listId}`;
  /** The job each upload session fills, and what its latest batch's operations gave: a retried
   * batch (same `batchSeq`) goes on with the same job and does not add its operations twice. */
  const sessionJobs = new Map<string, { job: string; added?: { batchSeq: number; invalid: number; samples: string[] } }>();

  async function runningJobOn(listId: string): Promise<string | undefined> {
    const json = await call({
      method: 'POST',
      path: `${customer}/googleAds:search`,
      body: {
        query:
          'SELECT offline_user_data_job.resource_name, offline_user_data_job.customer_match_user_list_metadata.user_list ' +
          "FROM offline_user_data_job WHERE offline_user_data_job.type = 'CUSTOMER_MATCH_USER_LIST' " +
          "AND offline_user_data_job.status = 'RUNNING'",
      },
    });
    const running = runningJobsSchema.safeParse(json);
    if (!running.success) throw unexpectedResponse();
    return running.data.results.find(
      (row) => row.offlineUserDataJob.customerMatchUserListMetadata?.userList === userListName(listId),
    )?.offlineUserDataJob.resourceName;
  }

  async function createJob(listId: string): Promise<string> {
    const json = await call({
      method: 'POST',
      path: `${customer}/offlineUserDataJobs:create`,
      listId,
      body: {
        job: {
          type: 'CUSTOMER_MATCH_USER_LIST',
          customerMatchUserListMetadata: {
            userList: userListName(listId),
            consent: {
              adUserData: ADS_CONSENT[config.consent.adUserData],
              adPersonalization: ADS_CONSENT[config.consent.adPersonalization],
            },
          },
        },
      },
    });
    const created = resourceNameSchema.safeParse(json);
    if (!created.success) throw unexpectedResponse();
    return created.data.resourceName;
  }

  async function upload(
    operation: 'create' | 'remove',
    listId: string,
    members: EncodedMember[],
    session: UploadSession,
  ): Promise<BatchOutcome> {
    if (members.length > ADS_API_MAX_OPERATIONS) {
      throw new RangeError(`Google accepts at most ${ADS_API_MAX_OPERATIONS} operations per request, got ${members.length}`);
    }
    let open = sessionJobs.get(session.id);
    if (!open) {
      const running = await runningJobOn(listId);
      if (running) {
        return {
          invalid: 0,
          invalidSamples: [],
          refused:
            `Google is still applying an earlier upload to Customer Match list ${listId} (job ${running}; this can take ` +
            `up to 24 hours). These ${operation === 'create' ? 'additions' : 'removals'} wait for a later run.`,
        };
      }
      open = { job: await createJob(listId) };
      sessionJobs.set(session.id, open);
    }
    const { job } = open;
    if (open.added?.batchSeq !== session.batchSeq) {
      const json = await call({
        method: 'POST',
        path: `${job}:addOperations`,
        listId,
        body: { enablePartialFailure: true, operations: members.map((member) => ({ [operation]: toUserData(member) })) },
      });
      const added = addOperationsSchema.safeParse(json);
      if (!added.success) throw unexpectedResponse();
      open.added = { batchSeq: session.batchSeq, ...refusedOperations(added.data.partialFailureError) };
    }
    if (session.lastBatch) {
      await call({ method: 'POST', path: `${job}:run`, listId, body: {} });
      sessionJobs.delete(session.id);
    }
    return {
      invalid: open.added.invalid,
      invalidSamples: open.added.samples,
      platformJob: { resourceName: job, started: session.lastBatch },
    };
  }

  async function checkJob(resourceName: string): Promise<PlatformJobState> {
    if (!JOB_RESOURCE_NAME.test(resourceName)) throw unexpectedResponse();
    // Jobs have no get method: their state is read through a search.
    const json = await call({
      method: 'POST',
      path: `${customer}/googleAds:search`,
      body: {
        query:
          'SELECT offline_user_data_job.status, offline_user_data_job.failure_reason FROM offline_user_data_job ' +
          `WHERE offline_user_data_job.resource_name = '${resourceName}'`,
      },
    });
    const found = jobStatusSchema.safeParse(json);
    if (!found.success) throw unexpectedResponse();
    const job = found.data.results[0]?.offlineUserDataJob;
    if (!job) return { status: 'FAILED', reason: 'Google has no record of the job any more' };
    if (job.status === 'SUCCESS') return { status: 'SUCCEEDED' };
    if (job.status === 'FAILED') return { status: 'FAILED', reason: failureReasonText(job.failureReason) };
    return { status: job.status === 'PENDING' ? 'PENDING' : 'RUNNING' };
  }

  return {
    async checkAccess() {
      const json = await call({
        method: 'POST',
        path: `${customer}/googleAds:search`,
        body: { query: 'SELECT customer.id, customer.descriptive_name FROM customer LIMIT 1' },
      });
      const found = searchSchema.safeParse(json);
      if (!found.success || found.data.results.length === 0) throw unexpectedResponse();
      return `The Google credentials and developer token work and can read ${account} through the Google Ads API`;
    },

    async ensureAudience({ platformAudienceId, name }) {
      if (platformAudienceId) return platformAudienceId;
      const json = await call({
        method: 'POST',
        path: `${customer}/userLists:mutate`,
        body: {
          operations: [
            {
              create: {
                name,
                description: 'Kept in sync by the audience sync gateway',
                membershipStatus: 'OPEN',
                crmBasedUserList: { uploadKeyType: 'CONTACT_INFO', dataSourceType: 'FIRST_PARTY' },
              },
            },
          ],
        },
      });
      const created = mutateResultSchema.safeParse(json);
      const id = created.data?.results[0]?.resourceName.split('/').at(-1);
      if (!id || !/^\d+$/.test(id)) throw unexpectedResponse();
      return id;
    },

    async readAudience(listId) {
      if (!/^\d+$/.test(listId)) throw unexpectedResponse();
      const json = await call({
        method: 'POST',
        path: `${customer}/googleAds:search`,
        listId,
        body: {
          query:
            'SELECT user_list.size_for_display, user_list.size_for_search, user_list.match_rate_percentage, ' +
            `user_list.membership_status FROM user_list WHERE user_list.resource_name = '${userListName(listId)}'`,
        },
      });
      const found = userListSchema.safeParse(json);
      if (!found.success) throw unexpectedResponse();
      const list = found.data.results[0]?.userList;
      if (!list) return { sizeLowerBound: null, sizeUpperBound: null, matchRate: null, status: null, statusDetail: null };
      // The list reaches different numbers of people on the Display network and on Search.
      const sizes = [list.sizeForDisplay, list.sizeForSearch].filter((size) => size !== undefined);
      return {
        sizeLowerBound: sizes.length > 0 ? Math.min(...sizes) : null,
        sizeUpperBound: sizes.length > 0 ? Math.max(...sizes) : null,
        matchRate: list.matchRatePercentage === undefined ? null : list.matchRatePercentage / 100,
        status: list.membershipStatus ?? null,
        statusDetail: null,
      };
    },

    addMembers: (listId, members, session) => upload('create', listId, members, session),
    removeMembers: (listId, members, session) => upload('remove', listId, members, session),
    checkJob,
  };
}
