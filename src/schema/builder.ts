import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { GraphQLError } from 'graphql';
import { DateTimeResolver, JSONResolver, NonNegativeIntResolver } from 'graphql-scalars';
import { db } from '../db.js';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import type { Context } from './context.js';

const pascalCase = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: { workspace: boolean; write: boolean };
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    NonNegativeInt: { Input: number; Output: number };
  };
}>({
  plugins: [ScopeAuthPlugin, ErrorsPlugin, PrismaPlugin, RelayPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (context) => ({
      workspace: context.viewer !== null,
      write: context.viewer?.role === 'WRITE',
    }),
    unauthorizedError: (_parent, context) =>
      context.viewer
        ? new GraphQLError('This API key is read-only: use a key with the WRITE role', {
            extensions: { code: 'FORBIDDEN' },
          })
        : new GraphQLError('Authentication required: send an API key as "Authorization: Bearer <key>"', {
            extensions: { code: 'UNAUTHENTICATED' },
          }),
  },
  errors: {
    defaultResultOptions: { name: ({ fieldName }) => `${pascalCase(fieldName)}Success` },
    defaultUnionOptions: { name: ({ fieldName }) => `${pascalCase(fieldName)}Result` },
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
    cursorType: 'String',
    nodeTypeOptions: { description: 'An object with a globally unique id.' },
    pageInfoTypeOptions: { description: 'Where a page of a connection starts and ends.' },
    nodeQueryOptions: { description: 'Looks up any object by its global id.', authScopes: { workspace: true } },
    nodesQueryOptions: { description: 'Looks up several objects by their global ids.', authScopes: { workspace: true } },
    idFieldOptions: { description: 'The global id of this object.' },
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);
builder.addScalarType('NonNegativeInt', NonNegativeIntResolver);

builder.queryType({ description: 'Reads. Every field requires an API key and sees its workspace only.' });
builder.mutationType({ description: 'Writes. Every field requires an API key with the WRITE role.' });
builder.subscriptionType({ description: 'Live updates, over graphql-ws or server-sent events.' });
