-- AlterTable
ALTER TABLE "audience_sync" ADD COLUMN     "platform_audience" JSONB;

-- AlterTable
ALTER TABLE "sync_run" ADD COLUMN     "members_unusable" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "unusable_counts" JSONB NOT NULL DEFAULT '{}';
