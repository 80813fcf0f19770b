-- AlterTable
ALTER TABLE "task" ADD COLUMN     "notify_secret" TEXT;
