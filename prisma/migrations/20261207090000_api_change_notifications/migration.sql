-- Every committed change to a table the API reads notifies the gateways on channel `api_change`, with
-- the id of each workspace it touched as the payload ('' after a TRUNCATE: every workspace). A gateway
-- drops its cached answers of those workspaces (src/gateway/response-cache.ts). PostgreSQL delivers a
-- notification only once its transaction has committed, and a rolled-back one never:
-- https://www.postgresql.org/docs/current/sql-notify.html
-- The triggers run once per statement, over its transition table: a statement of 10,000 rows sends one
-- notification per workspace, not 10,000. Not here: the engine's own tables (synced_member, run_diff,
-- batch_in_doubt, platform_job_member, task_payload), which no query reads.
CREATE FUNCTION notify_api_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- TG_ARGV[0] names how a row finds its workspace. PL/pgSQL plans each branch on first use, per table.
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('api_change', '');
  ELSIF TG_ARGV[0] = 'workspace_id' THEN
    PERFORM pg_notify('api_change', workspace_id::text) FROM (SELECT DISTINCT workspace_id FROM changed_rows) AS touched;
  ELSIF TG_ARGV[0] = 'id' THEN
    PERFORM pg_notify('api_change', id::text) FROM changed_rows;
  ELSIF TG_ARGV[0] = 'audience_id' THEN
    PERFORM pg_notify('api_change', workspace_id::text)
    FROM (SELECT DISTINCT workspace_id FROM audience WHERE id IN (SELECT audience_id FROM changed_rows)) AS touched;
  ELSIF TG_ARGV[0] = 'sync_id' THEN
    PERFORM pg_notify('api_change', workspace_id::text)
    FROM (SELECT DISTINCT workspace_id FROM audience_sync WHERE id IN (SELECT sync_id FROM changed_rows)) AS touched;
  ELSE
    RAISE EXCEPTION 'notify_api_change: unknown workspace column %', TG_ARGV[0];
  END IF;
  RETURN NULL;
END
$$;

DO $$
DECLARE
  watched CONSTANT text[][] := ARRAY[
    ARRAY['workspace', 'id'],
    ARRAY['api_key', 'workspace_id'],
    ARRAY['destination', 'workspace_id'],
    ARRAY['contact', 'workspace_id'],
    ARRAY['audience', 'workspace_id'],
    ARRAY['audience_member', 'audience_id'],
    ARRAY['audience_sync', 'workspace_id'],
    ARRAY['audience_sync_suppression', 'sync_id'],
    ARRAY['sync_run', 'workspace_id'],
    ARRAY['task', 'workspace_id'],
    ARRAY['platform_job', 'sync_id']
  ];
  entry text[];
BEGIN
  FOREACH entry SLICE 1 IN ARRAY watched LOOP
    -- A trigger with a transition table has one event (https://www.postgresql.org/docs/current/sql-createtrigger.html).
    EXECUTE format('CREATE TRIGGER api_change_insert AFTER INSERT ON %I REFERENCING NEW TABLE AS changed_rows '
      'FOR EACH STATEMENT EXECUTE FUNCTION notify_api_change(%L)', entry[1], entry[2]);
    EXECUTE format('CREATE TRIGGER api_change_update AFTER UPDATE ON %I REFERENCING NEW TABLE AS changed_rows '
      'FOR EACH STATEMENT EXECUTE FUNCTION notify_api_change(%L)', entry[1], entry[2]);
    EXECUTE format('CREATE TRIGGER api_change_delete AFTER DELETE ON %I REFERENCING OLD TABLE AS changed_rows '
      'FOR EACH STATEMENT EXECUTE FUNCTION notify_api_change(%L)', entry[1], entry[2]);
    EXECUTE format('CREATE TRIGGER api_change_truncate AFTER TRUNCATE ON %I '
      'FOR EACH STATEMENT EXECUTE FUNCTION notify_api_change(%L)', entry[1], entry[2]);
  END LOOP;
END
$$;
