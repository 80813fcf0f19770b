import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { isSha256Hex } from '../destinations/hashing.js';
import { urlProblem } from '../infra/address-policy.js';
import { SIGNING_SECRET_LENGTH } from '../destinations/webhook/signature.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { ConsentBasis } from '../generated/prisma/enums.js';
import { normalizeContact, type NormalizedContact } from '../audiences/contact-input.js';
import { deleteAudiences } from './delete-audiences.js';
import { TaskFailure, type Checkpoint, type TaskRun } from './task-run.js';
import { addMembers, lockLiveAudience, removeMembers } from '../audiences/membership.js';

/** Most members (adds and removes, over all audiences) one syncAudiences request carries. */
export const MAX_SYNC_MEMBERS = 100_000;
/** Members added or removed per committed step. */
const BATCH_SIZE = 5_000;
const MAX_ISSUES = 100;
const MAX_ID_LENGTH = 255;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface SyncAudiencesInput {
  audiences: readonly {
    audienceId: string;
    name?: string | null;
    consentBasis?: ConsentBasis | null;
    add?: readonly {
      externalId: string;
      hashedEmail?: string | null;
      hashedPhone?: string | null;
      uids?: readonly { type: 'MOBILE_AD_ID'; value: string }[] | null;
    }[] | null;
    remove?: readonly string[] | null;
    delete?: boolean | null;
  }[];
  deleteMissing?: boolean | null;
  notifyUrl?: string | null;
  notifySecret?: string | null;
}

/** A member to add, as stored in the task's payload: [externalId, hashedEmail, hashedPhone, mobileAdId]. */
type StoredMember = [string, string | null, string | null, string | null];

/** The validated request, as the task's payload holds it. */
export interface SyncAudiencesRequest {
  audiences: {
    externalId: string;
    name: string | null;
    consentBasis: ConsentBasis | null;
    add: StoredMember[];
    remove: string[];
    delete: boolean;
  }[];
  deleteMissing: boolean;
}

export interface AudienceOutcome {
  audienceId: string;
  /** The audience's global id; null for an audience asked to be deleted that did not exist. */
  id: string | null;
  created: boolean;
  added: number;
  removed: number;
  deleted: boolean;
}

export interface SyncAudiencesResult {
  audiences: AudienceOutcome[];
  /** Set once the deleteMissing step ran (0 when it was not asked for). */
  deletedMissing?: number;
}

type Validation =
  | { ok: true; request: SyncAudiencesRequest; members: number }
  | { ok: false; issues: { field: string; message: string }[] };

function idProblem(value: string): string | null {
  if (value.length < 1 || value.length > MAX_ID_LENGTH) return `must be 1–${MAX_ID_LENGTH} characters`;
  if (value.trim() !== value) return 'must not start or end with spaces';
  return null;
}

/** Checks a whole syncAudiences request; any problem rejects all of it. Paths start at `root`. */
export function validateSyncAudiences(input: SyncAudiencesInput, root = 'input'): Validation {
  const issues: { field: string; message: string }[] = [];
  const issue = (field: string, message: string) => {
    if (issues.length < MAX_ISSUES) issues.push({ field: `${root}.${field}`, message });
  };
  if (input.audiences.length === 0) issue('audiences', 'give at least one audience');
  const members = input.audiences.reduce((sum, a) => sum + (a.add?.length ?? 0) + (a.remove?.length ?? 0), 0);
  if (members > MAX_SYNC_MEMBERS) {
    issue('audiences', `at most ${MAX_SYNC_MEMBERS} members (adds and removes over all audiences) per request; got ${members}`);
    return { ok: false, issues };
  }
  if (input.notifyUrl != null) {
    const problem = urlProblem(input.notifyUrl);
    if (problem) issue('notifyUrl', problem);
  }
  if (input.notifySecret != null) {
    const { length } = input.notifySecret;
    if (input.notifyUrl == null) issue('notifySecret', 'signs the notifyUrl call: give notifyUrl too');
    else if (length < SIGNING_SECRET_LENGTH.min || length > SIGNING_SECRET_LENGTH.max) {
      issue('notifySecret', `must be ${SIGNING_SECRET_LENGTH.min}–${SIGNING_SECRET_LENGTH.max} characters (e.g. \`openssl rand -hex 32\`)`);
    } else if (!/^[\x21-\x7e]+$/.test(input.notifySecret)) issue('notifySecret', 'must be printable ASCII without spaces');
  }

  const seen = new Map<string, number>();
  const audiences = input.audiences.map((audience, i) => {
    const at = `audiences.${i}`;
    const idIssue = idProblem(audience.audienceId);
    if (idIssue) issue(`${at}.audienceId`, idIssue);
    const first = seen.get(audience.audienceId);
    if (first !== undefined) issue(`${at}.audienceId`, `appears twice in the request (also audiences.${first})`);
    else seen.set(audience.audienceId, i);
    const name = audience.name?.trim() ?? null;
    if (audience.name != null && (!name || name.length > MAX_ID_LENGTH)) issue(`${at}.name`, `must be 1–${MAX_ID_LENGTH} characters`);
    if (audience.delete && (audience.add?.length ?? 0) > 0) {
      issue(`${at}.delete`, 'an audience cannot be deleted and given members to add in one request');
    }
    const add = (audience.add ?? []).map((member, j): StoredMember => {
      const path = `${at}.add.${j}`;
      const externalId = member.externalId.trim();
      if (!externalId || externalId.length > MAX_ID_LENGTH) issue(`${path}.externalId`, `must be 1–${MAX_ID_LENGTH} characters`);
      for (const field of ['hashedEmail', 'hashedPhone'] as const) {
        const value = member[field];
        if (value != null && !isSha256Hex(value)) {
          issue(`${path}.${field}`, 'must be a SHA-256 hex digest: 64 lowercase hexadecimal characters');
        }
      }
      let mobileAdId: string | null = null;
      (member.uids ?? []).forEach((uid, k) => {
        if (!UUID.test(uid.value)) issue(`${path}.uids.${k}.value`, 'must be a mobile ad id (IDFA or GAID, a UUID)');
        else if (mobileAdId !== null) issue(`${path}.uids.${k}.type`, 'give at most one MOBILE_AD_ID per member');
        else mobileAdId = uid.value.toLowerCase();
      });
      return [externalId, member.hashedEmail ?? null, member.hashedPhone ?? null, mobileAdId];
    });
    const remove = (audience.remove ?? []).map((externalId, k) => {
      const trimmed = externalId.trim();
      if (!trimmed || trimmed.length > MAX_ID_LENGTH) issue(`${at}.remove.${k}`, `must be 1–${MAX_ID_LENGTH} characters`);
      return trimmed;
    });
    return {
      externalId: audience.audienceId,
      name,
      consentBasis: audience.consentBasis ?? null,
      add,
      remove,
      delete: audience.delete ?? false,
    };
  });
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, request: { audiences, deleteMissing: input.deleteMissing ?? false }, members };
}

function toContact([externalId, email, phone, mobileAdId]: StoredMember): NormalizedContact {
  const normalized = normalizeContact({ externalId, email, phone, mobileAdId });
  // Validated before the task was accepted: a failure here is a bug, not the caller's input.
  if (!normalized.ok) throw new Error(`A validated member no longer normalizes (${normalized.field})`);
  return normalized.contact;
}

/** Creates the audience with this external id, or updates the live one; a deleted audience gives up
 * its external id, so that the caller's id starts a new audience. */
async function upsertAudience(
  tx: Prisma.TransactionClient,
  workspaceId: string,
  audience: SyncAudiencesRequest['audiences'][number],
): Promise<{ id: string; created: boolean }> {
  await tx.$executeRaw`
    UPDATE audience SET external_id = NULL
    WHERE workspace_id = ${workspaceId}::uuid AND external_id = ${audience.externalId} AND deleted_at IS NOT NULL`;
  const [row] = await tx.$queryRaw<{ id: string; kind: string; created: boolean }[]>`
    INSERT INTO audience (id, workspace_id, name, external_id, consent_basis, updated_at)
    VALUES (gen_random_uuid(), ${workspaceId}::uuid, ${audience.name ?? audience.externalId}, ${audience.externalId},
            ${audience.consentBasis}::"ConsentBasis", now())
    ON CONFLICT (workspace_id, external_id) DO UPDATE SET
      name = COALESCE(${audience.name}, audience.name),
      consent_basis = COALESCE(EXCLUDED.consent_basis, audience.consent_basis),
      updated_at = now()
    RETURNING id::text, kind::text, (xmax = 0) AS created`;
  if (row!.kind !== 'STATIC') {
    throw new TaskFailure(`The audience "${audience.externalId}" is a segment: its members follow its rule and cannot be synced`);
  }
  return { id: row!.id, created: row!.created };
}

/** The first step for an audience: delete it, or create/update it. */
async function openAudience(
  tx: Prisma.TransactionClient,
  workspaceId: string,
  audience: SyncAudiencesRequest['audiences'][number],
): Promise<AudienceOutcome> {
  const outcome = { audienceId: audience.externalId, created: false, added: 0, removed: 0, deleted: false };
  if (audience.delete) {
    const [deleted] = await deleteAudiences(tx, workspaceId, { externalId: audience.externalId });
    return { ...outcome, id: deleted ? encodeGlobalID('Audience', deleted) : null, deleted: deleted !== undefined };
  }
  const upserted = await upsertAudience(tx, workspaceId, audience);
  return { ...outcome, id: encodeGlobalID('Audience', upserted.id), created: upserted.created };
}

/**
 * Applies a syncAudiences request, audience by audience in request order, adds then removes in steps
 * of up to 5,000 members, each committed with the task's checkpoint: an interrupted task resumes
 * after its last committed step, so nothing is applied or counted twice. deleteMissing runs last.
 */
export async function syncAudienceMembers(run: TaskRun, parameters: unknown): Promise<SyncAudiencesResult> {
  const request = parameters as SyncAudiencesRequest;
  const { workspaceId } = run;
  const total = request.audiences.reduce((sum, audience) => sum + audience.add.length + audience.remove.length, 0);
  let checkpoint: Checkpoint<SyncAudiencesResult> = {
    processed: run.processed,
    total,
    result: (run.result as SyncAudiencesResult | null) ?? { audiences: [] },
  };
  let start = 0;
  for (const [index, audience] of request.audiences.entries()) {
    const end = start + audience.add.length + audience.remove.length;
    if (!checkpoint.result.audiences[index]) {
      checkpoint = await run.commit(async (tx) => {
        const outcome = await openAudience(tx, workspaceId, audience);
        return { ...checkpoint, result: { ...checkpoint.result, audiences: [...checkpoint.result.audiences, outcome] } };
      });
    }
    const opened = checkpoint.result.audiences[index]!;
    const audienceId = opened.id && !opened.deleted ? decodeGlobalID(opened.id).id : null;
    // A deleted (or never existing) audience has no members to change: its removes count as done.
    if (!audienceId) checkpoint = { ...checkpoint, processed: Math.max(checkpoint.processed, end) };
    while (audienceId && checkpoint.processed < end) {
      const offset = checkpoint.processed - start;
      checkpoint = await run.commitMembers(async (sql) => {
        if (!(await lockLiveAudience(sql, workspaceId, audienceId))) {
          throw new TaskFailure(`The audience "${audience.externalId}" was deleted while the task ran`);
        }
        const current = checkpoint.result.audiences[index]!;
        let changed: Partial<AudienceOutcome>;
        let size: number;
        if (offset < audience.add.length) {
          const batch = audience.add.slice(offset, offset + BATCH_SIZE);
          size = batch.length;
          changed = { added: current.added + (await addMembers(sql, workspaceId, audienceId, batch.map(toContact))) };
        } else {
          const from = offset - audience.add.length;
          const batch = audience.remove.slice(from, from + BATCH_SIZE);
          size = batch.length;
          const keys = batch.map((externalId) => `ext:${externalId}`);
          changed = { removed: current.removed + (await removeMembers(sql, workspaceId, audienceId, keys)) };
        }
        const audiences = checkpoint.result.audiences.map((entry, i) => (i === index ? { ...entry, ...changed } : entry));
        return { processed: checkpoint.processed + size, total, result: { ...checkpoint.result, audiences } };
      });
    }
    start = end;
  }

  if (checkpoint.result.deletedMissing === undefined) {
    const requested = request.audiences.map((audience) => audience.externalId);
    checkpoint = await run.commit(async (tx) => {
      const deleted = request.deleteMissing
        ? await deleteAudiences(tx, workspaceId, { externalId: { not: null, notIn: requested } })
        : [];
      return { ...checkpoint, result: { ...checkpoint.result, deletedMissing: deleted.length } };
    });
  }
  return checkpoint.result;
}
