-- AlterTable
ALTER TABLE "sync_run" ADD COLUMN     "waited_ms" INTEGER NOT NULL DEFAULT 0;
