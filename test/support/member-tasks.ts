import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { db } from '../../src/infra/db.js';
import { graphql } from '../generated/gql.js';
import type { TestGateway } from './gateway.js';
import { dataOf } from './scenario.js';
import { waitFor } from './wait.js';

// Member tasks (syncAudiences, importAudienceMembers): uploads, following a task to its end, and
// holding a workspace's tasks back so a test can subscribe before one starts.

export const MemberTaskDetails = graphql(`
  query MemberTaskDetails($id: ID!) {
    task(id: $id) { id kind status progress processed total result error startedAt completedAt }
  }
`);

export const MemberTaskUpdated = graphql(`
  subscription MemberTaskUpdated($taskId: ID!) {
    taskUpdated(taskId: $taskId) { id status progress processed total result error }
  }
`);

const ENDED = ['COMPLETED', 'FAILED'];

/** Polls the task through the API until it has ended; fails after `timeoutMs`. */
export async function waitForTaskEnd(gateway: TestGateway, taskId: string, options: { apiKey?: string; timeoutMs?: number } = {}) {
  const readTask = async () => {
    const { task } = dataOf(await gateway.execute(MemberTaskDetails, { id: taskId }, { apiKey: options.apiKey }));
    expect(task).not.toBeNull();
    return task!;
  };
  return waitFor(readTask, (task) => ENDED.includes(task.status), { what: `task ${taskId} to end`, timeoutMs: options.timeoutMs ?? 60_000 });
}

/**
 * Holds the workspace's member tasks back: an older member task that has not ended makes newer ones
 * wait their turn. Returns the release, after which they run (within about a second).
 */
export async function holdMemberTasks(workspaceId: string): Promise<() => Promise<void>> {
  const blocker = await db().task.create({
    data: { id: randomUUID(), workspaceId, kind: 'SYNC_AUDIENCES', status: 'RUNNING', createdAt: new Date(Date.now() - 60_000) },
  });
  return async () => {
    await db().task.update({ where: { id: blocker.id }, data: { status: 'COMPLETED', completedAt: new Date() } });
  };
}

/** POSTs a GraphQL multipart request (fetch + FormData) to the gateway's real port: importAudienceMembers
 * with `file` as the upload. Returns the HTTP status and the parsed JSON body. */
export async function uploadMembers(
  gateway: TestGateway,
  audienceId: string,
  file: string | Uint8Array,
  options: { apiKey?: string | null; filename?: string; selection?: string } = {},
) {
  const apiKey = options.apiKey === undefined ? gateway.apiKey : options.apiKey;
  const selection =
    options.selection ??
    `__typename
     ... on ImportAudienceMembersSuccess { task { id kind status total } }
     ... on Error { code message }
     ... on ValidationError { field issues { field message } }
     ... on NotFoundError { field }`;
  const form = new FormData();
  form.set(
    'operations',
    JSON.stringify({
      query: `mutation ImportMembersUpload($audienceId: ID!, $file: File!) {
        importAudienceMembers(audienceId: $audienceId, file: $file) { ${selection} } }`,
      variables: { audienceId, file: null },
    }),
  );
  form.set('map', JSON.stringify({ 0: ['variables.file'] }));
  form.set('0', new Blob([typeof file === 'string' ? file : new Uint8Array(file)], { type: 'text/csv' }), options.filename ?? 'members.csv');
  const response = await fetch(gateway.app.url, {
    method: 'POST',
    headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
    body: form,
  });
  return { status: response.status, body: (await response.json()) as { data?: any; errors?: any[] } };
}
