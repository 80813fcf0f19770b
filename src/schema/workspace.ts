import { z } from 'zod';
import { db } from '../infra/db.js';
import { createWorkspaceWithKey } from '../identity/workspaces.js';
import { builder } from './builder.js';
import { ConflictError, ValidationError, parseInput } from './errors.js';
import { NIL_UUID } from './node-id.js';

export const WorkspaceRef = builder.prismaNode('Workspace', {
  description: 'An organisation. Its destinations, audiences, syncs and API keys are its own and no one else’s.',
  id: { field: 'id' },
  nullable: true,
  // An API key sees its own workspace only.
  findUnique: (id, context) => ({ id, AND: [{ id: context.viewer?.workspaceId ?? NIL_UUID }] }),
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Display name, unique across the gateway.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the workspace was created.' }),
  }),
});

const CreateWorkspaceInput = builder.inputType('CreateWorkspaceInput', {
  description: 'A new workspace.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Display name, 1–255 characters, unique across the gateway.' }),
  }),
});

export const workspaceNameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters');

interface CreatedWorkspace {
  workspace: { id: string };
  apiKey: { id: string };
  key: string;
}

const CreateWorkspaceSuccess = builder.objectRef<CreatedWorkspace>('CreateWorkspaceSuccess').implement({
  description: 'The workspace was created, with a first API key (role WRITE).',
  fields: (t) => ({
    workspace: t.prismaField({
      type: 'Workspace',
      description: 'The new workspace.',
      resolve: (query, result) => db().workspace.findUniqueOrThrow({ ...query, where: { id: result.workspace.id } }),
    }),
    apiKey: t.prismaField({
      type: 'ApiKey',
      description: 'The first API key of the workspace.',
      resolve: (query, result) => db().apiKey.findUniqueOrThrow({ ...query, where: { id: result.apiKey.id } }),
    }),
    key: t.exposeString('key', {
      description: 'The API key itself, shown this once: only its hash is stored. Send it as `Authorization: Bearer <key>`.',
    }),
  }),
});

builder.mutationField('createWorkspace', (t) =>
  t.field({
    type: CreateWorkspaceSuccess,
    description: 'Creates a workspace and its first API key. Admin token only.',
    authScopes: { admin: true },
    errors: { types: [ValidationError, ConflictError], directResult: true },
    args: { input: t.arg({ type: CreateWorkspaceInput, required: true, description: 'The workspace.' }) },
    resolve: async (_root, { input }) => {
      const name = parseInput(workspaceNameSchema, input.name, 'input.name');
      const created = await createWorkspaceWithKey(name, 'first key');
      if (!created) throw new ConflictError(`A workspace named "${name}" exists already: choose another name`);
      return created;
    },
  }),
);
