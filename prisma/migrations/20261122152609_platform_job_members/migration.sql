-- AlterEnum
ALTER TYPE "PlatformJobStatus" ADD VALUE 'PENDING';

-- CreateTable
CREATE TABLE "platform_job_member" (
    "job_id" UUID NOT NULL,
    "contact_id" BIGINT NOT NULL,
    "identifiers" JSONB,

    CONSTRAINT "platform_job_member_pkey" PRIMARY KEY ("job_id","contact_id")
);

-- AddForeignKey
ALTER TABLE "platform_job_member" ADD CONSTRAINT "platform_job_member_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "platform_job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AlterTable: the members of jobs still running move to platform_job_member (finished jobs keep none).
ALTER TABLE "platform_job" ADD COLUMN     "member_count" INTEGER NOT NULL DEFAULT 0;

INSERT INTO "platform_job_member" ("job_id", "contact_id", "identifiers")
SELECT j."id", (m->>'contactId')::bigint, CASE WHEN j."action" = 'REMOVE' THEN m->'identifiers' END
FROM "platform_job" j, jsonb_array_elements(j."members") m
WHERE j."status" = 'RUNNING'
ON CONFLICT DO NOTHING;

UPDATE "platform_job" SET "member_count" = jsonb_array_length("members");

ALTER TABLE "platform_job" DROP COLUMN "members";

-- CreateIndex
CREATE UNIQUE INDEX "platform_job_sync_id_resource_name_key" ON "platform_job"("sync_id", "resource_name");
