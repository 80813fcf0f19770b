import type { Prisma } from '../generated/prisma/client.js';
import type { NormalizedContact } from './contact-input.js';

/** Upserts the contacts (one statement, keyed by workspace + key) and adds them to the audience.
 * Values given replace stored ones; values left out keep what is stored. Returns how many
 * memberships are new. */
export async function addMembers(
  tx: Prisma.TransactionClient,
  workspaceId: string,
  audienceId: string,
  contacts: NormalizedContact[],
): Promise<number> {
  const unique = [...new Map(contacts.map((contact) => [contact.key, contact])).values()];
  if (unique.length === 0) return 0;
  const column = <K extends keyof NormalizedContact>(name: K) => unique.map((contact) => contact[name]);
  return tx.$executeRaw`
    WITH input AS (
      SELECT * FROM unnest(
        ${column('key')}::text[], ${column('email')}::text[], ${column('phone')}::text[],
        ${column('firstName')}::text[], ${column('lastName')}::text[], ${column('country')}::text[],
        ${column('zip')}::text[], ${column('externalId')}::text[], ${column('mobileAdId')}::text[],
        ${unique.map((contact) => JSON.stringify(contact.attributes))}::jsonb[]
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
      RETURNING id
    )
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
