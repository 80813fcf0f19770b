import {
  GraphQLError,
  getNamedType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  type ExecutionArgs,
  type GraphQLCompositeType,
  type GraphQLOutputType,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { getComplexity, type ComplexityEstimatorArgs } from 'graphql-query-complexity';

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

/**
 * Refuses an operation whose cost (see fieldCost) exceeds `maxCost`, once its variables are known:
 * just before it runs, over every transport. Fragments count where they are spread, `@skip` and
 * `@include` as their variables say, and an abstract type's selections as its costliest member's.
 * https://github.com/slicknode/graphql-query-complexity#usage
 */
export function useCostLimit(maxCost: number): Plugin {
  const refusal = (args: ExecutionArgs): GraphQLError | null => {
    let cost: number;
    try {
      cost = getComplexity({
        estimators: [fieldCost],
        schema: args.schema,
        query: args.document,
        variables: (args.variableValues ?? {}) as Record<string, unknown>,
        operationName: args.operationName ?? undefined,
      });
    } catch (error) {
      // Beyond 10,000 evaluated fields (fragments spread over and over) the count stops.
      if (error instanceof GraphQLError && /maximum allowed number of nodes/.test(error.message)) {
        cost = Number.POSITIVE_INFINITY;
      } else {
        // Variables of the wrong type: execution refuses them with graphql-js's own message.
        return null;
      }
    }
    if (cost <= maxCost) return null;
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
