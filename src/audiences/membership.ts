import { Prisma } from '../generated/prisma/client.js';
import type { NormalizedContact } from './contact-input.js';

/** The CTEs `input` and `upserted` (id, created) that upsert the contacts in one statement, keyed by
 * workspace + key. Values given replace stored ones; values left out keep what is stored. */
function contactUpsertCtes(workspaceId: string, contacts: NormalizedContact[]): Prisma.Sql {
  const column = <K extends keyof NormalizedContact>(name: K) => contacts.map((contact) => contact[name]);
  return Prisma.sql`
    WITH input AS (
      SELECT * FROM unnest(
        ${column('key')}::text[], ${column('email')}::text[], ${column('phone')}::text[],
        ${column('firstName')}::text[], ${column('lastName')}::text[], ${column('country')}::text[],
        ${column('zip')}::text[], ${column('externalId')}::text[], ${column('mobileAdId')}::text[],
        ${contacts.map((contact) => JSON.stringify(contact.attributes))}::jsonb[]
      ) AS t(key, email, phone, first_name, last_name, country, zip, external_id, mobile_ad_id, attributes)
    ),
    upserted AS (
      INSERT INTO contact (workspace_id, key, email, phone, first_name, last_name, country, zip,
                           external_id, mobile_ad_id, attributes)
      SELECT ${workspaceId}::uuid, key, email, phone, first_name, last_name, country, zip,
             external_id, mobile_ad_id, attributes
      FROM input
      ON CONFLICT (workspace_id, key) DO UPDATE SET
        email = COALESCE(EXCLUDED.email, contact.email),
        phone = COALESCE(EXCLUDED.phone, contact.phone),
        first_name = COALESCE(EXCLUDED.first_name, contact.first_name),
        last_name = COALESCE(EXCLUDED.last_name, contact.last_name),
        country = COALESCE(EXCLUDED.country, contact.country),
        zip = COALESCE(EXCLUDED.zip, contact.zip),
        external_id = COALESCE(EXCLUDED.external_id, contact.external_id),
        mobile_ad_id = COALESCE(EXCLUDED.mobile_ad_id, contact.mobile_ad_id),
        attributes = contact.attributes || EXCLUDED.attributes,
        updated_at = now()
      RETURNING id, (xmax = 0) AS created
    )`;
}

const uniqueByKey = (contacts: NormalizedContact[]) => [...new Map(contacts.map((contact) => [contact.key, contact])).values()];

/** Upserts the contacts (see contactUpsertCtes); returns how many were created and how many updated. */
export async function upsertContacts(
  tx: Prisma.TransactionClient,
  workspaceId: string,
  contacts: NormalizedContact[],
): Promise<{ created: number; updated: number }> {
  const unique = uniqueByKey(contacts);
  if (unique.length === 0) return { created: 0, updated: 0 };
  const [counts] = await tx.$queryRaw<{ created: bigint; updated: bigint }[]>`
    ${contactUpsertCtes(workspaceId, unique)}
    SELECT count(*) FILTER (WHERE created) AS created, count(*) FILTER (WHERE NOT created) AS updated FROM upserted`;
  return { created: Number(counts!.created), updated: Number(counts!.updated) };
}

/** Upserts the contacts (see contactUpsertCtes) and adds them to the audience. Returns how many
 * memberships are new. */
export async function addMembers(
  tx: Prisma.TransactionClient,
  workspaceId: string,
  audienceId: string,
  contacts: NormalizedContact[],
): Promise<number> {
  const unique = uniqueByKey(contacts);
  if (unique.length === 0) return 0;
  return tx.$executeRaw`
    ${contactUpsertCtes(workspaceId, unique)}
    INSERT INTO audience_member (audience_id, contact_id)
    SELECT ${audienceId}::uuid, id FROM upserted
    ON CONFLICT DO NOTHING`;
}

/** Removes the contacts with these keys from the audience; returns how many were members. */
export async function removeMembers(
  tx: Prisma.TransactionClient,
  workspaceId: string,
  audienceId: string,
  keys: string[],
): Promise<number> {
  if (keys.length === 0) return 0;
  return tx.$executeRaw`
    DELETE FROM audience_member m
    USING contact c
    WHERE m.audience_id = ${audienceId}::uuid
      AND m.contact_id = c.id
      AND c.workspace_id = ${workspaceId}::uuid
      AND c.key = ANY(${keys}::text[])`;
}

/** The kind of the workspace's audience if it is live (not deleted), holding its row FOR SHARE for the
 * rest of the transaction so that a concurrent deleteAudience waits; null otherwise. */
export async function lockLiveAudience(
  tx: Prisma.TransactionClient,
  workspaceId: string,
  audienceId: string,
): Promise<{ kind: string } | null> {
  const [audience] = await tx.$queryRaw<{ kind: string }[]>`
    SELECT kind::text FROM audience
    WHERE id = ${audienceId}::uuid AND workspace_id = ${workspaceId}::uuid AND deleted_at IS NULL
    FOR SHARE`;
  return audience ?? null;
}
