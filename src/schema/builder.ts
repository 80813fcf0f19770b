import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { GraphQLError } from 'graphql';
import { DateTimeResolver, JSONResolver, NonNegativeIntResolver } from 'graphql-scalars';
import { db } from '../infra/db.js';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import type { Context } from './context.js';
import { decodeNodeId } from './node-id.js';

const pascalCase = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: { workspace: boolean; write: boolean; admin: boolean };
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    NonNegativeInt: { Input: number; Output: number };
    File: { Input: File; Output: never };
  };
}>({
  plugins: [ScopeAuthPlugin, ErrorsPlugin, PrismaPlugin, RelayPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (context) => ({
      workspace: context.viewer !== null,
      write: context.viewer?.role === 'WRITE',
      admin: context.admin,
    }),
    unauthorizedError: (_parent, context) => {
      if (context.admin) {
        return new GraphQLError('The admin token only manages workspaces and API keys: use an API key of the workspace', {
          extensions: { code: 'FORBIDDEN' },
        });
      }
      if (context.viewer?.role === 'WRITE') {
        return new GraphQLError('Only the admin token may do this', { extensions: { code: 'FORBIDDEN' } });
      }
      return context.viewer
        ? new GraphQLError('This API key is read-only: use a key with the WRITE role', {
            extensions: { code: 'FORBIDDEN' },
          })
        : new GraphQLError('Authentication required: send an API key as "Authorization: Bearer <key>"', {
            extensions: { code: 'UNAUTHENTICATED' },
          });
    },
  },
  errors: {
    defaultResultOptions: {
      name: ({ fieldName }) => `${pascalCase(fieldName)}Success`,
      description: 'The mutation succeeded.',
    },
    defaultUnionOptions: {
      name: ({ fieldName }) => `${pascalCase(fieldName)}Result`,
      description: 'What the mutation returns: its success type, or a typed error (nothing changed).',
    },
  },
  prisma: {
    client: () => db(),
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'error',
    defaultConnectionSize: 20,
    maxConnectionSize: 100,
  },
  relay: {
    clientMutationId: 'omit',
    decodeGlobalID: decodeNodeId,
    cursorType: 'String',
    nodeTypeOptions: { description: 'An object with a globally unique id.' },
    pageInfoTypeOptions: { description: 'Where a page of a connection starts and ends.' },
    nodeQueryOptions: {
      description: 'Looks up any object of your workspace by its global id; null when there is none.',
      authScopes: { workspace: true },
      args: { id: { description: 'A global id.' } },
    },
    nodesQueryOptions: {
      description: 'Looks up several objects of your workspace by their global ids.',
      authScopes: { workspace: true },
      args: { ids: { description: 'Global ids.' } },
    },
    idFieldOptions: { description: 'The global id of this object.' },
    defaultConnectionTypeOptions: { description: 'One page of a list.' },
    defaultEdgeTypeOptions: { description: 'One item of a page, with its cursor.' },
    edgesFieldOptions: { description: 'The items of this page.' },
    pageInfoFieldOptions: { description: 'Where this page starts and ends.' },
    nodeFieldOptions: { description: 'The item.' },
    cursorFieldOptions: { description: 'Pass as `after` (or `before`) to get the page after (or before) this item.' },
    hasNextPageFieldOptions: { description: 'Whether items follow this page.' },
    hasPreviousPageFieldOptions: { description: 'Whether items precede this page.' },
    startCursorFieldOptions: { description: 'The cursor of the first item of this page.' },
    endCursorFieldOptions: { description: 'The cursor of the last item of this page.' },
    firstArgOptions: { description: 'How many items to return from the start (at most 100; 20 by default).' },
    lastArgOptions: { description: 'How many items to return from the end (at most 100).' },
    afterArgOptions: { description: 'Return items after this cursor.' },
    beforeArgOptions: { description: 'Return items before this cursor.' },
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);
builder.addScalarType('NonNegativeInt', NonNegativeIntResolver);
builder.scalarType('File', {
  description: 'A file sent in a GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec). Input only.',
  serialize: () => {
    throw new Error('File is an input-only scalar');
  },
  parseValue: (value) => {
    // Yoga's multipart parser gives its own File implementation (not always a global Blob).
    const file = value as Partial<File> | null;
    if (typeof file?.arrayBuffer === 'function' && typeof file.name === 'string') return value as File;
    throw new GraphQLError('must be a file sent as a GraphQL multipart request (multipart/form-data)');
  },
});

builder.queryType({
  description: 'Reads. Every field requires an API key and sees its workspace only (`viewer` and `apiKeys` also take the admin token).',
});
builder.mutationType({
  description: 'Writes. Every field requires an API key with the WRITE role; workspaces and API keys are also managed with the admin token.',
});
builder.subscriptionType({ description: 'Live updates, over graphql-ws or server-sent events.' });
