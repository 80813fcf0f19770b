-- AlterTable
ALTER TABLE "sync_run" ADD COLUMN     "invalid_samples" TEXT[] DEFAULT ARRAY[]::TEXT[];
