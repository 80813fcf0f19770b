import { z } from 'zod';
import { createApiKey, revokeApiKey } from '../identity/api-keys.js';
import { db } from '../infra/db.js';
import { ApiKeyRole } from '../generated/prisma/enums.js';
import { builder } from './builder.js';
import { NotFoundError, ValidationError, parseInput } from './errors.js';
import { parseGlobalId } from './global-id.js';

export const ApiKeyRoleEnum = builder.enumType(ApiKeyRole, {
  name: 'ApiKeyRole',
  description: 'What an API key may do.',
  values: {
    READ: { description: 'Queries and subscriptions only.' },
    WRITE: { description: 'Everything in its workspace, including creating and revoking its API keys.' },
  },
});

export const ApiKeyRef = builder.prismaNode('ApiKey', {
  description: 'A credential of a workspace. The key itself is shown once, at creation; only its hash is stored.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, context) => ({ id, workspaceId: context.viewer?.workspaceId ?? '' }),
  fields: (t) => ({
    name: t.exposeString('name', { description: 'What the key is for.' }),
    prefix: t.exposeString('prefix', { description: 'The first characters of the key, to recognise it.' }),
    role: t.expose('role', { type: ApiKeyRoleEnum, description: 'What the key may do.' }),
    workspace: t.relation('workspace', { description: 'The workspace the key belongs to.' }),
    lastUsedAt: t.expose('lastUsedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the key was last used (to the minute); null when never.',
    }),
    revokedAt: t.expose('revokedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the key was revoked; null while it works.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the key was created.' }),
  }),
});

/** The workspace an operation on API keys acts on: the caller's own, or (admin token only) the one named. */
async function targetWorkspaceId(
  workspaceGlobalId: string | number | null | undefined,
  context: { viewer: { workspaceId: string } | null },
  field: string,
): Promise<string> {
  if (workspaceGlobalId === null || workspaceGlobalId === undefined) {
    if (context.viewer) return context.viewer.workspaceId;
    throw ValidationError.of(field, 'is required with the admin token');
  }
  const id = parseGlobalId(workspaceGlobalId, 'Workspace', field);
  const exists = context.viewer
    ? context.viewer.workspaceId === id
    : (await db().workspace.count({ where: { id } })) > 0;
  if (!exists) throw new NotFoundError(field, 'workspace');
  return id;
}

builder.queryField('apiKeys', (t) =>
  t.prismaConnection({
    type: 'ApiKey',
    cursor: 'id',
    description: 'The API keys of your workspace (revoked ones too), newest first. Never the keys themselves.',
    authScopes: { $any: { workspace: true, admin: true } },
    args: {
      workspaceId: t.arg.id({
        required: false,
        description: 'Admin token only (required with it): the workspace whose keys to list.',
      }),
    },
    resolve: async (query, _root, args, context) => {
      let workspaceId: string;
      try {
        workspaceId = await targetWorkspaceId(args.workspaceId, context, 'workspaceId');
      } catch (error) {
        // Another workspace's id lists what an unknown id lists: nothing.
        if (error instanceof NotFoundError) return [];
        throw error;
      }
      return db().apiKey.findMany({
        ...query,
        where: { workspaceId },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      });
    },
  }),
);

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  description: 'A new API key.',
  fields: (t) => ({
    workspaceId: t.id({
      required: false,
      description: 'The workspace of the key: required with the admin token; an API key creates keys of its own workspace.',
    }),
    name: t.string({ required: true, description: 'What the key is for, 1–255 characters.' }),
    role: t.field({
      type: ApiKeyRoleEnum,
      required: false,
      defaultValue: 'WRITE',
      description: 'What the key may do; WRITE by default.',
    }),
  }),
});

const keyNameSchema = z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters');

const CreateApiKeySuccess = builder.objectRef<{ apiKeyId: string; key: string }>('CreateApiKeySuccess').implement({
  description: 'The key was created.',
  fields: (t) => ({
    apiKey: t.prismaField({
      type: 'ApiKey',
      description: 'The new key, as it is listed from now on.',
      resolve: (query, result) => db().apiKey.findUniqueOrThrow({ ...query, where: { id: result.apiKeyId } }),
    }),
    key: t.exposeString('key', {
      description: 'The API key itself, shown this once: only its hash is stored. Send it as `Authorization: Bearer <key>`.',
    }),
  }),
});

builder.mutationField('createApiKey', (t) =>
  t.field({
    type: CreateApiKeySuccess,
    description: 'Creates an API key: with the admin token in any workspace, with a WRITE key in its own workspace.',
    authScopes: { $any: { write: true, admin: true } },
    errors: { types: [ValidationError, NotFoundError], directResult: true },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true, description: 'The key.' }) },
    resolve: async (_root, { input }, context) => {
      const name = parseInput(keyNameSchema, input.name, 'input.name');
      const workspaceId = await targetWorkspaceId(input.workspaceId, context, 'input.workspaceId');
      const { key, record } = await createApiKey(workspaceId, name, input.role ?? 'WRITE');
      return { apiKeyId: record.id, key };
    },
  }),
);

builder.mutationField('revokeApiKey', (t) =>
  t.field({
    type: ApiKeyRef,
    description:
      'Revokes an API key at once: requests with it are refused and its open WebSockets are closed (code 4403). ' +
      'With the admin token in any workspace, with a WRITE key in its own workspace. Revoking a revoked key changes nothing.',
    authScopes: { $any: { write: true, admin: true } },
    errors: {
      types: [ValidationError, NotFoundError],
      dataField: { name: 'apiKey', description: 'The revoked key.' },
    },
    args: { id: t.arg.id({ required: true, description: 'The key to revoke.' }) },
    resolve: async (_root, { id }, context) => {
      const revoked = await revokeApiKey(parseGlobalId(id, 'ApiKey', 'id'), context.viewer?.workspaceId ?? null);
      if (!revoked) throw new NotFoundError('id', 'API key');
      return revoked;
    },
  }),
);
