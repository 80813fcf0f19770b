import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Prisma } from '../generated/prisma/client.js';
import type { ApiKeyRole } from '../generated/prisma/enums.js';
import { db } from '../infra/db.js';
import { eventBus } from '../infra/pubsub.js';

/** Who is calling: the workspace an API key belongs to, and what it may do. */
export interface Viewer {
  workspaceId: string;
  apiKeyId: string;
  role: ApiKeyRole;
}

const KEY_PREFIX = 'asg_';
/** lastUsedAt is refreshed at most this often per key, not on every request. */
const LAST_USED_RESOLUTION_MS = 60_000;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Creates an API key; the plaintext is returned once and only its hash is stored. */
export async function createApiKey(
  workspaceId: string,
  name: string,
  role: ApiKeyRole = 'WRITE',
  client: Prisma.TransactionClient = db(),
) {
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const record = await client.apiKey.create({
    data: { workspaceId, name, role, prefix: key.slice(0, KEY_PREFIX.length + 6), keyHash: hashApiKey(key) },
  });
  return { key, record };
}

function bearerToken(authorization: string | null | undefined): string | null {
  return /^Bearer\s+(\S+)$/i.exec(authorization?.trim() ?? '')?.[1] ?? null;
}

/** Whether a `Bearer` credential is the admin token; compares digests in constant time. */
export function isAdminToken(authorization: string | null | undefined, adminToken: string | undefined): boolean {
  const token = bearerToken(authorization);
  if (!token || !adminToken) return false;
  return timingSafeEqual(createHash('sha256').update(token).digest(), createHash('sha256').update(adminToken).digest());
}

/** Resolves a `Bearer` credential to its viewer, or null when it is missing, unknown or revoked. */
export async function authenticateApiKey(authorization: string | null | undefined): Promise<Viewer | null> {
  const token = bearerToken(authorization);
  if (!token) return null;
  const apiKey = await db().apiKey.findUnique({ where: { keyHash: hashApiKey(token) } });
  if (!apiKey || apiKey.revokedAt) return null;
  const staleBefore = new Date(Date.now() - LAST_USED_RESOLUTION_MS);
  if (!apiKey.lastUsedAt || apiKey.lastUsedAt < staleBefore) {
    await db().apiKey.updateMany({
      where: { id: apiKey.id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: staleBefore } }] },
      data: { lastUsedAt: new Date() },
    });
  }
  return { workspaceId: apiKey.workspaceId, apiKeyId: apiKey.id, role: apiKey.role };
}

/** Revokes a key of `workspaceId` (of any workspace when null) and tells every gateway to close the
 * WebSockets opened with it. Revoking a revoked key changes nothing. Null when there is no such key. */
export async function revokeApiKey(id: string, workspaceId: string | null) {
  const where = { id, ...(workspaceId ? { workspaceId } : {}) };
  const { count } = await db().apiKey.updateMany({ where: { ...where, revokedAt: null }, data: { revokedAt: new Date() } });
  const apiKey = await db().apiKey.findFirst({ where });
  if (apiKey && count > 0) eventBus().publish('apiKey:revoked', { apiKeyId: apiKey.id, workspaceId: apiKey.workspaceId });
  return apiKey;
}
