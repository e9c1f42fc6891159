-- Each supervisor's newest decision, written on every tick by the supervisor sensor (orchestration/sensors.py), so the
-- health page shows what the supervisor decided (launch, keep, or back off with its wait) instead of working it out
-- again from run_failures, which holds failures only. Times are the database's clock, naive UTC as everywhere.
CREATE TABLE supervisor_decisions (
    component TEXT PRIMARY KEY,
    decided_at TIMESTAMP NOT NULL,
    action TEXT NOT NULL CONSTRAINT supervisor_decisions_action_check CHECK (action IN ('launch', 'keep', 'backoff')),
    -- Failures in a row the decision weighed (runs the supervisor stopped count too), and the newest one's error.
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    -- When a held-back launch is due ('backoff' only).
    next_launch_at TIMESTAMP,
    reason TEXT NOT NULL
);
