-- 0005_error_group_workflow: what the error-group workflow of the query API needs (docs/query.md,
-- "Error groups").
--   * error_groups gets the resolution and regression columns. None of them is indexed, and the
--     storage role's upsert does not write them, so its updates stay HOT (0003). The status flip of
--     a regression (resolved -> unresolved) changes an indexed column, but it happens once per
--     regression, not once per batch.
--   * The list's sorts (last_seen, first_seen, occurrence_count) get no index on purpose: last_seen
--     and occurrence_count change on every batch carrying the group, and an index on them would make
--     every such update non-HOT again. A list sorts one project's groups, found through
--     idx_error_groups_status / idx_error_groups_fingerprint.
--   * idx_logs_fingerprint: a partial btree on the exception logs (those carrying a fingerprint) by
--     (project_id, error_fingerprint, timestamp). The hourly counts of a group (sparklines, detail)
--     and a group's latest log are range scans of it; without it they read every log of the
--     project's last 24 hours. Only fingerprinted rows pay for it on the ingest path. Created on the
--     parent, so every existing leaf gets it now (on a large logs table this takes a while, and
--     writes to logs wait for it: run the migration when storage may pause) and every leaf created
--     later inherits it.

ALTER TABLE error_groups
    ADD COLUMN resolved_at TIMESTAMPTZ,
    ADD COLUMN resolved_in_release VARCHAR(100),
    ADD COLUMN is_regression BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN regressed_at TIMESTAMPTZ;

CREATE INDEX idx_logs_fingerprint ON logs (project_id, error_fingerprint, "timestamp")
    WHERE error_fingerprint IS NOT NULL;
