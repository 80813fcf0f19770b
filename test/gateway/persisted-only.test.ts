import { print, type FormattedExecutionResult } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_PERSISTED_DOCUMENTS_FILE, loadPersistedDocuments } from '../../src/gateway/persisted-documents.js';
import * as generated from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { CreateAudience, NodeById } from '../support/operations.js';
import { expectNothingWritten } from '../support/tables.js';

// PERSISTED_OPERATIONS=only: the gateway runs its persisted documents (the project's own operations)
// and nothing else.

let only: TestGateway;

beforeAll(async () => {
  only = await startTestGateway({ PERSISTED_OPERATIONS: 'only' });
});
afterAll(async () => {
  await only?.stop();
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
/** The hash codegen embedded in a generated document (the client preset's `embedHashInDocument`). */
const hashOf = (document: object) => (document as { __meta__: { hash: string } }).__meta__.hash.replace(/^sha256:/, '');

describe('PERSISTED_OPERATIONS=only', () => {
  test('a document outside the manifest is refused and changes nothing, over HTTP and WebSocket', async () => {
    const mutation = { query: 'mutation { createAudience(input: { name: "Not trusted" }) { __typename } }' };
    const answer = await expectNothingWritten(() => post(only, mutation));
    expect(answer.status).toBe(400);
    expect(codes(answer)).toEqual(['PERSISTED_QUERY_ONLY']);

    const client = only.webSocketClient();
    const refused = await expectNothingWritten(
      () => new Promise((resolve) => client.subscribe(mutation, { next: resolve, error: resolve, complete: () => undefined })),
    );
    expect(refused).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'PERSISTED_QUERY_ONLY' }) })]);
  });

  test('a persisted document runs by id, or sent in full exactly as the manifest has it', async () => {
    const manifest = loadPersistedDocuments(DEFAULT_PERSISTED_DOCUMENTS_FILE);
    const id = hashOf(generated.CreateAudienceDocument);
    const byId = await post(only, { documentId: `sha256:${id}`, variables: { input: { name: 'Trusted' } } });
    const inFull = await post(only, { query: manifest.get(id), variables: { input: { name: 'Trusted too' } } });

    expect(byId.body.data!.createAudience).toMatchObject({ __typename: 'CreateAudienceSuccess', audience: { name: 'Trusted' } });
    expect(inFull.body.data!.createAudience).toMatchObject({ audience: { name: 'Trusted too' } });
    // The same operation as the tests write it is not the manifest's text: refused.
    expect(codes(await post(only, { query: print(CreateAudience), variables: { input: { name: 'x' } } }))).toEqual([
      'PERSISTED_QUERY_ONLY',
    ]);
    expect(codes(await post(only, { query: print(NodeById), variables: { id: 'x' } }))).toEqual(['PERSISTED_QUERY_ONLY']);
  });

  test("introspection still works (INTROSPECTION governs it), and GraphiQL's tabs hold the manifest's operations", async () => {
    const introspection = await post(only, { query: '{ __schema { queryType { name } } }' });
    expect(introspection.body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });

    const page = await only.app.yoga!.fetch('http://gateway/graphql', { headers: { accept: 'text/html' } });
    const html = await page.text();
    expect(html).toContain('defaultTabs');
    expect(html).toContain('ReadmeRunHistory');
  });
});
