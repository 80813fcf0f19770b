-- CreateTable
CREATE TABLE "audience_change" (
    "audience_id" UUID NOT NULL,
    "xid" xid8 NOT NULL DEFAULT pg_current_xact_id(),
    "contact_id" BIGINT NOT NULL,

    CONSTRAINT "audience_change_pkey" PRIMARY KEY ("audience_id","xid","contact_id")
);

-- CreateTable
CREATE TABLE "audience_change_pruned" (
    "audience_id" UUID NOT NULL,
    "below" xid8 NOT NULL,

    CONSTRAINT "audience_change_pruned_pkey" PRIMARY KEY ("audience_id")
);

-- CreateTable
CREATE TABLE "diff_basis" (
    "sync_id" UUID NOT NULL,
    "snapshot" TEXT NOT NULL,
    "basis" TEXT NOT NULL,
    "complete" BOOLEAN NOT NULL DEFAULT false,
    "synced_rows" BIGINT,

    CONSTRAINT "diff_basis_pkey" PRIMARY KEY ("sync_id")
);

-- AddForeignKey
ALTER TABLE "diff_basis" ADD CONSTRAINT "diff_basis_sync_id_fkey" FOREIGN KEY ("sync_id") REFERENCES "audience_sync"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- audience_change, audience_change_pruned and diff_basis are the engine's own: no API query reads them,
-- so they notify no change (see api_change_notifications).
--
-- Every statement that changes audience_member records the contacts it changed, in audience_change,
-- once per statement over its transition table (an import of 10,000 rows adds 10,000 rows in one
-- INSERT). The marks commit or roll back with the change, and carry its transaction's id: a diff
-- reads those its basis snapshot does not see (https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-PG-SNAPSHOT).
-- A transaction that changes a member twice records it once.
CREATE FUNCTION record_audience_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audience_change (audience_id, contact_id)
  SELECT audience_id, contact_id FROM changed_rows
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$$;

-- A trigger with a transition table has one event, and an UPDATE's old and new rows are two tables
-- (https://www.postgresql.org/docs/current/sql-createtrigger.html): an update records both.
CREATE TRIGGER audience_change_insert AFTER INSERT ON audience_member REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION record_audience_change();
CREATE TRIGGER audience_change_delete AFTER DELETE ON audience_member REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION record_audience_change();
CREATE TRIGGER audience_change_update_old AFTER UPDATE ON audience_member REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION record_audience_change();
CREATE TRIGGER audience_change_update_new AFTER UPDATE ON audience_member REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION record_audience_change();

-- A TRUNCATE has no transition table: of members, of a record, or of the changes themselves, it leaves
-- no basis standing, and every sync's next run diffs in full.
CREATE FUNCTION forget_diff_bases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM diff_basis;
  RETURN NULL;
END
$$;

CREATE TRIGGER diff_basis_truncate_members AFTER TRUNCATE ON audience_member
  FOR EACH STATEMENT EXECUTE FUNCTION forget_diff_bases();
CREATE TRIGGER diff_basis_truncate_record AFTER TRUNCATE ON synced_member
  FOR EACH STATEMENT EXECUTE FUNCTION forget_diff_bases();
CREATE TRIGGER diff_basis_truncate_changes AFTER TRUNCATE ON audience_change
  FOR EACH STATEMENT EXECUTE FUNCTION forget_diff_bases();
