-- AlterTable
ALTER TABLE "sync_run" ADD COLUMN     "members_refused" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "refusal_reason" TEXT;
