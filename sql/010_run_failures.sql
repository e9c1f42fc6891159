-- Failed Dagster runs, recorded by the `record_run_failures` sensor: a history that outlives Dagster's own storage
-- and that the dashboard or an operator can query beside the data.
CREATE TABLE run_failures (
    run_id TEXT PRIMARY KEY,
    job_name TEXT NOT NULL,
    component TEXT,
    error TEXT NOT NULL,
    failed_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX idx_run_failures_failed_at ON run_failures (failed_at DESC);
