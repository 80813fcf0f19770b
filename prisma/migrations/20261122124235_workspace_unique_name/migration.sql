-- CreateIndex
CREATE UNIQUE INDEX "workspace_name_key" ON "workspace"("name");
