import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Prisma, Workspace } from '../generated/prisma/client.js';
import type { ApiKeyRole } from '../generated/prisma/enums.js';
import { db } from '../infra/db.js';
import { eventBus } from '../infra/pubsub.js';

/** Who is calling: the workspace an API key belongs to, and what it may do. */
export interface Viewer {
  workspaceId: string;
  apiKeyId: string;
  role: ApiKeyRole;
  /** The key's workspace, read with it: a workspace never changes once created, so `viewer.workspace`
   * needs no read of its own (it was a quarter of the gateway's CPU for that query). */
  workspace: Workspace;
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

/**
 * Keys verified against the database, by hash, so that a request does not read its key again. An
 * entry is trusted for VERIFIED_KEY_TTL_MS at most; revocation drops it at once on the gateway that
 * revoked the key and, through the event bus, on the others (forgetRevokedKeys). Bounded: the oldest
 * entries make room. Unknown keys are not remembered, so guesses cannot fill it.
 */
const verifiedKeys = new Map<string, { viewer: Viewer; verifiedAt: number; lastUsedAt: number }>();
const VERIFIED_KEY_TTL_MS = 10_000;
const MAX_VERIFIED_KEYS = 10_000;
/** Counts forgotten keys: a lookup that a revocation overtook does not remember what it read. */
let revocations = 0;
/** The keys this process learnt were revoked, newest last (bounded): an operation authenticated just
 * before its key's revocation arrived can still tell. */
const revokedKeyIds = new Set<string>();

/** Resolves a `Bearer` credential to its viewer, or null when it is missing, unknown or revoked. */
export async function authenticateApiKey(authorization: string | null | undefined): Promise<Viewer | null> {
  const token = bearerToken(authorization);
  if (!token) return null;
  const keyHash = hashApiKey(token);
  let verified = verifiedKeys.get(keyHash);
  if (!verified || Date.now() - verified.verifiedAt > VERIFIED_KEY_TTL_MS) {
    const revocationsBefore = revocations;
    const apiKey = await db().apiKey.findUnique({
      where: { keyHash },
      select: { id: true, workspaceId: true, role: true, lastUsedAt: true, revokedAt: true, workspace: true },
    });
    verifiedKeys.delete(keyHash);
    if (!apiKey || apiKey.revokedAt) return null;
    verified = {
      viewer: { workspaceId: apiKey.workspaceId, apiKeyId: apiKey.id, role: apiKey.role, workspace: apiKey.workspace },
      verifiedAt: Date.now(),
      lastUsedAt: apiKey.lastUsedAt?.getTime() ?? 0,
    };
    if (revocationsBefore === revocations) {
      if (verifiedKeys.size >= MAX_VERIFIED_KEYS) verifiedKeys.delete(verifiedKeys.keys().next().value!);
      verifiedKeys.set(keyHash, verified);
    }
  }
  const now = Date.now();
  if (now - verified.lastUsedAt >= LAST_USED_RESOLUTION_MS) {
    verified.lastUsedAt = now;
    const staleBefore = new Date(now - LAST_USED_RESOLUTION_MS);
    // Conditional, for the other gateways that may have written it meanwhile.
    await db().apiKey.updateMany({
      where: { id: verified.viewer.apiKeyId, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: staleBefore } }] },
      data: { lastUsedAt: new Date(now) },
    });
  }
  return verified.viewer;
}

/** Drops a key from this process's verified keys. */
function forgetApiKey(apiKeyId: string): void {
  revocations++;
  if (revokedKeyIds.size >= MAX_VERIFIED_KEYS) revokedKeyIds.delete(revokedKeyIds.values().next().value!);
  revokedKeyIds.add(apiKeyId);
  for (const [keyHash, verified] of verifiedKeys) {
    if (verified.viewer.apiKeyId === apiKeyId) verifiedKeys.delete(keyHash);
  }
}

/** Whether this process has learnt that the key was revoked (recent revocations only). */
export function isKnownRevoked(apiKeyId: string): boolean {
  return revokedKeyIds.has(apiKeyId);
}

/** Forgets each key revoked on any gateway as its event arrives; returns the function that stops listening. */
export function forgetRevokedKeys(): () => Promise<void> {
  const revoked = eventBus().subscribe('apiKey:revoked');
  void (async () => {
    for await (const { apiKeyId } of revoked) forgetApiKey(apiKeyId);
  })();
  return async () => {
    await revoked.return?.();
  };
}

/** Revokes a key of `workspaceId` (of any workspace when null) and tells every gateway to forget it
 * and close the WebSockets opened with it. Revoking a revoked key changes nothing. Null when there is no such key. */
export async function revokeApiKey(id: string, workspaceId: string | null) {
  const where = { id, ...(workspaceId ? { workspaceId } : {}) };
  const { count } = await db().apiKey.updateMany({ where: { ...where, revokedAt: null }, data: { revokedAt: new Date() } });
  const apiKey = await db().apiKey.findFirst({ where });
  if (apiKey && count > 0) {
    forgetApiKey(apiKey.id);
    eventBus().publish('apiKey:revoked', { apiKeyId: apiKey.id, workspaceId: apiKey.workspaceId });
  }
  return apiKey;
}
