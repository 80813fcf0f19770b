import { readFile } from 'node:fs/promises';
import { parse, print, validate, type OperationDefinitionNode } from 'graphql';
import { expect, test } from 'vitest';
import { schema } from '../src/schema/index.js';
import { ReadmeCreateAudienceDocument, ReadmeCreateSegmentDocument } from './generated/graphql.js';
import { dataOf } from './support/scenario.js';
import { useGatewaySuite } from './support/suite.js';

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
