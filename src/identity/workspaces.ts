import { createApiKey } from './api-keys.js';
import { db } from '../infra/db.js';
import { Prisma } from '../generated/prisma/client.js';
import type { ApiKeyRole } from '../generated/prisma/enums.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Creates a workspace and its first API key in one transaction; null when the name is taken. The
 * key's plaintext is in `key`, returned this once. */
export async function createWorkspaceWithKey(name: string, keyName: string, role: ApiKeyRole = 'WRITE') {
  try {
    return await db().$transaction(async (tx) => {
      const workspace = await tx.workspace.create({ data: { name } });
      const { key, record } = await createApiKey(workspace.id, keyName, role, tx);
      return { workspace, apiKey: record, key };
    });
  } catch (error) {
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return null;
    throw error;
  }
}

/** The workspace with this id or, failing that, this name. */
export async function findWorkspace(nameOrId: string) {
  const byId = UUID.test(nameOrId) ? await db().workspace.findUnique({ where: { id: nameOrId } }) : null;
  return byId ?? db().workspace.findUnique({ where: { name: nameOrId } });
}
