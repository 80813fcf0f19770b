import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, print, type FormattedExecutionResult } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  DEFAULT_PERSISTED_DOCUMENTS_FILE,
  documentHash,
  loadPersistedDocuments,
} from '../../src/gateway/persisted-documents.js';
import { ConfigError, loadConfig } from '../../src/infra/config.js';
import * as generated from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

// The gateway's trusted documents: the project's own operations (the tests', the README's), whose
// manifest codegen writes. They run by id, and skip the operation limits (PERSISTED_OPERATIONS=only:
// persisted-only.test.ts).

/** Beyond every default limit (cost 2,030,301, depth 13), as only a trusted document may be. */
const HEAVY = print(
  parse(`query HeavyReport {
    audiences(first: 100) { edges { node { syncs(first: 100) { edges { node {
      runs(first: 100) { edges { node { sync { audience { syncs(first: 1) { edges { node { id } } } } } } } }
    } } } } } }
  }`),
);
/** The hash codegen embedded in a generated document (the client preset's `embedHashInDocument`). */
const hashOf = (document: object) => (document as { __meta__: { hash: string } }).__meta__.hash.replace(/^sha256:/, '');

let dir: string;
let manifestFile: string;
let allow: TestGateway;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'asg-persisted-'));
  manifestFile = join(dir, 'persisted-documents.json');
  const manifest = JSON.parse(await readFile(DEFAULT_PERSISTED_DOCUMENTS_FILE, 'utf8')) as Record<string, string>;
  await writeFile(manifestFile, JSON.stringify({ ...manifest, [`sha256:${documentHash(HEAVY)}`]: HEAVY }));
  allow = await startTestGateway({ PERSISTED_DOCUMENTS_FILE: manifestFile });
});
afterAll(async () => {
  await allow?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function post(gateway: TestGateway, body: Record<string, unknown>) {
  const response = await gateway.app.yoga!.fetch('http://gateway/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${gateway.apiKey}` },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as FormattedExecutionResult<Record<string, any>> };
}

const codes = (answer: { body: FormattedExecutionResult }) => answer.body.errors?.map((error) => error.extensions?.code);

describe('the manifest', () => {
  test("holds every operation of the project's tests and README, by the SHA-256 of its text", () => {
    const documents = loadPersistedDocuments(DEFAULT_PERSISTED_DOCUMENTS_FILE);
    const operations = Object.entries(generated).filter(([name]) => name.endsWith('Document'));
    expect(operations.length).toBeGreaterThan(50);
    for (const [name, document] of operations) {
      expect(documents.has(hashOf(document)), name).toBe(true);
    }
    expect(documents.has(hashOf(generated.ReadmeRunHistoryDocument))).toBe(true);
  });

  test('a manifest whose document does not match its hash is refused at start', async () => {
    const tampered = join(dir, 'tampered.json');
    await writeFile(tampered, JSON.stringify({ [`sha256:${documentHash('{ a }')}`]: '{ b }' }));
    expect(() => loadPersistedDocuments(tampered)).toThrow(/another hash/);
    expect(() => loadConfig({ PERSISTED_OPERATIONS: 'sometimes' })).toThrow(ConfigError);
  });
});

describe('PERSISTED_OPERATIONS=allow (the default)', () => {
  test('a persisted document runs by `documentId` (GraphQL over HTTP) and by `extensions.persistedQuery` (APQ)', async () => {
    const id = hashOf(generated.NodeByIdDocument);
    const variables = { id: 'QXVkaWVuY2U6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw' };
    const byDocumentId = await post(allow, { documentId: `sha256:${id}`, variables });
    const byExtension = await post(allow, { extensions: { persistedQuery: { version: 1, sha256Hash: id } }, variables });

    expect(byDocumentId).toEqual({ status: 200, body: { data: { node: null } } });
    expect(byExtension).toEqual({ status: 200, body: { data: { node: null } } });
  });

  test('an unknown id is refused, saying what to send', async () => {
    const answer = await post(allow, { documentId: `sha256:${documentHash('{ nothing }')}` });
    expect(answer.status).toBe(400);
    expect(codes(answer)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
    expect(answer.body.errors![0]!.message).toMatch(/No persisted document has the id/);
  });

  test('a persisted document is trusted: the operation limits do not apply to it', async () => {
    const asText = await post(allow, { query: HEAVY.replace('HeavyReport', 'HeavyReportAgain') });
    const byId = await post(allow, { documentId: `sha256:${documentHash(HEAVY)}` });

    expect(codes(asText)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(byId.body.errors).toBeUndefined();
    expect(byId.body.data).toEqual({ audiences: { edges: [] } });
  });

  test('any other document runs within the limits', async () => {
    const answer = await post(allow, { query: '{ audiences(first: 1) { edges { node { id } } } }' });
    expect(answer.body).toEqual({ data: { audiences: { edges: [] } } });
  });

  test('over WebSocket, an empty query with the id in extensions runs the persisted document, limits skipped', async () => {
    const client = allow.webSocketClient();
    const result = await new Promise((resolve, reject) =>
      client.subscribe(
        { query: '', extensions: { persistedQuery: { version: 1, sha256Hash: documentHash(HEAVY) } } },
        { next: resolve, error: reject, complete: () => undefined },
      ),
    );
    expect(result).toEqual({ data: { audiences: { edges: [] } } });
  });
});
