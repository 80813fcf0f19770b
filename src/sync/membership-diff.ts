import type { ContactIdentity, EncodedIdentifiers } from '../destinations/destination.js';
import type { PrismaClient } from '../generated/prisma/client.js';

/**
 * The difference between what an audience holds (desired) and what a sync has confirmed on its
 * destination (synced_member), read in key order one batch at a time. Each read starts after the
 * last contact id seen, so a batch costs an index range scan whatever the audience size, and a
 * resumed run simply starts again from the beginning of what is still different.
 */

export interface DiffCounts {
  desired: number;
  toAdd: number;
  toRemove: number;
}

export async function countMembershipDiff(prisma: PrismaClient, audienceId: string, syncId: string): Promise<DiffCounts> {
  const [counts] = await prisma.$queryRaw<{ desired: bigint; to_add: bigint; to_remove: bigint }[]>`
    SELECT
      (SELECT count(*) FROM audience_member WHERE audience_id = ${audienceId}::uuid) AS desired,
      (SELECT count(*) FROM audience_member m
        WHERE m.audience_id = ${audienceId}::uuid
          AND NOT EXISTS (SELECT 1 FROM synced_member s
                          WHERE s.sync_id = ${syncId}::uuid AND s.contact_id = m.contact_id)) AS to_add,
      (SELECT count(*) FROM synced_member s
        WHERE s.sync_id = ${syncId}::uuid
          AND NOT EXISTS (SELECT 1 FROM audience_member m
                          WHERE m.audience_id = ${audienceId}::uuid AND m.contact_id = s.contact_id)) AS to_remove`;
  return { desired: Number(counts!.desired), toAdd: Number(counts!.to_add), toRemove: Number(counts!.to_remove) };
}

/** Members of the audience not yet on the destination, after contact id `after`. */
export async function readMembersToAdd(
  prisma: PrismaClient,
  audienceId: string,
  syncId: string,
  after: bigint,
  limit: number,
): Promise<ContactIdentity[]> {
  return prisma.$queryRaw<ContactIdentity[]>`
    SELECT c.id, c.email, c.phone, c.first_name AS "firstName", c.last_name AS "lastName", c.country, c.zip,
           c.external_id AS "externalId", c.mobile_ad_id AS "mobileAdId"
    FROM audience_member m
    JOIN contact c ON c.id = m.contact_id
    WHERE m.audience_id = ${audienceId}::uuid
      AND m.contact_id > ${after}
      AND NOT EXISTS (SELECT 1 FROM synced_member s WHERE s.sync_id = ${syncId}::uuid AND s.contact_id = m.contact_id)
    ORDER BY m.contact_id
    LIMIT ${limit}`;
}

export interface SyncedRow {
  contactId: bigint;
  identifiers: EncodedIdentifiers;
}

/** Members on the destination that left the audience, after contact id `after`. */
export async function readMembersToRemove(
  prisma: PrismaClient,
  audienceId: string,
  syncId: string,
  after: bigint,
  limit: number,
): Promise<SyncedRow[]> {
  return prisma.$queryRaw<SyncedRow[]>`
    SELECT s.contact_id AS "contactId", s.identifiers
    FROM synced_member s
    WHERE s.sync_id = ${syncId}::uuid
      AND s.contact_id > ${after}
      AND NOT EXISTS (SELECT 1 FROM audience_member m
                      WHERE m.audience_id = ${audienceId}::uuid AND m.contact_id = s.contact_id)
    ORDER BY s.contact_id
    LIMIT ${limit}`;
}
