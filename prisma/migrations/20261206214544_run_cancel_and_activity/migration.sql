-- AlterTable
ALTER TABLE "sync_run" ADD COLUMN     "activity" TEXT,
ADD COLUMN     "cancel_requested_at" TIMESTAMP(3),
ADD COLUMN     "cancelled_by_id" UUID,
ADD COLUMN     "cancelled_by_name" TEXT;

-- AddForeignKey
ALTER TABLE "sync_run" ADD CONSTRAINT "sync_run_cancelled_by_id_fkey" FOREIGN KEY ("cancelled_by_id") REFERENCES "api_key"("id") ON DELETE SET NULL ON UPDATE CASCADE;
