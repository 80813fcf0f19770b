-- DropForeignKey
ALTER TABLE "synced_member" DROP CONSTRAINT "synced_member_sync_id_fkey";
