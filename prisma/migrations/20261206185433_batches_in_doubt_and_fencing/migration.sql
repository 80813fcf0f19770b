-- AlterTable
ALTER TABLE "sync_run" ADD COLUMN     "lease_generation" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "synced_member" ADD COLUMN     "batch_id" BIGINT;

-- AlterTable
ALTER TABLE "task" ADD COLUMN     "lease_generation" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "batch_in_doubt" (
    "id" BIGSERIAL NOT NULL,
    "sync_id" UUID NOT NULL,
    "run_id" UUID,
    "action" TEXT NOT NULL,
    "first_contact_id" BIGINT NOT NULL,
    "last_contact_id" BIGINT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "batch_in_doubt_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "batch_in_doubt_sync_id_idx" ON "batch_in_doubt"("sync_id");

-- CreateIndex
CREATE INDEX "batch_in_doubt_run_id_idx" ON "batch_in_doubt"("run_id");

-- AddForeignKey
ALTER TABLE "batch_in_doubt" ADD CONSTRAINT "batch_in_doubt_sync_id_fkey" FOREIGN KEY ("sync_id") REFERENCES "audience_sync"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "batch_in_doubt" ADD CONSTRAINT "batch_in_doubt_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "sync_run"("id") ON DELETE SET NULL ON UPDATE CASCADE;
