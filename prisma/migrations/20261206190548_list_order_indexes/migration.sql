-- DropIndex
DROP INDEX "audience_workspace_id_created_at_idx";

-- DropIndex
DROP INDEX "audience_sync_workspace_id_created_at_idx";

-- DropIndex
DROP INDEX "destination_workspace_id_created_at_idx";

-- DropIndex
DROP INDEX "sync_run_sync_id_created_at_idx";

-- CreateIndex
CREATE INDEX "audience_workspace_id_created_at_id_idx" ON "audience"("workspace_id", "created_at", "id");

-- CreateIndex
CREATE INDEX "audience_sync_workspace_id_created_at_id_idx" ON "audience_sync"("workspace_id", "created_at", "id");

-- CreateIndex
CREATE INDEX "destination_workspace_id_created_at_id_idx" ON "destination"("workspace_id", "created_at", "id");

-- CreateIndex
CREATE INDEX "sync_run_sync_id_created_at_id_idx" ON "sync_run"("sync_id", "created_at", "id");
