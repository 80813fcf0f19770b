import { randomUUID } from 'node:crypto';
import { defaultBuildResponseCacheKey, useResponseCache, type Cache } from '@envelop/response-cache';
import { print, type DocumentNode, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { LRUCache } from 'lru-cache';
import type { ChangeNotifications } from '../infra/change-notifications.js';
import { responseCacheReads } from '../infra/metrics.js';
import type { Context } from '../schema/context.js';

/** A kept answer is dropped after this long even if nothing was heard to change it. */
const TTL_MS = 60_000;
/** How long a query waits for the same query already running to keep its answer before it runs itself. */
const SHARED_WAIT_MS = 2_000;

export interface ResponseCache {
  plugins: Plugin<Context>[];
  /** Forgets every answer about a workspace (null: about every workspace). */
  changed(workspaceId: string | null): void;
}

/**
 * Keeps the answers of queries, per API key, and answers the same query with the same variables from
 * them until something they read changes. Every committed change to a table the API reads notifies
 * the gateways with its workspace (migration api_change_notifications, src/infra/change-notifications.ts).
 *
 * Before it looks, a query waits until every change committed before it arrived has been heard (one
 * round trip, shared by the queries arriving meanwhile), then looks under its workspace's version as
 * it is then: an answer is never older than the query, whichever process made the change. A change
 * heard while a query runs moves the version on, so what it read is kept under a version no later
 * query asks for. A query whose key is being answered by a query running now waits for that answer
 * instead of running too (after a change, the first query runs and the others arriving meanwhile
 * share its answer): having the same key, it was asked after no change that query could miss.
 * Nothing is kept or served while changes are not heard, nor an answer with errors, nor one that
 * moves with the clock alone (`context.readsTheClock`; `nextRunAt`, which the job
 * scheduler keeps). Authentication, validation, the operation limits and the rate limit run first, as
 * for any query. Built on @envelop/response-cache:
 * https://the-guild.dev/graphql/envelop/plugins/use-response-cache
 */
export function createResponseCache({
  entries,
  changes,
}: {
  entries: number;
  /** Where changes are heard from. */
  changes: Pick<ChangeNotifications, 'listening' | 'heardUpToNow'>;
}): ResponseCache {
  let epoch = 0;
  const versions = new Map<string, number>();
  const kept = new LRUCache<string, ExecutionResult>({ max: entries, ttl: TTL_MS });
  // The keys being answered now: by which query's context, and the queries waiting for the answer.
  const running = new Map<string, { by: object; waiting: (() => void)[] }>();
  const runningKeyOf = new WeakMap<object, string>();
  const settle = (key: string) => {
    const waiting = running.get(key)?.waiting ?? [];
    running.delete(key);
    for (const resume of waiting) resume();
  };
  /** Resolves once the query answering `key` has finished (or after SHARED_WAIT_MS). */
  const answered = (key: string) =>
    new Promise<void>((resume) => {
      const timer = setTimeout(resume, SHARED_WAIT_MS);
      running.get(key)!.waiting.push(() => {
        clearTimeout(timer);
        resume();
      });
    });
  const changed = (workspaceId: string | null) => {
    if (workspaceId === null) {
      epoch++;
      versions.clear();
      kept.clear();
    } else {
      versions.set(workspaceId, (versions.get(workspaceId) ?? 0) + 1);
    }
  };
  const cache: Cache = {
    get(key) {
      const answer = kept.get(key);
      responseCacheReads.inc({ outcome: answer ? 'hit' : 'miss' });
      return answer ?? null;
    },
    set: (key, answer) => {
      kept.set(key, answer);
      settle(key);
    },
    // Answers are dropped by workspace version (`changed`), not by the entities in them.
    invalidate: () => {},
  };
  const printed = new WeakMap<DocumentNode, string>();
  const documentText = (document: DocumentNode, sent: string | undefined) => {
    if (sent) return sent;
    let text = printed.get(document);
    if (text === undefined) printed.set(document, (text = print(document)));
    return text;
  };
  const caching = useResponseCache<Context>({
    cache,
    ttl: TTL_MS,
    enabled: (context) => context.viewer !== null && changes.listening,
    session: (context) => context.viewer?.apiKeyId,
    // Before any resolver runs: the key holds the workspace's version once every earlier change is heard.
    buildResponseCacheKey: async ({ sessionId, context, ...operation }) => {
      const workspaceId = (context as Context).viewer!.workspaceId;
      const version = await changes.heardUpToNow().then(
        () => `${epoch}.${versions.get(workspaceId) ?? 0}`,
        // Changes are not heard (the connection was just lost): a key no answer is kept under.
        () => `unheard.${randomUUID()}`,
      );
      const key = await defaultBuildResponseCacheKey({ ...operation, sessionId: `${sessionId}@${version}` });
      if (running.has(key)) {
        await answered(key);
      } else if (!kept.has(key)) {
        running.set(key, { by: context as object, waiting: [] });
        runningKeyOf.set(context as object, key);
      }
      return key;
    },
    getDocumentString: (args) =>
      documentText(args.document, (args.contextValue as { params?: { query?: string } }).params?.query),
    ttlPerSchemaCoordinate: { 'AudienceSync.nextRunAt': 0 },
    onTtl: ({ ttl, context }) => (context.readsTheClock ? 0 : ttl),
    // The plugin's default says so on the console each time.
    shouldCacheResult: ({ result }) => !result.errors?.length,
    includeExtensionMetadata: false,
    // Left on although `invalidate` does nothing: off, the plugin would keep mutations' answers too.
    invalidateViaMutation: true,
  });
  // After the cache's own hooks: an answer not kept (errors, the clock) lets the waiting queries run.
  const answeredOrNot: Plugin<Context> = {
    onExecute: ({ args }) => ({
      onExecuteDone: () => {
        const key = runningKeyOf.get(args.contextValue);
        if (key !== undefined && running.get(key)?.by === args.contextValue) settle(key);
      },
    }),
  };
  return { plugins: [caching as Plugin<Context>, answeredOrNot], changed };
}
