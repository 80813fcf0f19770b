import { expect } from 'vitest';
import { scheduler } from '../../src/jobs/scheduler.js';
import { graphql } from '../generated/gql.js';
import type { RecordedRequest } from '../fakes/meta-server.js';
import type { TestGateway } from './gateway.js';
import { TriggerAudienceSync } from './operations.js';
import { dataOf, expectType } from './scenario.js';
import { waitFor } from './wait.js';

// Running syncs to their end and reading what they did, through the API and the fake platform.

export const SyncRunDetails = graphql(`
  query SyncRunDetails($id: ID!) {
    node(id: $id) {
      __typename
      ... on SyncRun {
        id status phase progress dryRun trigger
        membersAdded membersRemoved membersInvalid membersUnusable unusableCounts { reason count } membersFailed totalMembers
        plannedAdds plannedUpdates plannedRemoves
        membersRefused refusalReason invalidSamples errorMessage errorDetails waitedSeconds startedAt finishedAt
      }
    }
  }
`);

export const SyncState = graphql(`
  query SyncState($id: ID!, $runStatus: SyncRunStatus) {
    node(id: $id) {
      __typename
      ... on AudienceSync {
        id mode status statusError lastSyncedAt lastSyncedCount platformAudienceId platformAudienceName pendingChanges settledAt
        lastRun { id status }
        runs(first: 50, status: $runStatus) { edges { node { id status dryRun } } }
      }
    }
  }
`);

export const TaskDetails = graphql(`
  query TaskDetails($id: ID!) {
    task(id: $id) { id status kind result error completedAt run { id status } }
  }
`);

const FINISHED = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

export async function triggerSync(gateway: TestGateway, syncId: string, options: { dryRun?: boolean } = {}) {
  const result = dataOf(await gateway.execute(TriggerAudienceSync, { id: syncId, dryRun: options.dryRun }));
  return expectType(result.triggerAudienceSync, 'TriggerAudienceSyncSuccess');
}

export async function readRun(gateway: TestGateway, runId: string) {
  return expectType(dataOf(await gateway.execute(SyncRunDetails, { id: runId })).node!, 'SyncRun');
}

export async function readTask(gateway: TestGateway, taskId: string) {
  const { task } = dataOf(await gateway.execute(TaskDetails, { id: taskId }));
  expect(task).not.toBeNull();
  return task!;
}

/**
 * Runs `work` while the gateway's worker takes no job (Agenda stopped, then started again), as when every
 * worker is busy: a run `work` triggers stays QUEUED until it returns. Subscribers load the record an
 * event names when they get it, so without this a fast worker may have moved the run on before the
 * first event is read.
 */
export async function whileNoWorkerTakesJobs<T>(work: () => Promise<T>): Promise<T> {
  await scheduler().stop(false);
  try {
    return await work();
  } finally {
    await scheduler().start();
  }
}

/** Whether a run event shows the run adding, with some of it done: the state between a confirmed batch
 * and the run's end. Subscribers get a run's latest state, so a test that must see it holds the run's
 * last platform call (reading the platform audience) until it has. */
export function addingWithProgress(event: { status: string; phase: string; progress: number }): boolean {
  return event.status === 'RUNNING' && event.phase === 'adding' && event.progress > 0;
}

/** Polls the run through the API until it has ended; fails after `timeoutMs`. */
export async function waitForRunEnd(gateway: TestGateway, runId: string, timeoutMs = 60_000) {
  return waitFor(() => readRun(gateway, runId), (run) => FINISHED.includes(run.status), { what: `run ${runId} to end`, timeoutMs });
}

/** Triggers a run and waits for it to end: the run and its task, as the API shows them then. */
export async function runSync(gateway: TestGateway, syncId: string, options: { dryRun?: boolean } = {}) {
  const triggered = await triggerSync(gateway, syncId, options);
  expect(triggered.coalesced).toBe(false);
  const run = await waitForRunEnd(gateway, triggered.syncRun.id);
  return { run, task: await readTask(gateway, triggered.task.id) };
}

/** The sync as the API shows it, with its runs (only those in `runStatus`, when given), newest first. */
export async function readSync(
  gateway: TestGateway,
  syncId: string,
  runStatus?: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED',
) {
  const { node } = dataOf(await gateway.execute(SyncState, { id: syncId, runStatus }));
  const sync = expectType(node!, 'AudienceSync');
  return { ...sync, runs: sync.runs.edges.map((edge) => edge.node) };
}

export interface UsersRequest {
  method: string;
  audienceId: string;
  schema: string[];
  rows: string[][];
  session: { session_id: number; batch_seq: number; last_batch_flag: boolean; estimated_num_total: number };
}

/** The member uploads (`POST`/`DELETE …/users`) among the fake platform's requests, in order. */
export function usersRequests(requests: RecordedRequest[]): UsersRequest[] {
  return requests.flatMap((request) => {
    const match = /\/(\d+)\/users$/.exec(request.url);
    if (!match) return [];
    const body = request.body as { payload: { schema: string[]; data: string[][] }; session: UsersRequest['session'] };
    return [
      {
        method: request.method,
        audienceId: match[1]!,
        schema: body.payload.schema,
        rows: body.payload.data,
        session: body.session,
      },
    ];
  });
}

/** Each upload's method and hashed emails, to compare with what a test expects sent. */
export function uploadedEmails(uploads: UsersRequest[]): { method: string; emails: string[] }[] {
  return uploads.map((upload) => ({ method: upload.method, emails: emailColumn(upload) }));
}

/** The EMAIL column of an upload, sorted. */
export function emailColumn(request: UsersRequest): string[] {
  const column = request.schema.indexOf('EMAIL');
  expect(column).toBeGreaterThanOrEqual(0);
  return request.rows.map((row) => row[column]!).sort();
}
