import { readFile } from 'node:fs/promises';
import { parse, print, validate, type OperationDefinitionNode } from 'graphql';
import { expect, test } from 'vitest';
import { schema } from '../src/schema/index.js';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { RECEIVER_DEFAULT_PORT, RECEIVER_PATH, startReceiver } from '../scripts/receiver.js';
import { signatureHeaders } from '../src/destinations/webhook/signature.js';
import {
  ReadmeAddMembersDocument,
  ReadmeCancelRunDocument,
  ReadmeCreateAudienceDocument,
  ReadmeCreateReceiverDestinationDocument,
  type ReadmeCreateReceiverDestinationMutation,
  ReadmeCreateSegmentDocument,
  ReadmeCreateSyncDocument,
  ReadmeDashboardRunsDocument,
  ReadmeFollowRunsDocument,
  ReadmeRunHistoryDocument,
  ReadmeTriggerSyncDocument,
  ReadmeWatchSyncsDocument,
} from './generated/graphql.js';
import { dataOf } from './support/scenario.js';
import { readUntil, subscribeOverSSE } from './support/sse.js';
import { useGatewaySuite } from './support/suite.js';
import { triggerSync } from './support/sync-runs.js';

const suite = useGatewaySuite();

const read = (path: string) => readFile(new URL(path, import.meta.url), 'utf8');

/** The operations of a GraphQL text, printed canonically, by name. */
function operations(text: string): Map<string, string> {
  const definitions = parse(text).definitions as OperationDefinitionNode[];
  return new Map(definitions.map((definition) => [definition.name?.value ?? '(anonymous)', print(definition)]));
}

test('the README’s GraphQL examples are exactly the typed operations of test/operations/readme.graphql, and valid', async () => {
  const readme = await read('../README.md');
  const blocks = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((match) => match[1]!);
  const documented = operations(blocks.join('\n'));
  expect([...documented.keys()]).not.toContain('(anonymous)');
  expect(documented).toEqual(operations(await read('./operations/readme.graphql')));
  expect(validate(schema, parse(blocks.join('\n')))).toEqual([]);
});

test('a README example runs as a typed operation', async () => {
  const { createAudience } = dataOf(await suite.gateway.execute(ReadmeCreateAudienceDocument, {}));
  expect('audience' in createAudience && createAudience.audience.id).toMatch(/^[A-Za-z0-9+/=]+$/);
});

test('the README segment example runs and creates a segment audience', async () => {
  const { createAudience } = dataOf(await suite.gateway.execute(ReadmeCreateSegmentDocument, {}));
  expect(createAudience).toMatchObject({ audience: { kind: 'SEGMENT', memberCount: 0 } });
});

test('the README dashboard subscriptions follow a run to its end, and its cancel example answers a finished run', async () => {
  const { sync } = await suite.metaSyncScenario(['ada@example.com', 'grace@example.com']);
  const runs = await suite.gateway.subscribeOverWebSocket(ReadmeDashboardRunsDocument, {});
  const syncs = await subscribeOverSSE(suite.gateway, ReadmeWatchSyncsDocument, {});
  const triggered = await triggerSync(suite.gateway, sync.id);

  const seen = [];
  for await (const { data, errors } of runs) {
    expect(errors).toBeUndefined();
    seen.push(data!.syncRunsUpdated);
    if (data!.syncRunsUpdated.status === 'SUCCEEDED') break;
  }
  expect(seen.every((run) => run.id === triggered.syncRun.id && run.sync.id === sync.id)).toBe(true);
  expect(seen.at(-1)).toMatchObject({ status: 'SUCCEEDED', progress: 1, membersAdded: 2, activity: null });
  const synced = await readUntil(syncs, (data) => data.audienceSyncUpdated.lastSyncedAt !== null);
  expect(synced.at(-1)!.audienceSyncUpdated).toMatchObject({ id: sync.id, lastSyncedCount: 2, nextRunAt: null });

  const { cancelSyncRun } = dataOf(await suite.gateway.execute(ReadmeCancelRunDocument, { id: triggered.syncRun.id }));
  expect(cancelSyncRun).toEqual({ status: 'SUCCEEDED', code: 'RUN_FINISHED', message: expect.stringMatching(/already ended/) });
});

/** The id of `answer[key]`, a mutation's success; an Error answer (its code and message) fails the test. */
function idOf(answer: object, key: string): string {
  expect(answer, JSON.stringify(answer)).toHaveProperty(`${key}.id`);
  return (answer as Record<string, { id: string }>)[key]!.id;
}

test('the README’s first sync runs as written: to the receiver of `npm run receiver`, ids passed on in one Variables tab', async () => {
  const receiver = await startReceiver({ port: 0 });
  try {
    // GraphiQL's Variables tab: every operation of the tab is sent all of it.
    const tab: Record<string, string> = {};
    const run = async <R>(document: TypedDocumentNode<R, never>) => dataOf(await suite.gateway.execute(document, tab as never));
    // The README's receiver listens on 8080; this one on a free port, the document otherwise as written.
    const receiverDestination = parse(
      print(ReadmeCreateReceiverDestinationDocument).replace(`http://127.0.0.1:${RECEIVER_DEFAULT_PORT}${RECEIVER_PATH}`, receiver.url),
    ) as TypedDocumentNode<ReadmeCreateReceiverDestinationMutation, never>;
    expect(print(receiverDestination)).toContain(receiver.url);

    tab.destinationId = idOf((await run(receiverDestination)).createDestination, 'destination');
    tab.audienceId = idOf((await run(ReadmeCreateAudienceDocument)).createAudience, 'audience');
    expect((await run(ReadmeAddMembersDocument)).addAudienceMembers).toEqual({ added: 3, audience: { memberCount: 3 } });
    const { createAudienceSync } = await run(ReadmeCreateSyncDocument);
    tab.syncId = idOf(createAudienceSync, 'audienceSync');
    expect(createAudienceSync).toMatchObject({ audienceSync: { status: 'ACTIVE' } });

    const updates = await suite.gateway.subscribeOverWebSocket(ReadmeFollowRunsDocument, tab as never);
    expect((await run(ReadmeTriggerSyncDocument)).triggerAudienceSync).toMatchObject({ coalesced: false, syncRun: { status: 'QUEUED' } });
    const statuses: string[] = [];
    for await (const { data } of updates) {
      statuses.push(data!.audienceSyncRunUpdated.status);
      if (['SUCCEEDED', 'FAILED'].includes(statuses.at(-1)!)) break;
    }
    expect(statuses.at(-1)).toBe('SUCCEEDED');

    // The receiver got the three members, signed with the README's secret.
    const added = receiver.received.filter((delivery) => delivery.type === 'audience.members.added');
    expect(receiver.received.every((delivery) => delivery.signatureValid)).toBe(true);
    expect(added.flatMap((delivery) => delivery.members)).toHaveLength(3);
    const { node } = await run(ReadmeRunHistoryDocument);
    expect(node).toMatchObject({ status: 'ACTIVE', lastSyncedCount: 3, runs: { edges: [{ node: { status: 'SUCCEEDED', membersAdded: 3 } }] } });
  } finally {
    await receiver.stop();
  }
});

test('the receiver answers 401 to a request not signed with its secret', async () => {
  const receiver = await startReceiver({ port: 0 });
  try {
    const body = JSON.stringify({ type: 'ping', id: 'x' });
    const response = await fetch(receiver.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signatureHeaders('not-the-receivers-secret-0123456789abcdef', body) },
      body,
    });
    expect(response.status).toBe(401);
    expect(receiver.received).toEqual([{ type: 'ping', signatureValid: false, members: [] }]);
  } finally {
    await receiver.stop();
  }
});
