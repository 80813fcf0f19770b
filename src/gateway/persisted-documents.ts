import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import { GraphQLError, Kind, parse, type OperationDefinitionNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { z } from 'zod';

// Trusted documents (persisted operations): the project's own operations, known ahead by the hash
// of their text. GraphQL Code Generator's client preset writes the manifest (codegen.ts,
// `persistedDocuments`: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#persisted-documents);
// yoga's persisted operations plugin serves them
// (https://the-guild.dev/graphql/yoga-server/docs/features/persisted-operations).

/** The manifest of the project's own operations (tests', README's), written by `npm run generate`. */
export const DEFAULT_PERSISTED_DOCUMENTS_FILE = fileURLToPath(
  new URL('../../schema/persisted-documents.json', import.meta.url),
);

/** `off`: ids are not understood; `allow`: trusted documents by id, and any other document;
 * `only`: trusted documents only (by id, or sent in full exactly as in the manifest). */
export type PersistedOperationsMode = 'off' | 'allow' | 'only';

/** Documents by the lowercase hex SHA-256 of their text. */
export type PersistedDocuments = ReadonlyMap<string, string>;

/** `{ "sha256:<hex>": "<document>" }`, as the client preset writes it. */
const manifestSchema = z.record(z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and a SHA-256 in lowercase hex'), z.string().min(1));

export function loadPersistedDocuments(file: string): PersistedDocuments {
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the persisted documents manifest ${file}: ${(error as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(manifest);
  if (!parsed.success) {
    throw new Error(`The persisted documents manifest ${file} is not a JSON object of "sha256:<hex>" → document: ${parsed.error.issues[0]?.message}`);
  }
  const documents = new Map<string, string>();
  for (const [id, document] of Object.entries(parsed.data)) {
    const hash = id.slice('sha256:'.length);
    if (documentHash(document) !== hash) throw new Error(`The persisted documents manifest ${file} lists ${id} for a document of another hash`);
    documents.set(hash, document);
  }
  return documents;
}

export const documentHash = (document: string) => createHash('sha256').update(document).digest('hex');

/** The hashes of the query texts requests sent lately: a client sends the same few again and again. */
const recentHashes = new LRUCache<string, string>({ max: 1_000, maxSize: 4_000_000, sizeCalculation: (_, query) => query.length + 1 });

/** documentHash of a request's query text, remembered for the next requests that send it. */
function requestDocumentHash(query: string): string {
  let hash = recentHashes.get(query);
  if (hash === undefined) {
    hash = documentHash(query);
    recentHashes.set(query, hash);
  }
  return hash;
}

const trusted = new WeakSet<object>();

/** Whether the operation of this context runs a persisted document: the operation limits pass over it. */
export function isTrustedDocument(context: unknown): boolean {
  return typeof context === 'object' && context !== null && trusted.has(context);
}

interface RequestParams {
  query?: unknown;
  extensions?: unknown;
  documentId?: unknown;
}

/** The document id a request gives: `documentId: "sha256:<hex>"` (GraphQL over HTTP, Appendix A:
 * https://github.com/graphql/graphql-over-http/blob/main/spec/Appendix%20A%20--%20Persisted%20Documents.md)
 * or `extensions.persistedQuery.sha256Hash` (Apollo's form, which Relay and urql can send too). */
export function persistedDocumentId(params: RequestParams): string | null {
  if (typeof params.documentId === 'string') return params.documentId.replace(/^sha256:/, '').toLowerCase();
  const persistedQuery = (params.extensions as { persistedQuery?: { version?: unknown; sha256Hash?: unknown } } | null)
    ?.persistedQuery;
  if (persistedQuery?.version === 1 && typeof persistedQuery.sha256Hash === 'string') return persistedQuery.sha256Hash.toLowerCase();
  return null;
}

function notFound(id: string): GraphQLError {
  return new GraphQLError(
    `No persisted document has the id ${id.slice(0, 80)}: send one of the manifest's ids (sha256 of the document), or the document itself`,
    { extensions: { code: 'PERSISTED_QUERY_NOT_FOUND', http: { status: 400 } } },
  );
}

const ONLY_PERSISTED = () =>
  new GraphQLError(
    'This gateway runs only its persisted documents (PERSISTED_OPERATIONS=only): send `documentId: "sha256:<hash>"` of one of them',
    { extensions: { code: 'PERSISTED_QUERY_ONLY', http: { status: 400 } } },
  );

/**
 * Resolves a WebSocket subscribe payload (graphql-ws requires a `query` string: an empty one with a
 * document id, or a document) to the document to run, marking `context` trusted when it is persisted.
 * Returns an error to answer instead when the payload is refused.
 */
export function resolveSocketDocument(
  mode: PersistedOperationsMode,
  documents: PersistedDocuments,
  params: RequestParams & { query: string },
  context: object,
): { query: string } | { error: GraphQLError } {
  if (mode === 'off') return { query: params.query };
  const id = params.query === '' ? persistedDocumentId(params) : requestDocumentHash(params.query);
  const document = id === null ? undefined : documents.get(id);
  if (document !== undefined) {
    trusted.add(context);
    return { query: document };
  }
  if (params.query === '' && id !== null) return { error: notFound(id) };
  if (mode === 'only' && !isIntrospectionOnly(params.query)) return { error: ONLY_PERSISTED() };
  return { query: params.query };
}

/** Whether every operation of a document only reads the schema (`__schema`, `__type`, `__typename`). */
function isIntrospectionOnly(query: string): boolean {
  try {
    return parse(query, { maxTokens: 5000 }).definitions.every(
      (definition) =>
        definition.kind === Kind.FRAGMENT_DEFINITION ||
        (definition.kind === Kind.OPERATION_DEFINITION &&
          (definition as OperationDefinitionNode).selectionSet.selections.every(
            (selection) => selection.kind === Kind.FIELD && selection.name.value.startsWith('__'),
          )),
    );
  } catch {
    return false;
  }
}

/**
 * The HTTP and SSE side: a request naming a persisted document by id runs it as trusted; a request
 * whose text is exactly one of them too (GraphiQL sends the manifest's operations in full). In
 * `only` mode, any other document is refused, except introspection, which INTROSPECTION governs
 * (GraphiQL reads the schema with it).
 */
export function usePersistedDocuments(mode: PersistedOperationsMode, documents: PersistedDocuments): Plugin[] {
  if (mode === 'off') return [];
  const introspectionRequests = new WeakSet<Request>();
  const recognizeManifestText: Plugin = {
    onParams({ params, setParams, request }) {
      if (typeof params.query !== 'string') return;
      const hash = requestDocumentHash(params.query);
      if (documents.has(hash)) setParams({ ...params, query: undefined, documentId: `sha256:${hash}` } as typeof params);
      else if (mode === 'only' && isIntrospectionOnly(params.query)) introspectionRequests.add(request);
    },
  };
  return [
    recognizeManifestText,
    usePersistedOperations({
      allowArbitraryOperations: mode === 'allow' ? true : (request) => introspectionRequests.has(request),
      extractPersistedOperationId: (params) => persistedDocumentId(params as RequestParams),
      getPersistedOperation: (id, _request, context) => {
        const document = documents.get(id);
        if (document !== undefined) trusted.add(context);
        return document ?? null;
      },
      customErrors: {
        notFound: (payload) => notFound(persistedDocumentId(payload.params as RequestParams) ?? ''),
        keyNotFound: {
          message: 'Send a query, or the id of a persisted document (`documentId` or `extensions.persistedQuery`)',
          extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
        },
        persistedQueryOnly: ONLY_PERSISTED,
      },
    }),
  ];
}
