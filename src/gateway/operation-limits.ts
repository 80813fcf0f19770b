import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import {
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  visit,
  type DocumentNode,
  type ExecutionResult,
  type ValidationContext,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../infra/config.js';
import type { Context } from '../schema/context.js';
import { useCostLimit } from './operation-cost.js';
import { isTrustedDocument } from './persisted-documents.js';

/** The settings that bound what one operation, one connection and one API key may ask of the gateway. */
export type OperationLimits = Pick<
  Config,
  | 'MAX_QUERY_DEPTH'
  | 'MAX_QUERY_COST'
  | 'MAX_QUERY_ALIASES'
  | 'MAX_QUERY_DIRECTIVES'
  | 'MAX_QUERY_TOKENS'
  | 'INTROSPECTION'
>;

/** graphql-armor reports a broken limit as a "Syntax Error"; the caller gets it as QUERY_TOO_COMPLEX,
 * naming the limit, instead. Validation limits are reported like any validation error; the token
 * limit is checked while parsing, so it throws. */
function refuseAs(limit: string) {
  return (validation: ValidationContext | null, error: GraphQLError) => {
    const refusal = new GraphQLError(`${error.message.replace(/^Syntax Error: /, '')} Simplify the operation or split it.`, {
      extensions: { code: 'QUERY_TOO_COMPLEX', limit },
    });
    if (!validation) throw refusal;
    validation.reportError(refusal);
  };
}

/** Depth, cost, alias, directive and token limits, checked when an operation is parsed, validated
 * or about to run (cost needs its variables), before it runs, on every transport — except for
 * trusted (persisted) documents, which are the project's own. With introspection off, no
 * introspection and no "did you mean" field suggestions that would leak the schema. */
export function operationLimitPlugins(limits: OperationLimits): Plugin[] {
  const reject = (limit: string) => ({ onReject: [refuseAs(limit)], propagateOnRejection: false });
  const plugins: Plugin[] = [
    useNestingLimit(MAX_DOCUMENT_NESTING),
    useNoNulCharacters(),
    useCursorCheck(),
    ...[
      maxTokensPlugin({ n: limits.MAX_QUERY_TOKENS, ...reject('tokens') }),
      // Depth is the depth of what the operation selects: a fragment spread or an inline fragment
      // adds no level, so colocated fragments (Relay, Apollo) cost what the same selection inline does.
      maxDepthPlugin({ n: limits.MAX_QUERY_DEPTH, flattenFragments: true, ...reject('depth') }),
      useCostLimit(limits.MAX_QUERY_COST),
      maxAliasesPlugin({ n: limits.MAX_QUERY_ALIASES, ...reject('aliases') }),
      maxDirectivesPlugin({ n: limits.MAX_QUERY_DIRECTIVES, ...reject('directives') }),
    ].map(unlessTrusted),
  ];
  if (!limits.INTROSPECTION) {
    plugins.push(blockFieldSuggestionsPlugin(), {
      onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule),
    });
  }
  return plugins;
}

/** The same plugin (graphql-armor's are envelop plugins, of any context), whose parse, validation
 * and execution hooks pass over trusted documents. */
function unlessTrusted(plugin: Plugin<any>): Plugin {
  const { onParse, onValidate, onExecute, onSubscribe } = plugin;
  return {
    ...(onParse && { onParse: (payload) => (isTrustedDocument(payload.context) ? undefined : onParse(payload)) }),
    ...(onValidate && {
      onValidate: (payload) => (isTrustedDocument(payload.context) ? undefined : onValidate(payload)),
    }),
    ...(onExecute && {
      onExecute: (payload) => (isTrustedDocument(payload.args.contextValue) ? undefined : onExecute(payload)),
    }),
    ...(onSubscribe && {
      onSubscribe: (payload) => (isTrustedDocument(payload.args.contextValue) ? undefined : onSubscribe(payload)),
    }),
  };
}

export interface RateLimiter {
  limiter: RateLimiterAbstract;
  close(): Promise<void>;
}

/** Operations per API key and window: counted in memory, or in Redis (shared by every gateway) when
 * `REDIS_URL` is set — in memory, per gateway, while a Redis command fails. Null when turned off. */
export async function openRateLimiter(
  config: Pick<Config, 'RATE_LIMIT_POINTS' | 'RATE_LIMIT_DURATION_SECONDS' | 'REDIS_URL'>,
): Promise<RateLimiter | null> {
  if (config.RATE_LIMIT_POINTS === 0) return null;
  const options = { points: config.RATE_LIMIT_POINTS, duration: config.RATE_LIMIT_DURATION_SECONDS, keyPrefix: 'asg-rate' };
  if (!config.REDIS_URL) return { limiter: new RateLimiterMemory(options), close: async () => undefined };
  // Loaded only with REDIS_URL: the embedded default never talks to Redis.
  const { Redis } = await import('ioredis');
  const client = new Redis(config.REDIS_URL);
  const limiter = new RateLimiterRedis({ ...options, storeClient: client, insuranceLimiter: new RateLimiterMemory(options) });
  return { limiter, close: () => client.quit().then(() => undefined) };
}

/** Spends one point of the caller's API key per operation (HTTP, SSE or WebSocket); an operation over
 * the limit does not run and answers RATE_LIMITED, with when to retry. Calls without a key are not
 * counted here: they are refused as UNAUTHENTICATED. */
export function useRateLimit(limiter: RateLimiterAbstract): Plugin<Context> {
  async function refusal(context: Context): Promise<ExecutionResult | null> {
    if (!context.viewer) return null;
    try {
      await limiter.consume(context.viewer.apiKeyId);
      return null;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const retryAfterSeconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      const error = new GraphQLError(
        `Rate limit exceeded: this API key may run ${limiter.points} operations every ${limiter.duration} s. Retry in ${retryAfterSeconds} s.`,
        {
          extensions: {
            code: 'RATE_LIMITED',
            retryAfterSeconds,
            http: { status: 429, headers: { 'retry-after': String(retryAfterSeconds) } },
          },
        },
      );
      return { errors: [error] };
    }
  }
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const refused = await refusal(args.contextValue);
      if (refused) setResultAndStopExecution(refused);
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      const refused = await refusal(args.contextValue);
      if (refused) setResultAndStopExecution(refused);
    },
  };
}

/** The error an operation beyond MAX_SUBSCRIPTIONS_PER_SOCKET gets; the socket stays open. */
export function tooManySubscriptionsError(limit: number): GraphQLError {
  return new GraphQLError(
    `Too many operations on this WebSocket: at most ${limit} may be open at once. Complete one, or open another connection.`,
    { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', limit } },
  );
}

/** Brackets deeper than this are refused before parsing: graphql-js parses list and object
 * literals recursively, and a few thousand `[` overflow the stack. */
const MAX_DOCUMENT_NESTING = 64;

/** The deepest nesting of `{`, `[` and `(` in a document, outside string literals. */
function documentNesting(source: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < source.length; i++) {
    const char = source[i];
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '{' || char === '[' || char === '(') deepest = Math.max(deepest, ++depth);
    else if (char === '}' || char === ']' || char === ')') depth--;
  }
  return deepest;
}

/**
 * Whether a variable value is a JSON object or list, whose members the walkers below visit. A
 * multipart upload puts a File among the variables: walking its bytes one by one (Object.entries
 * enumerates a byte array's indices) took about 10 s per megabyte, a cheap way to keep the
 * gateway busy. Files are checked by the resolver that reads them, and nothing else is visited.
 */
function isJsonContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  if (Array.isArray(value)) return true;
  if (!value || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Whether a JSON value nests objects and lists deeper than `max` (walked without recursion). */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [current, depth] = pending.pop()!;
    if (isJsonContainer(current)) {
      if (depth >= max) return true;
      for (const child of Object.values(current)) pending.push([child, depth + 1]);
    }
  }
  return false;
}

function useNestingLimit(max: number): Plugin {
  // Recursive input types (SegmentRuleInput) are coerced recursively too: deep variables would
  // overflow the stack the same way.
  const deepVariables = () =>
    new GraphQLError(`Variables nested more than ${max} deep are refused. Simplify the input.`, {
      extensions: { code: 'QUERY_TOO_COMPLEX', limit: 'nesting' },
    });
  return {
    onParse({ params }) {
      const source = typeof params.source === 'string' ? params.source : params.source.body;
      const nesting = documentNesting(source);
      if (nesting > max) {
        throw new GraphQLError(`Brackets nested ${nesting} deep; at most ${max} are accepted. Simplify the operation.`, {
          extensions: { code: 'QUERY_TOO_COMPLEX', limit: 'nesting' },
        });
      }
    },
    onExecute({ args, setResultAndStopExecution }) {
      if (nestsDeeperThan(args.variableValues, max)) setResultAndStopExecution({ errors: [deepVariables()] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      if (nestsDeeperThan(args.variableValues, max)) setResultAndStopExecution({ errors: [deepVariables()] });
    },
  };
}

const NUL_IN_DOCUMENT = /\u0000|\\u0000/i;

/** PostgreSQL cannot store the NUL character: refuse it in the document and in variables, naming
 * where it is, instead of failing later in the database. */
function useNoNulCharacters(): Plugin {
  const refuse = (where: string) =>
    new GraphQLError(`${where} contains the NUL character (\\u0000), which cannot be stored`, {
      extensions: { code: 'VALIDATION_FAILED', field: where },
    });
  return {
    onParse({ params }) {
      const source = typeof params.source === 'string' ? params.source : params.source.body;
      if (NUL_IN_DOCUMENT.test(source)) throw refuse('The operation');
    },
    // Answered as a result, not thrown: over graphql-ws a thrown error would close the socket.
    onExecute({ args, setResultAndStopExecution }) {
      const path = nulPath(args.variableValues);
      if (path) setResultAndStopExecution({ errors: [refuse(`Variable ${path}`)] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const path = nulPath(args.variableValues);
      if (path) setResultAndStopExecution({ errors: [refuse(`Variable ${path}`)] });
    },
  };
}

/** The path of the first string holding a NUL in a JSON value (walked without recursion). */
function nulPath(value: unknown): string | null {
  const pending: [unknown, string][] = [[value, '']];
  while (pending.length > 0) {
    const [current, path] = pending.pop()!;
    if (typeof current === 'string' && current.includes('\u0000')) return path;
    if (isJsonContainer(current)) {
      for (const [key, child] of Object.entries(current)) {
        const childPath = path ? `${path}.${key}` : key;
        if (key.includes('\u0000')) return childPath;
        pending.push([child, childPath]);
      }
    }
  }
  return null;
}

/** Every connection of the schema pages by record id: a cursor is base64 of `GPC:S:<uuid>`, or of
 * `GPC:I:<digits>` for contacts (bigint ids); one of the other kind would reach the database. */
const UUID_CURSOR = /^GPC:S:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BIGINT_CURSOR = /^GPC:I:[1-9][0-9]{0,17}$/;
const BIGINT_CONNECTIONS = new Set(['contacts']);

/** An `after` or `before` argument of a document: its literal value or its variable's name. */
interface CursorArgument {
  name: string;
  cursor: RegExp;
  literal?: string;
  variable?: string;
}

/** Each document's cursor arguments, found once: yoga's parser cache hands out the same document
 * object for the same query text, so only the variables are looked at per request. */
const cursorArgumentsOf = new WeakMap<DocumentNode, CursorArgument[]>();

function cursorArguments(document: DocumentNode): CursorArgument[] {
  const known = cursorArgumentsOf.get(document);
  if (known) return known;
  const list: CursorArgument[] = [];
  visit(document, {
    Field(field) {
      const cursor = BIGINT_CONNECTIONS.has(field.name.value) ? BIGINT_CURSOR : UUID_CURSOR;
      for (const node of field.arguments ?? []) {
        if (node.name.value !== 'after' && node.name.value !== 'before') continue;
        if (node.value.kind === Kind.STRING) list.push({ name: node.name.value, cursor, literal: node.value.value });
        else if (node.value.kind === Kind.VARIABLE) list.push({ name: node.name.value, cursor, variable: node.value.name.value });
      }
    },
  });
  cursorArgumentsOf.set(document, list);
  return list;
}

/** The `after`/`before` arguments of an operation that are not cursors this gateway handed out. */
function forgedCursor(document: DocumentNode, variables: Record<string, unknown> | null | undefined): string | null {
  for (const argument of cursorArguments(document)) {
    const value = argument.variable !== undefined ? variables?.[argument.variable] : argument.literal;
    if (typeof value === 'string' && !argument.cursor.test(Buffer.from(value, 'base64').toString('utf8'))) {
      return argument.name;
    }
  }
  return null;
}

/** Refuses cursors that were not handed out, which would otherwise reach the database. */
function useCursorCheck(): Plugin {
  const refuse = (argument: string) =>
    new GraphQLError(`\`${argument}\` is not a cursor of this list: pass a cursor from its edges or pageInfo`, {
      extensions: { code: 'VALIDATION_FAILED', field: argument },
    });
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const argument = forgedCursor(args.document, args.variableValues);
      if (argument) setResultAndStopExecution({ errors: [refuse(argument)] });
    },
  };
}
