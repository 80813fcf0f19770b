import {
  GraphQLError,
  getNamedType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLCompositeType,
  type GraphQLOutputType,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { getComplexity, type ComplexityEstimatorArgs } from 'graphql-query-complexity';
import { LRUCache } from 'lru-cache';

/** Items a connection returns without `first`/`last`, and at most (the schema's page sizes). */
const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;
/** Items assumed for a plain list of objects: its bound in the schema (20 suppression audiences,
 * 20 field mappings), or `ids` for `nodes`. */
const LIST_ITEMS = 20;

const isConnectionType = (type: GraphQLCompositeType | GraphQLOutputType) =>
  isObjectType(type) && type.name.endsWith('Connection') && 'edges' in type.getFields();

function returnsList(type: GraphQLOutputType): boolean {
  return isListType(isNonNullType(type) ? type.ofType : type);
}

/**
 * The cost of a field: how many objects it can return. A scalar costs nothing; an object costs 1
 * plus its selection; a connection costs 1 plus its page size (`first` or `last`, variables
 * included, 20 unless given, at most 100) times one edge's selection; `pageInfo` comes with the
 * page. Introspection and `__typename` cost nothing.
 */
export function fieldCost({ type, field, args, childComplexity }: ComplexityEstimatorArgs): number {
  const fieldType = getNamedType(field.type);
  if (field.name.startsWith('__') || isLeafType(fieldType) || fieldType.name === 'PageInfo') return 0;
  if (isConnectionType(fieldType)) {
    const asked = Math.max(Number(args.first ?? 0), Number(args.last ?? 0)) || DEFAULT_PAGE_SIZE;
    return 1 + Math.min(Math.max(asked, 0), MAX_PAGE_SIZE) * childComplexity;
  }
  // The connection counted its edges already.
  if (isConnectionType(type)) return 1 + childComplexity;
  if (returnsList(field.type)) {
    const items = Array.isArray(args.ids) ? args.ids.length : LIST_ITEMS;
    return items * (1 + childComplexity);
  }
  return 1 + childComplexity;
}

/** The cost of an operation (NaN when its variables do not fit it), computed once per document,
 * operation and variables: yoga's parser cache hands out the same document object for the same query
 * text, and a client sends the same few operations with the same few variables again and again. */
function operationCost(args: ExecutionArgs): number {
  const variables = (args.variableValues ?? {}) as Record<string, unknown>;
  const serialized = smallJson(variables);
  const key = serialized !== null ? `${args.operationName ?? ''}\u0000${serialized}` : null;
  let costs = costsOf.get(args.document);
  const known = key !== null ? costs?.get(key) : undefined;
  if (known !== undefined) return known;
  let cost: number;
  try {
    cost = getComplexity({
      estimators: [fieldCost],
      schema: args.schema,
      query: args.document,
      variables,
      operationName: args.operationName ?? undefined,
    });
  } catch (error) {
    // Beyond 10,000 evaluated fields (fragments spread over and over) the count stops.
    cost = error instanceof GraphQLError && /maximum allowed number of nodes/.test(error.message) ? Number.POSITIVE_INFINITY : Number.NaN;
  }
  if (key !== null) {
    if (!costs) costsOf.set(args.document, (costs = new LRUCache<string, number>({ max: 64 })));
    costs.set(key, cost);
  }
  return cost;
}

/** Costs already computed, per document, by operation name and variables. */
const costsOf = new WeakMap<DocumentNode, LRUCache<string, number>>();

/** Variables with more values than this (members to add) are costed each time, not remembered. */
const MAX_REMEMBERED_VALUES = 100;
const NOT_REMEMBERED = new Error('not remembered');

/** The variables as JSON when they are few plain JSON values; null otherwise. Stops at the first
 * value that is not plain JSON (an uploaded file is never read into) or past the bound. */
function smallJson(variables: Record<string, unknown>): string | null {
  let values = 0;
  try {
    return JSON.stringify(variables, (_key, value: unknown) => {
      if (++values > MAX_REMEMBERED_VALUES) throw NOT_REMEMBERED;
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const prototype = Object.getPrototypeOf(value);
        if (prototype !== Object.prototype && prototype !== null) throw NOT_REMEMBERED;
      }
      return value;
    });
  } catch (error) {
    if (error === NOT_REMEMBERED) return null;
    throw error;
  }
}

/**
 * Refuses an operation whose cost (see fieldCost) exceeds `maxCost`, once its variables are known:
 * just before it runs, over every transport. Fragments count where they are spread, `@skip` and
 * `@include` as their variables say, and an abstract type's selections as its costliest member's.
 * https://github.com/slicknode/graphql-query-complexity#usage
 */
export function useCostLimit(maxCost: number): Plugin {
  const refusal = (args: ExecutionArgs): GraphQLError | null => {
    const cost = operationCost(args);
    // NaN: variables of the wrong type; execution refuses them with graphql-js's own message.
    if (Number.isNaN(cost) || cost <= maxCost) return null;
    const found = Number.isFinite(cost) ? `, found ${cost}` : '';
    return new GraphQLError(
      `Query cost limit of ${maxCost} exceeded${found}: the cost counts the objects an operation can return (page sizes times each item's objects). Ask for smaller pages or split the operation.`,
      { extensions: { code: 'QUERY_TOO_COMPLEX', limit: 'cost' } },
    );
  };
  return {
    // Answered as a result, not thrown: over graphql-ws a thrown error would close the socket.
    onExecute({ args, setResultAndStopExecution }) {
      const error = refusal(args);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = refusal(args);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
