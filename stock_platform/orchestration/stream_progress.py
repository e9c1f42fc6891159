"""The stall check's observations of the stream: its last committed batch, its committed offsets, Kafka's end offsets.

Asked only as far as needed: a stream that committed within the stall threshold
(by its heartbeat's `last_batch_ms`) costs nothing; only a quiet one costs a
ledger query, and only a stream quiet by the ledger too costs a Kafka round
trip. The committed offsets and commit time come from the `stream_batches`
ledger, so the check also works while Redis is down. The ledger query gives up
after a few seconds (`supervisor_db.tick_cursor`): a locked `stream_batches`
makes the check unavailable for a tick, it does not hang the sensor.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import psycopg2

from stock_platform.orchestration.resources import KafkaResource, PostgresResource
from stock_platform.orchestration.stall import StreamProgress, quiet_since
from stock_platform.orchestration.supervision import ActiveRun
from stock_platform.orchestration.supervisor_db import tick_cursor
from stock_platform.storage.stream_offsets import COMMITTED_OFFSETS_SQL, merge_committed_offsets

__all__ = ["LEDGER_BATCHES", "ledger_position", "read_stream_progress"]

logger = logging.getLogger(__name__)

# Batches merged for the committed position (the dashboard's lag reads as many).
LEDGER_BATCHES = 200


def _heartbeat_last_commit(heartbeat: dict[str, str] | None) -> float | None:
    """The heartbeat's `last_batch_ms` in epoch seconds, or None."""
    try:
        value = int((heartbeat or {}).get("last_batch_ms", "0"))
    except ValueError:
        return None
    return value / 1000 if value > 0 else None


def ledger_position(postgres: PostgresResource, topic: str) -> tuple[dict[int, int], float | None] | None:
    """The stream's committed offsets on `topic` and its newest batch's commit time; None when there is no ledger table."""
    with tick_cursor(postgres.dsn) as cur:
        cur.execute("SELECT to_regclass('stream_batches') IS NOT NULL")
        if not cur.fetchone()[0]:
            return None
        cur.execute(COMMITTED_OFFSETS_SQL, {"topic": topic, "batches": LEDGER_BATCHES})
        rows = cur.fetchall()
    if not rows:
        return {}, None
    newest: datetime = rows[0][1]  # naive UTC, as every platform timestamp
    return merge_committed_offsets([raw for raw, _ in rows], topic), newest.replace(tzinfo=UTC).timestamp()


def _later(a: float | None, b: float | None) -> float | None:
    return max((t for t in (a, b) if t is not None), default=None)


def read_stream_progress(
    postgres: PostgresResource, kafka: KafkaResource, run: ActiveRun, heartbeat: dict[str, str] | None,
    now: float, stall_seconds: float,
) -> StreamProgress:  # fmt: skip
    """What `stall.stall_verdict` needs to judge `run`; failures to measure become `error`, never an exception."""
    last_commit = _heartbeat_last_commit(heartbeat)
    since = quiet_since(run.started, last_commit)
    if since is None or now - since < stall_seconds:
        return StreamProgress(last_commit)
    try:
        position = ledger_position(postgres, kafka.topic)
    except psycopg2.Error as e:
        return StreamProgress(last_commit, error=f"stream_batches unreadable ({type(e).__name__})")
    if position is None:
        return StreamProgress(last_commit, error="no stream_batches table yet (database not migrated)")
    committed, ledger_commit = position
    last_commit = _later(last_commit, ledger_commit)
    since = quiet_since(run.started, last_commit)
    if since is None or now - since < stall_seconds:
        return StreamProgress(last_commit, committed)
    try:
        ends = kafka.end_offsets()
    except Exception as e:  # noqa: BLE001 - the Kafka client fails in many ways; each one only means "unknown"
        logger.warning("stall check: Kafka end offsets unavailable (%s)", type(e).__name__)
        return StreamProgress(last_commit, committed, error=f"Kafka unreachable ({type(e).__name__})")
    return StreamProgress(last_commit, committed, ends)
