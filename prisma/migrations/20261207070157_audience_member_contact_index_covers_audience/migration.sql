-- DropIndex
DROP INDEX "audience_member_contact_id_idx";

-- CreateIndex
CREATE INDEX "audience_member_contact_id_audience_id_idx" ON "audience_member"("contact_id", "audience_id");
