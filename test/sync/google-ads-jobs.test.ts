import { decodeGlobalID } from '@pothos/plugin-relay';
import { expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { checkPlatformJobs } from '../../src/sync/platform-jobs.js';
import type { FakeGoogle, RecordedRequest } from '../fakes/google-server.js';
import { graphql } from '../generated/gql.js';
import { AddAudienceMembers, DeleteAudienceSync, RemoveAudienceMembers } from '../support/operations.js';
import { GOOGLE_ACCOUNT_ID, GOOGLE_LIST_ID, createGoogleDestination } from '../support/google.js';
import { changeMembers, createAudienceWith, createSync, dataOf, expectType, sha256 } from '../support/scenario.js';
import { readUntil, subscribeOverSSE } from '../support/sse.js';
import { readSync, runSync, triggerSync, waitForRunEnd } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';
import { confirmedCount } from '../support/synced-state.js';
import { waitFor } from '../support/wait.js';

// Google Ads API syncs hand each upload (a run's adds, or its removes) to one offline user data job
// that Google applies later. The worker follows each job (every PLATFORM_JOB_POLL_MS here) and undoes
// the record of a failed one, or of one its run never started.
const POLL_MS = 100;
const suite = useGatewaySuite({ reset: true, settings: { PLATFORM_JOB_POLL_MS: String(POLL_MS) } });

const JOBS = `customers/${GOOGLE_ACCOUNT_ID}/offlineUserDataJobs`;

const STARTING = ['ada@example.com', 'grace@example.com', 'linus@example.org', 'ken@example.net'];
const LEAVING = ['grace@example.com', 'ken@example.net'];
const JOINING = ['margaret@example.com', 'barbara@example.com'];
const hashed = (emails: string[]) => emails.map((email) => sha256(email)).sort();

const GoogleAdsJobsRun = graphql(`
  query GoogleAdsJobsRun($id: ID!) {
    node(id: $id) { __typename ... on SyncRun { id trigger status membersAdded membersRemoved membersRefused membersReceived } }
  }
`);

async function adsSyncScenario(emails: string[]) {
  const fake = await suite.fakeGoogle();
  const destination = await createGoogleDestination(suite.gateway, fake, 'ADS_API');
  const audience = await createAudienceWith(suite.gateway, emails);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, platformAudienceId: GOOGLE_LIST_ID });
  return { fake, audience, sync, syncUuid: decodeGlobalID(sync.id).id };
}

async function addEmails(audienceId: string, emails: string[]) {
  const result = dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId, members: emails.map((email) => ({ email })) }));
  expect(expectType(result.addAudienceMembers, 'AddAudienceMembersSuccess').added).toBe(emails.length);
}

/** Adds many members, in requests of 5,000. */
async function addManyEmails(audienceId: string, emails: string[]) {
  for (let start = 0; start < emails.length; start += 5_000) await addEmails(audienceId, emails.slice(start, start + 5_000));
}

async function removeEmails(audienceId: string, emails: string[]) {
  const result = dataOf(await suite.gateway.execute(RemoveAudienceMembers, { audienceId, members: emails.map((email) => ({ email })) }));
  expect(expectType(result.removeAudienceMembers, 'RemoveAudienceMembersSuccess').removed).toBe(emails.length);
}

async function runToSuccess(syncId: string) {
  const { run } = await runSync(suite.gateway, syncId);
  expect(run.status, run.errorMessage ?? undefined).toBe('SUCCEEDED');
  return run;
}

async function readRunCounts(runId: string) {
  return expectType(dataOf(await suite.gateway.execute(GoogleAdsJobsRun, { id: runId })).node!, 'SyncRun');
}

const platformJobsOf = async (syncUuid: string) =>
  (await db().platformJob.findMany({ where: { syncId: syncUuid } })).sort((a, b) => a.resourceName.localeCompare(b.resourceName));

/** Waits until the sync's jobs have these statuses, in the order Google numbered them. */
const waitForJobs = (syncUuid: string, statuses: string[]) =>
  waitFor(
    () => platformJobsOf(syncUuid),
    (jobs) => jobs.map((job) => job.status).join() === statuses.join(),
    { what: `platform jobs ${statuses.join()}` },
  );

/** The hashed emails the sync records as synced. */
async function syncedEmails(syncUuid: string): Promise<string[]> {
  const rows = await db().syncedMember.findMany({ where: { syncId: syncUuid } });
  return rows.map((row) => (row.identifiers as { EMAIL: string }).EMAIL).sort();
}

function heldEmails(fake: FakeGoogle): string[] {
  return [...fake.userLists.get(GOOGLE_LIST_ID)!.members].map((key) => key.replace(/^EMAIL:/, '')).sort();
}

/** The hashed emails each addOperations request carried, by operation. */
function jobOperations(requests: RecordedRequest[]) {
  return requests
    .filter((request) => request.url.endsWith(':addOperations'))
    .map((request) => {
      const { operations } = request.body as { operations: Record<string, { userIdentifiers: { hashedEmail: string }[] }>[] };
      const [kind] = Object.keys(operations[0]!);
      return { kind, emails: operations.map((operation) => operation[kind!]!.userIdentifiers[0]!.hashedEmail).sort() };
    });
}

const SyncSettlement = graphql(`
  subscription SyncSettlement($syncId: ID!) {
    audienceSyncUpdated(syncId: $syncId) { id pendingChanges settledAt }
  }
`);

test('a job that succeeds is recorded with its batch, followed until Google finishes, and its members stay synced', async () => {
  const { fake, sync, syncUuid } = await adsSyncScenario(STARTING);

  const run = await runToSuccess(sync.id);
  expect(await readRunCounts(run.id)).toMatchObject({ membersAdded: 4, membersReceived: null });
  const [running] = await waitFor(() => platformJobsOf(syncUuid), (jobs) => jobs[0]?.checkedAt != null, { what: 'a first check' });
  expect(running).toMatchObject({
    runId: decodeGlobalID(run.id).id,
    platform: 'GOOGLE',
    resourceName: `${JOBS}/700000001`,
    action: 'ADD',
    status: 'RUNNING',
    finishedAt: null,
  });
  expect(running!.memberCount).toBe(4);
  // The run succeeded, but Google has not applied its job yet: the destination has not settled.
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ pendingChanges: 4, settledAt: null });
  const stored = await db().platformJobMember.findMany({ where: { jobId: running!.id } });
  const contacts = await db().syncedMember.findMany({ where: { syncId: syncUuid } });
  expect(stored.map((member) => member.contactId).sort()).toEqual(contacts.map((member) => member.contactId).sort());
  // An addition keeps no identifiers: undoing it only needs the contact.
  expect(stored.every((member) => member.identifiers === null)).toBe(true);

  // The sync's subscribers hear when Google's job settles it.
  const updates = await subscribeOverSSE(suite.gateway, SyncSettlement, { syncId: sync.id });
  fake.completeAdsJobs();
  const settled = (await readUntil(updates, (data) => data.audienceSyncUpdated.pendingChanges === 0)).at(-1)!;
  const [job] = await waitForJobs(syncUuid, ['SUCCEEDED']);
  expect(settled.audienceSyncUpdated.settledAt).toBe(job!.finishedAt!.toISOString());
  expect(job).toMatchObject({ errorMessage: null });
  // The job is marked SUCCEEDED, then its members go, chunk by chunk.
  await waitFor(() => db().platformJobMember.count({ where: { jobId: job!.id } }), (count) => count === 0, { what: "the job's members to go" });
  expect(job!.finishedAt).toBeInstanceOf(Date);

  expect(await syncedEmails(syncUuid)).toEqual(hashed(STARTING));
  expect(heldEmails(fake)).toEqual(hashed(STARTING));
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({
    status: 'ACTIVE',
    statusError: null,
    pendingChanges: 0,
    settledAt: job!.finishedAt!.toISOString(),
  });
});

test('a job Google fails later: its members are un-recorded, the sync says why, and the next run re-sends exactly them', async () => {
  const { fake, audience, sync, syncUuid } = await adsSyncScenario(STARTING);
  fake.holdAdsJobs = false;
  await runToSuccess(sync.id);
  await waitForJobs(syncUuid, ['SUCCEEDED']);

  await addEmails(audience.id, JOINING);
  fake.failNextAdsJob('UNKNOWN');
  const failing = await runToSuccess(sync.id);
  expect(failing.membersAdded).toBe(2);

  const [, failed] = await waitForJobs(syncUuid, ['SUCCEEDED', 'FAILED']);
  expect(failed).toMatchObject({ action: 'ADD', errorMessage: 'Google reported the job as failed without giving a reason' });
  expect(await syncedEmails(syncUuid)).toEqual(hashed(STARTING));
  const erred = await readSync(suite.gateway, sync.id);
  expect(erred.status).toBe('ERROR');
  expect(erred.statusError).toMatch(
    new RegExp(
      `^The destination did not apply 2 additions sent at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC \\(job ${JOBS}/700000002\\): ` +
        'Google reported the job as failed without giving a reason\\. The next run sends these members again\\.$',
    ),
  );
  expect(heldEmails(fake)).toEqual(hashed(STARTING));

  const before = fake.requests.length;
  const resent = await runToSuccess(sync.id);
  expect(resent).toMatchObject({ membersAdded: 2, membersRemoved: 0 });
  expect(jobOperations(fake.requests.slice(before))).toEqual([{ kind: 'create', emails: hashed(JOINING) }]);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ACTIVE', statusError: null });
  await waitForJobs(syncUuid, ['SUCCEEDED', 'FAILED', 'SUCCEEDED']);
  expect(heldEmails(fake)).toEqual(hashed([...STARTING, ...JOINING]));
  expect(await syncedEmails(syncUuid)).toEqual(hashed([...STARTING, ...JOINING]));
});

test('a removal job Google fails: the members are recorded again with the identifiers they were sent with', async () => {
  const { fake, audience, sync, syncUuid } = await adsSyncScenario(STARTING);
  fake.holdAdsJobs = false;
  await runToSuccess(sync.id);
  await waitForJobs(syncUuid, ['SUCCEEDED']);
  const recorded = await db().syncedMember.findMany({ where: { syncId: syncUuid }, orderBy: { contactId: 'asc' } });

  await removeEmails(audience.id, LEAVING);
  fake.failNextAdsJob('UNKNOWN');
  expect(await runToSuccess(sync.id)).toMatchObject({ membersRemoved: 2 });

  const [, failed] = await waitForJobs(syncUuid, ['SUCCEEDED', 'FAILED']);
  expect(failed!.action).toBe('REMOVE');
  const restored = await db().syncedMember.findMany({ where: { syncId: syncUuid }, orderBy: { contactId: 'asc' } });
  expect(restored.map(({ contactId, identifiers }) => ({ contactId, identifiers }))).toEqual(
    recorded.map(({ contactId, identifiers }) => ({ contactId, identifiers })),
  );
  expect((await readSync(suite.gateway, sync.id)).statusError).toMatch(
    /did not apply 2 removals .*The next run removes these members again\.$/,
  );
  expect(heldEmails(fake)).toEqual(hashed(STARTING));

  const before = fake.requests.length;
  expect(await runToSuccess(sync.id)).toMatchObject({ membersAdded: 0, membersRemoved: 2 });
  expect(jobOperations(fake.requests.slice(before))).toEqual([{ kind: 'remove', emails: hashed(LEAVING) }]);
  await waitForJobs(syncUuid, ['SUCCEEDED', 'FAILED', 'SUCCEEDED']);
  expect(heldEmails(fake)).toEqual(hashed(STARTING.filter((email) => !LEAVING.includes(email))));
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ACTIVE', statusError: null });
});

test('two jobs never overlap on a list: what waits for a running job goes out in a run started once it finishes', async () => {
  const { fake, audience, sync, syncUuid } = await adsSyncScenario(STARTING);
  let mostRunningAtOnce = 0;
  fake.onRequest(() => {
    const running = [...fake.adsJobs.values()].filter((job) => job.listId === GOOGLE_LIST_ID && job.status === 'RUNNING').length;
    mostRunningAtOnce = Math.max(mostRunningAtOnce, running);
  });
  /** Waits for the run after `previous` the gateway starts by itself, to its end. */
  const nextRunAfter = async (previous: string) => {
    const state = await waitFor(
      () => readSync(suite.gateway, sync.id),
      (current) => current.lastRun != null && current.lastRun.id !== previous,
      { what: 'a follow-up run' },
    );
    return waitForRunEnd(suite.gateway, state.lastRun!.id);
  };

  expect(await runToSuccess(sync.id)).toMatchObject({ membersAdded: 4 });
  await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
  const second = await runToSuccess(sync.id);
  // Google still applies the first job: nothing of this run may start another on the list.
  expect(await readRunCounts(second.id)).toMatchObject({ membersAdded: 0, membersRemoved: 0, membersRefused: 4 });
  expect(fake.adsJobs.size).toBe(1);
  // The first job's 4 members, and the 4 changes refused while it runs.
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ pendingChanges: 8, settledAt: null });

  fake.completeAdsJobs();
  const third = await nextRunAfter(second.id);
  expect(await readRunCounts(third.id)).toMatchObject({ trigger: 'PLATFORM_JOB', status: 'SUCCEEDED', membersAdded: 2, membersRefused: 2 });

  fake.completeAdsJobs();
  const fourth = await nextRunAfter(third.id);
  expect(await readRunCounts(fourth.id)).toMatchObject({ trigger: 'PLATFORM_JOB', status: 'SUCCEEDED', membersRemoved: 2, membersRefused: 0 });

  fake.completeAdsJobs();
  await waitForJobs(syncUuid, ['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
  expect([...fake.adsJobs.values()].map((job) => job.status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
  expect(mostRunningAtOnce).toBe(1);
  const lastJob = (await platformJobsOf(syncUuid)).find((job) => job.runId === decodeGlobalID(fourth.id).id)!;
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ pendingChanges: 0, settledAt: lastJob.finishedAt!.toISOString() });
  expect(heldEmails(fake)).toEqual(hashed([...STARTING.filter((email) => !LEAVING.includes(email)), ...JOINING]));
  // Nothing was left waiting: no further run was started.
  await new Promise((resolve) => setTimeout(resolve, 5 * POLL_MS));
  expect((await readSync(suite.gateway, sync.id)).lastRun?.id).toBe(fourth.id);
});

test('workers checking at once check each job once: a claimed job is not checked again until it is due', async () => {
  const { fake, sync, syncUuid } = await adsSyncScenario(STARTING);
  fake.holdAdsJobs = false;
  fake.failNextAdsJob('UNKNOWN');
  await runToSuccess(sync.id);

  await waitFor(
    async () => {
      await Promise.all([1, 2, 3].map(() => checkPlatformJobs({ minIntervalMs: POLL_MS })));
      return platformJobsOf(syncUuid);
    },
    (jobs) => jobs[0]?.status === 'FAILED',
    { what: 'the job to fail' },
  );
  const statusReads = fake.requests.filter((request) =>
    JSON.stringify(request.body).includes(`offline_user_data_job.resource_name = '${JOBS}/700000001'`),
  );
  expect(statusReads).toHaveLength(1);
  expect(await syncedEmails(syncUuid)).toEqual([]);
});

test("a deleted sync's jobs are not followed, and are dropped", async () => {
  const { fake, sync, syncUuid } = await adsSyncScenario(STARTING);
  await runToSuccess(sync.id);
  expect(await platformJobsOf(syncUuid)).toHaveLength(1);

  const deleted = dataOf(await suite.gateway.execute(DeleteAudienceSync, { id: sync.id }));
  expectType(deleted.deleteAudienceSync, 'DeleteAudienceSyncSuccess');
  const requestsAfterDelete = fake.requests.length;
  fake.failNextAdsJob('UNKNOWN');
  await checkPlatformJobs({ minIntervalMs: 0 });
  expect(fake.requests.slice(requestsAfterDelete)).toEqual([]);
  await waitFor(() => platformJobsOf(syncUuid), (jobs) => jobs.length === 0, { what: 'the jobs to be dropped' });
});

/** The job requests of the Google Ads API among `requests`: `create`, `addOperations` (with its
 * operation count) or `run`. */
function jobRequests(requests: RecordedRequest[]): string[] {
  return requests.flatMap((request) => {
    if (request.url.endsWith('offlineUserDataJobs:create')) return ['create'];
    if (request.url.endsWith(':run')) return ['run'];
    if (!request.url.endsWith(':addOperations')) return [];
    return [`addOperations ${(request.body as { operations: unknown[] }).operations.length}`];
  });
}

const memberCountOf = (jobId: string) => db().platformJobMember.count({ where: { jobId } });

test('a 25,000-member upload is one job fed in three requests and run once; its failure un-records all 25,000, and the next run sends them again', async () => {
  const { fake, audience, sync, syncUuid } = await adsSyncScenario([]);
  const emails = Array.from({ length: 25_000 }, (_, i) => `person${i}@example.com`);
  await addManyEmails(audience.id, emails);
  fake.failNextAdsJob('UNKNOWN');

  const before = fake.requests.length;
  const { syncRun } = await triggerSync(suite.gateway, sync.id);
  const run = await waitForRunEnd(suite.gateway, syncRun.id, 60_000);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 25_000 });
  expect(jobRequests(fake.requests.slice(before))).toEqual([
    'create',
    'addOperations 10000',
    'addOperations 10000',
    'addOperations 5000',
    'run',
  ]);
  expect(fake.adsJobs.size).toBe(1);
  const [job] = await platformJobsOf(syncUuid);
  expect(job).toMatchObject({ status: 'RUNNING', action: 'ADD', memberCount: 25_000 });
  expect(await memberCountOf(job!.id)).toBe(25_000);
  expect(await confirmedCount(syncUuid)).toBe(25_000);

  fake.completeAdsJobs();
  await waitForJobs(syncUuid, ['FAILED']);
  expect(await confirmedCount(syncUuid)).toBe(0);
  expect(await memberCountOf(job!.id)).toBe(0);
  expect((await readSync(suite.gateway, sync.id)).statusError).toMatch(/^The destination did not apply 25000 additions .*The next run sends these members again\.$/);

  fake.holdAdsJobs = false;
  const resent = await triggerSync(suite.gateway, sync.id);
  expect(await waitForRunEnd(suite.gateway, resent.syncRun.id, 60_000)).toMatchObject({ status: 'SUCCEEDED', membersAdded: 25_000 });
  expect(fake.adsJobs.size).toBe(2);
  await waitForJobs(syncUuid, ['FAILED', 'SUCCEEDED']);
  expect(heldEmails(fake)).toHaveLength(25_000);
  expect(await confirmedCount(syncUuid)).toBe(25_000);
}, 120_000);

test('a run that fails after its first batch leaves its job never run; once the run has ended, the job is undone', async () => {
  const { fake, audience, sync, syncUuid } = await adsSyncScenario([]);
  await addManyEmails(audience.id, Array.from({ length: 15_000 }, (_, i) => `person${i}@example.com`));
  let addOperationsSeen = 0;
  fake.failNext('permission-denied', 1, (request) => request.path.endsWith(':addOperations') && ++addOperationsSeen === 2);

  const { syncRun } = await triggerSync(suite.gateway, sync.id);
  const failed = await waitForRunEnd(suite.gateway, syncRun.id, 60_000);
  expect(failed.status).toBe('FAILED');
  expect([...fake.adsJobs.values()].map((job) => [job.status, job.operations.length])).toEqual([['PENDING', 10_000]]);

  // The poller finds the job still pending on Google with its run over: the first batch is un-recorded.
  const [abandoned] = await waitForJobs(syncUuid, ['FAILED']);
  expect(abandoned).toMatchObject({ action: 'ADD', memberCount: 10_000, errorMessage: expect.stringMatching(/ended before starting it/) });
  expect(await memberCountOf(abandoned!.id)).toBe(0);
  expect(await confirmedCount(syncUuid)).toBe(0);
  expect((await readSync(suite.gateway, sync.id)).statusError).toMatch(
    /^The destination did not apply 10000 additions .*ended before starting it.*The next run sends these members again\.$/,
  );

  fake.holdAdsJobs = false;
  const before = fake.requests.length;
  const retried = await triggerSync(suite.gateway, sync.id);
  expect(await waitForRunEnd(suite.gateway, retried.syncRun.id, 60_000)).toMatchObject({ status: 'SUCCEEDED', membersAdded: 15_000 });
  expect(jobRequests(fake.requests.slice(before))).toEqual(['create', 'addOperations 10000', 'addOperations 5000', 'run']);
  await waitForJobs(syncUuid, ['FAILED', 'SUCCEEDED']);
  expect(heldEmails(fake)).toHaveLength(15_000);
}, 120_000);

test('adds and removes of one run go in two jobs, each run once', async () => {
  const { fake, audience, sync, syncUuid } = await adsSyncScenario(STARTING);
  fake.holdAdsJobs = false;
  await runToSuccess(sync.id);
  await waitForJobs(syncUuid, ['SUCCEEDED']);

  // The adds' job still runs when the removes start: they wait for the run after it.
  fake.holdAdsJobs = true;
  await changeMembers(suite.gateway, audience.id, { add: JOINING, remove: LEAVING });
  const before = fake.requests.length;
  expect(await runToSuccess(sync.id)).toMatchObject({ membersAdded: 2, membersRefused: 2 });
  fake.completeAdsJobs();
  await waitForJobs(syncUuid, ['SUCCEEDED', 'SUCCEEDED', 'RUNNING']);
  fake.completeAdsJobs();
  await waitForJobs(syncUuid, ['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
  expect(jobOperations(fake.requests.slice(before))).toEqual([
    { kind: 'create', emails: hashed(JOINING) },
    { kind: 'remove', emails: hashed(LEAVING) },
  ]);
  expect(jobRequests(fake.requests.slice(before))).toEqual(['create', 'addOperations 2', 'run', 'create', 'addOperations 2', 'run']);
  expect((await platformJobsOf(syncUuid)).map((job) => job.action)).toEqual(['ADD', 'ADD', 'REMOVE']);
});
