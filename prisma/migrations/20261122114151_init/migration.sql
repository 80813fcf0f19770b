-- CreateEnum
CREATE TYPE "ApiKeyRole" AS ENUM ('READ', 'WRITE');

-- CreateEnum
CREATE TYPE "Platform" AS ENUM ('META', 'GOOGLE', 'LINKEDIN', 'X', 'WEBHOOK');

-- CreateEnum
CREATE TYPE "SyncMode" AS ENUM ('MIRROR', 'ADD', 'REMOVE', 'UPSERT');

-- CreateEnum
CREATE TYPE "SyncStatus" AS ENUM ('DRAFT', 'ACTIVE', 'PAUSED', 'ERROR');

-- CreateEnum
CREATE TYPE "SyncRunStatus" AS ENUM ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "SyncRunTrigger" AS ENUM ('MANUAL', 'SCHEDULE', 'CREATE', 'API');

-- CreateEnum
CREATE TYPE "TaskStatus" AS ENUM ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED');

-- CreateTable
CREATE TABLE "workspace" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "workspace_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_key" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "key_hash" TEXT NOT NULL,
    "role" "ApiKeyRole" NOT NULL DEFAULT 'WRITE',
    "last_used_at" TIMESTAMP(3),
    "revoked_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "api_key_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "destination" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "platform" "Platform" NOT NULL,
    "config" JSONB NOT NULL DEFAULT '{}',
    "credentials" TEXT,
    "credentials_hint" TEXT,
    "deleted_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "destination_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "contact" (
    "id" BIGSERIAL NOT NULL,
    "workspace_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "email" TEXT,
    "phone" TEXT,
    "first_name" TEXT,
    "last_name" TEXT,
    "country" TEXT,
    "zip" TEXT,
    "external_id" TEXT,
    "mobile_ad_id" TEXT,
    "attributes" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "contact_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audience" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "audience_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audience_member" (
    "audience_id" UUID NOT NULL,
    "contact_id" BIGINT NOT NULL,
    "added_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audience_member_pkey" PRIMARY KEY ("audience_id","contact_id")
);

-- CreateTable
CREATE TABLE "audience_sync" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "audience_id" UUID NOT NULL,
    "destination_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "mode" "SyncMode" NOT NULL,
    "field_mapping" JSONB NOT NULL,
    "schedule_cron" TEXT,
    "schedule_timezone" TEXT,
    "cadence_hours" INTEGER NOT NULL DEFAULT 0,
    "status" "SyncStatus" NOT NULL DEFAULT 'ACTIVE',
    "status_error" TEXT,
    "platform_audience_name" TEXT,
    "platform_audience_id" TEXT,
    "last_synced_at" TIMESTAMP(3),
    "last_synced_count" INTEGER,
    "last_run_id" UUID,
    "deleted_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "audience_sync_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "synced_member" (
    "sync_id" UUID NOT NULL,
    "contact_id" BIGINT NOT NULL,
    "identifiers" JSONB NOT NULL,
    "synced_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "synced_member_pkey" PRIMARY KEY ("sync_id","contact_id")
);

-- CreateTable
CREATE TABLE "sync_run" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "sync_id" UUID NOT NULL,
    "status" "SyncRunStatus" NOT NULL DEFAULT 'QUEUED',
    "trigger" "SyncRunTrigger" NOT NULL,
    "dry_run" BOOLEAN NOT NULL DEFAULT false,
    "phase" TEXT NOT NULL DEFAULT 'queued',
    "progress" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "members_added" INTEGER NOT NULL DEFAULT 0,
    "members_removed" INTEGER NOT NULL DEFAULT 0,
    "members_failed" INTEGER NOT NULL DEFAULT 0,
    "members_invalid" INTEGER NOT NULL DEFAULT 0,
    "total_members" INTEGER NOT NULL DEFAULT 0,
    "started_at" TIMESTAMP(3),
    "lease_expires_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),
    "error_message" TEXT,
    "error_details" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sync_run_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "task" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "status" "TaskStatus" NOT NULL DEFAULT 'QUEUED',
    "result" JSONB,
    "error" TEXT,
    "run_id" UUID,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completed_at" TIMESTAMP(3),

    CONSTRAINT "task_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "api_key_key_hash_key" ON "api_key"("key_hash");

-- CreateIndex
CREATE INDEX "api_key_workspace_id_idx" ON "api_key"("workspace_id");

-- CreateIndex
CREATE INDEX "destination_workspace_id_created_at_idx" ON "destination"("workspace_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "contact_workspace_id_key_key" ON "contact"("workspace_id", "key");

-- CreateIndex
CREATE INDEX "audience_workspace_id_created_at_idx" ON "audience"("workspace_id", "created_at");

-- CreateIndex
CREATE INDEX "audience_member_contact_id_idx" ON "audience_member"("contact_id");

-- CreateIndex
CREATE UNIQUE INDEX "audience_sync_last_run_id_key" ON "audience_sync"("last_run_id");

-- CreateIndex
CREATE INDEX "audience_sync_workspace_id_created_at_idx" ON "audience_sync"("workspace_id", "created_at");

-- CreateIndex
CREATE INDEX "audience_sync_audience_id_destination_id_idx" ON "audience_sync"("audience_id", "destination_id");

-- CreateIndex
CREATE INDEX "sync_run_sync_id_created_at_idx" ON "sync_run"("sync_id", "created_at");

-- CreateIndex
CREATE INDEX "sync_run_sync_id_status_idx" ON "sync_run"("sync_id", "status");

-- CreateIndex
CREATE INDEX "task_workspace_id_created_at_idx" ON "task"("workspace_id", "created_at");

-- CreateIndex
CREATE INDEX "task_run_id_idx" ON "task"("run_id");

-- AddForeignKey
ALTER TABLE "api_key" ADD CONSTRAINT "api_key_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "destination" ADD CONSTRAINT "destination_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "contact" ADD CONSTRAINT "contact_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audience" ADD CONSTRAINT "audience_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audience_member" ADD CONSTRAINT "audience_member_audience_id_fkey" FOREIGN KEY ("audience_id") REFERENCES "audience"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audience_member" ADD CONSTRAINT "audience_member_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contact"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audience_sync" ADD CONSTRAINT "audience_sync_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audience_sync" ADD CONSTRAINT "audience_sync_audience_id_fkey" FOREIGN KEY ("audience_id") REFERENCES "audience"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audience_sync" ADD CONSTRAINT "audience_sync_destination_id_fkey" FOREIGN KEY ("destination_id") REFERENCES "destination"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audience_sync" ADD CONSTRAINT "audience_sync_last_run_id_fkey" FOREIGN KEY ("last_run_id") REFERENCES "sync_run"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "synced_member" ADD CONSTRAINT "synced_member_sync_id_fkey" FOREIGN KEY ("sync_id") REFERENCES "audience_sync"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sync_run" ADD CONSTRAINT "sync_run_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sync_run" ADD CONSTRAINT "sync_run_sync_id_fkey" FOREIGN KEY ("sync_id") REFERENCES "audience_sync"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "task" ADD CONSTRAINT "task_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "task" ADD CONSTRAINT "task_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "sync_run"("id") ON DELETE SET NULL ON UPDATE CASCADE;
