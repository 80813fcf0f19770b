import type { Workspace } from '../generated/prisma/client.js';
import type { ApiKeyRole } from '../generated/prisma/enums.js';
import { db } from '../infra/db.js';
import { ApiKeyRoleEnum } from './api-key.js';
import { builder } from './builder.js';

interface ViewerShape {
  admin: boolean;
  /** Read with the API key (see Viewer.workspace). */
  workspace: Workspace | null;
  apiKeyId: string | null;
  role: ApiKeyRole | null;
}

const ViewerRef = builder.objectRef<ViewerShape>('Viewer').implement({
  description: 'Who is calling: an API key of a workspace, or the admin token.',
  fields: (t) => ({
    admin: t.exposeBoolean('admin', { description: 'True for the admin token (which has no workspace).' }),
    workspace: t.prismaField({
      type: 'Workspace',
      nullable: true,
      description: 'The workspace of the API key; null for the admin token.',
      // The row read with the API key: the Workspace type shows only its own columns, which never change.
      resolve: (_query, viewer) => viewer.workspace,
    }),
    apiKey: t.prismaField({
      type: 'ApiKey',
      nullable: true,
      description: 'The API key of the request; null for the admin token.',
      resolve: (query, viewer) => (viewer.apiKeyId ? db().apiKey.findUnique({ ...query, where: { id: viewer.apiKeyId } }) : null),
    }),
    role: t.field({
      type: ApiKeyRoleEnum,
      nullable: true,
      description: 'What the API key may do; null for the admin token.',
      resolve: (viewer) => viewer.role,
    }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({
    type: ViewerRef,
    description: 'The caller: the API key (and its workspace) or the admin token the request came with.',
    authScopes: { $any: { workspace: true, admin: true } },
    resolve: (_root, _args, { viewer, admin }) => ({
      admin,
      workspace: viewer?.workspace ?? null,
      apiKeyId: viewer?.apiKeyId ?? null,
      role: viewer?.role ?? null,
    }),
  }),
);
