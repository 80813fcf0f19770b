-- AlterTable
ALTER TABLE "sync_run" ADD COLUMN     "planned_adds" INTEGER,
ADD COLUMN     "planned_removes" INTEGER,
ADD COLUMN     "planned_updates" INTEGER;
