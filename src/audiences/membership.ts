import type { DirectSql } from '../infra/db.js';
import { Prisma } from '../generated/prisma/client.js';
import type { NormalizedContact } from './contact-input.js';

// Everything here runs on the caller's direct transaction (see directTransaction): a call carries up
// to 100,000 members, which Prisma would keep in memory long after the query.

/** Upserts the contacts in one statement, keyed by workspace + key; returns how many were created and
 * how many changed. Values given replace stored ones; values left out keep what is stored. A contact
 * whose values do not change is not written, so its updated_at (which UPSERT syncs and segment rules
 * rely on) stays. */
function contactUpsert(workspaceId: string, contacts: NormalizedContact[]): Prisma.Sql {
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
      WHERE (contact.email, contact.phone, contact.first_name, contact.last_name, contact.country, contact.zip,
             contact.external_id, contact.mobile_ad_id, contact.attributes)
        IS DISTINCT FROM
            (COALESCE(EXCLUDED.email, contact.email), COALESCE(EXCLUDED.phone, contact.phone),
             COALESCE(EXCLUDED.first_name, contact.first_name), COALESCE(EXCLUDED.last_name, contact.last_name),
             COALESCE(EXCLUDED.country, contact.country), COALESCE(EXCLUDED.zip, contact.zip),
             COALESCE(EXCLUDED.external_id, contact.external_id), COALESCE(EXCLUDED.mobile_ad_id, contact.mobile_ad_id),
             contact.attributes || EXCLUDED.attributes)
      RETURNING (xmax = 0) AS created
    )
    SELECT count(*) FILTER (WHERE created)::int AS created, count(*) FILTER (WHERE NOT created)::int AS updated
    FROM upserted`;
}

const uniqueByKey = (contacts: NormalizedContact[]) => [...new Map(contacts.map((contact) => [contact.key, contact])).values()];

/** Upserts the contacts (see contactUpsert); returns how many were created and how many changed. */
export async function upsertContacts(
  sql: DirectSql,
  workspaceId: string,
  contacts: NormalizedContact[],
): Promise<{ created: number; updated: number }> {
  const unique = uniqueByKey(contacts);
  if (unique.length === 0) return { created: 0, updated: 0 };
  const [counts] = await sql<{ created: number; updated: number }>(contactUpsert(workspaceId, unique));
  return counts!;
}

/** Upserts the contacts (see contactUpsert) and adds them to the audience. Returns how many
 * memberships are new. */
export async function addMembers(
  sql: DirectSql,
  workspaceId: string,
  audienceId: string,
  contacts: NormalizedContact[],
): Promise<number> {
  const unique = uniqueByKey(contacts);
  if (unique.length === 0) return 0;
  await sql(contactUpsert(workspaceId, unique));
  // A statement of its own: unchanged contacts are not returned by the upsert, and contacts another
  // transaction inserted meanwhile are only visible to a later statement.
  const [added] = await sql<{ count: number }>(Prisma.sql`
    WITH added AS (
      INSERT INTO audience_member (audience_id, contact_id)
      SELECT ${audienceId}::uuid, id FROM contact
      WHERE workspace_id = ${workspaceId}::uuid AND key = ANY(${unique.map((contact) => contact.key)}::text[])
      ON CONFLICT DO NOTHING
      RETURNING 1)
    SELECT count(*)::int AS count FROM added`);
  return added!.count;
}

/** Removes the contacts with these keys from the audience; returns how many were members. */
export async function removeMembers(sql: DirectSql, workspaceId: string, audienceId: string, keys: string[]): Promise<number> {
  if (keys.length === 0) return 0;
  const [removed] = await sql<{ count: number }>(Prisma.sql`
    WITH removed AS (
      DELETE FROM audience_member m
      USING contact c
      WHERE m.audience_id = ${audienceId}::uuid
        AND m.contact_id = c.id
        AND c.workspace_id = ${workspaceId}::uuid
        AND c.key = ANY(${keys}::text[])
      RETURNING 1)
    SELECT count(*)::int AS count FROM removed`);
  return removed!.count;
}

/** The kind of the workspace's audience if it is live (not deleted), holding its row FOR SHARE for the
 * rest of the transaction so that a concurrent deleteAudience waits; null otherwise. */
export async function lockLiveAudience(sql: DirectSql, workspaceId: string, audienceId: string): Promise<{ kind: string } | null> {
  const [audience] = await sql<{ kind: string }>(Prisma.sql`
    SELECT kind::text FROM audience
    WHERE id = ${audienceId}::uuid AND workspace_id = ${workspaceId}::uuid AND deleted_at IS NULL
    FOR SHARE`);
  return audience ?? null;
}
