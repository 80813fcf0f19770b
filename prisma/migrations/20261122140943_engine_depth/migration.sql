-- CreateEnum
CREATE TYPE "AudienceKind" AS ENUM ('STATIC', 'SEGMENT');

-- CreateEnum
CREATE TYPE "ConsentBasis" AS ENUM ('CONSENT', 'LEGITIMATE_INTEREST', 'CONTRACT', 'LEGAL_OBLIGATION');

-- CreateEnum
CREATE TYPE "ScheduleFrequency" AS ENUM ('HOURLY', 'DAILY', 'WEEKLY');

-- CreateEnum
CREATE TYPE "PlatformJobStatus" AS ENUM ('RUNNING', 'SUCCEEDED', 'FAILED');

-- AlterTable
ALTER TABLE "audience" ADD COLUMN     "consent_basis" "ConsentBasis",
ADD COLUMN     "deleted_at" TIMESTAMP(3),
ADD COLUMN     "external_id" TEXT,
ADD COLUMN     "kind" "AudienceKind" NOT NULL DEFAULT 'STATIC',
ADD COLUMN     "segment_rule" JSONB,
ADD COLUMN     "split_groups" JSONB NOT NULL DEFAULT '[]';

-- AlterTable
ALTER TABLE "audience_sync" ADD COLUMN     "schedule_frequency" "ScheduleFrequency",
ADD COLUMN     "split_group" TEXT;

-- AlterTable
ALTER TABLE "sync_run" ADD COLUMN     "identifier_counts" JSONB NOT NULL DEFAULT '{}',
ADD COLUMN     "members_received" INTEGER,
ADD COLUMN     "members_updated" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "task" ADD COLUMN     "notify_url" TEXT,
ADD COLUMN     "processed" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "progress" DOUBLE PRECISION NOT NULL DEFAULT 0,
ADD COLUMN     "started_at" TIMESTAMP(3),
ADD COLUMN     "total" INTEGER;

-- CreateTable
CREATE TABLE "audience_sync_suppression" (
    "sync_id" UUID NOT NULL,
    "audience_id" UUID NOT NULL,

    CONSTRAINT "audience_sync_suppression_pkey" PRIMARY KEY ("sync_id","audience_id")
);

-- CreateTable
CREATE TABLE "task_payload" (
    "task_id" UUID NOT NULL,
    "content" BYTEA NOT NULL,

    CONSTRAINT "task_payload_pkey" PRIMARY KEY ("task_id")
);

-- CreateTable
CREATE TABLE "platform_job" (
    "id" UUID NOT NULL,
    "sync_id" UUID NOT NULL,
    "run_id" UUID,
    "platform" "Platform" NOT NULL,
    "resource_name" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "members" JSONB NOT NULL,
    "status" "PlatformJobStatus" NOT NULL DEFAULT 'RUNNING',
    "error_message" TEXT,
    "checked_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "platform_job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE UNLOGGED TABLE "run_diff" (
    "run_id" UUID NOT NULL,
    "action" TEXT NOT NULL,
    "contact_id" BIGINT NOT NULL,

    CONSTRAINT "run_diff_pkey" PRIMARY KEY ("run_id","action","contact_id")
);

-- CreateIndex
CREATE INDEX "audience_sync_suppression_audience_id_idx" ON "audience_sync_suppression"("audience_id");

-- CreateIndex
CREATE INDEX "platform_job_status_checked_at_idx" ON "platform_job"("status", "checked_at");

-- CreateIndex
CREATE INDEX "platform_job_sync_id_created_at_idx" ON "platform_job"("sync_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "audience_workspace_id_external_id_key" ON "audience"("workspace_id", "external_id");

-- CreateIndex
CREATE INDEX "contact_workspace_id_created_at_idx" ON "contact"("workspace_id", "created_at");

-- AddForeignKey
ALTER TABLE "audience_sync_suppression" ADD CONSTRAINT "audience_sync_suppression_sync_id_fkey" FOREIGN KEY ("sync_id") REFERENCES "audience_sync"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audience_sync_suppression" ADD CONSTRAINT "audience_sync_suppression_audience_id_fkey" FOREIGN KEY ("audience_id") REFERENCES "audience"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "task_payload" ADD CONSTRAINT "task_payload_task_id_fkey" FOREIGN KEY ("task_id") REFERENCES "task"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "platform_job" ADD CONSTRAINT "platform_job_sync_id_fkey" FOREIGN KEY ("sync_id") REFERENCES "audience_sync"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "platform_job" ADD CONSTRAINT "platform_job_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "sync_run"("id") ON DELETE SET NULL ON UPDATE CASCADE;
