-- AlterEnum
ALTER TYPE "SyncRunTrigger" ADD VALUE 'PLATFORM_JOB';
