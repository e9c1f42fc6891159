"""What a supervisor tick reads from and writes to PostgreSQL, each bounded to seconds so a slow database cannot stall it.

A tick writes its decision (`supervisor_decisions`, sql/014) for the health
page, which shows that decision rather than a rule of its own, and a
`run_failures` row for each run it stops: such a run ends as cancelled, which
`record_run_failures` never sees. Both writes are best effort: the supervisors
must keep the pipeline running while PostgreSQL is down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from stock_platform.orchestration.supervision import Decision
from stock_platform.storage.postgres import connect

__all__ = ["TICK_TIMEOUT_SECONDS", "record_decision", "record_stopped_run", "tick_cursor"]

logger = logging.getLogger(__name__)

# Connecting and each statement give up after this: a sensor tick has about a minute for everything it does.
TICK_TIMEOUT_SECONDS = 3

_DECISION_SQL = """
INSERT INTO supervisor_decisions (component, decided_at, action, failures, last_error, next_launch_at, reason)
VALUES (%(component)s, now() AT TIME ZONE 'UTC', %(action)s, %(failures)s, %(last_error)s,
        CASE WHEN %(wait_s)s > 0 THEN now() AT TIME ZONE 'UTC' + %(wait_s)s * interval '1 second' END, %(reason)s)
ON CONFLICT (component) DO UPDATE SET
    decided_at = EXCLUDED.decided_at, action = EXCLUDED.action, failures = EXCLUDED.failures,
    last_error = EXCLUDED.last_error, next_launch_at = EXCLUDED.next_launch_at, reason = EXCLUDED.reason
"""

_STOPPED_SQL = """
INSERT INTO run_failures (run_id, job_name, component, error) VALUES (%s, %s, %s, %s)
ON CONFLICT (run_id) DO NOTHING
"""


@contextmanager
def tick_cursor(dsn: str) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor in one transaction (committed on success) whose connect and statements time out after a few seconds.

    `SET LOCAL` rather than a connection option, so it also holds behind a pooler that drops startup options.
    """
    conn = connect(dsn, "stock-platform-supervisor", TICK_TIMEOUT_SECONDS)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET LOCAL statement_timeout = %s", (f"{TICK_TIMEOUT_SECONDS}s",))
            yield cur
    finally:
        conn.close()


def _write(dsn: str, what: str, statement: str, params: object) -> bool:
    """Run one write; False (logged) when it failed.

    A database without the table is not migrated from here: a migration can wait long on its lock (a table
    rewrite), far past a sensor tick's time limit. `platform up` and every job migrate before they start.
    """
    try:
        with tick_cursor(dsn) as cur:
            cur.execute(statement, params)
        return True
    except psycopg2.errors.UndefinedTable:
        logger.warning("supervisor: %s not recorded: the database is not migrated yet", what)
    except psycopg2.Error as e:
        logger.warning("supervisor: %s not recorded: PostgreSQL unavailable (%s)", what, type(e).__name__)
    return False


def record_decision(dsn: str, component: str, decision: Decision) -> bool:
    """Upsert `component`'s newest decision; the health page reads it (True when written)."""
    params = {
        "component": component, "action": decision.action, "failures": decision.failures,
        "last_error": decision.last_error, "wait_s": decision.wait_s, "reason": decision.reason[:4000],
    }  # fmt: skip
    return _write(dsn, f"{component} decision", _DECISION_SQL, params)


def record_stopped_run(dsn: str, run_id: str, job_name: str, component: str, reason: str) -> bool:
    """A `run_failures` row for a run the supervisor stops, saying why; a later row for the same run is not added."""
    error = f"stopped by its supervisor: {reason}"[:4000]
    return _write(dsn, f"stopped run {run_id}", _STOPPED_SQL, (run_id, job_name, component, error))
