import { readFile } from 'node:fs/promises';
import { parse, print, validate, type OperationDefinitionNode } from 'graphql';
import { expect, test } from 'vitest';
import { schema } from '../src/schema/index.js';
import {
  ReadmeCancelRunDocument,
  ReadmeCreateAudienceDocument,
  ReadmeCreateSegmentDocument,
  ReadmeDashboardRunsDocument,
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
