-- AlterTable
ALTER TABLE "audience_sync" ADD COLUMN     "last_platform_request_batch" BIGINT,
ADD COLUMN     "last_platform_request_id" TEXT;
