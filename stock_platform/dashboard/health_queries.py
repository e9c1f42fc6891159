"""PostgreSQL reads behind the pipeline-health page: freshness, throughput, offsets, dead letters, failed runs, supervisors.

The newest tick per symbol uses a loose index scan (a recursive walk of
`idx_symbol_time`, one probe per symbol) instead of `GROUP BY symbol`, which
would read every row of a table with millions of ticks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from stock_platform.dashboard.cache import ttl_cache
from stock_platform.dashboard.connections import pg_cursor
from stock_platform.dashboard.run_health import SupervisorDecision
from stock_platform.storage.stream_offsets import COMMITTED_OFFSETS_SQL, merge_committed_offsets, parse_offsets

__all__ = [
    "DeadLetterSummary",
    "committed_offsets",
    "dead_letter_summary",
    "last_event_per_symbol",
    "parse_offsets",
    "recent_run_failures",
    "rows_per_minute",
    "supervisor_decisions",
]

logger = logging.getLogger(__name__)

CACHE_SECONDS = 2.0

_LAST_EVENT_SQL = """
WITH RECURSIVE syms AS (
    (SELECT symbol FROM stock_prices ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT p.symbol FROM stock_prices p WHERE p.symbol > syms.symbol ORDER BY p.symbol LIMIT 1)
    FROM syms WHERE syms.symbol IS NOT NULL
)
SELECT l.symbol, l.event_time, l.ingestion_time, l.price::float8,
       extract(epoch FROM (now() AT TIME ZONE 'UTC') - l.event_time)::float8 AS age_s
FROM syms
CROSS JOIN LATERAL (
    SELECT p.symbol, p.event_time, p.ingestion_time, p.price FROM stock_prices p
    WHERE p.symbol = syms.symbol ORDER BY p.event_time DESC LIMIT 1
) AS l
WHERE syms.symbol IS NOT NULL
ORDER BY l.symbol
"""

# Rows the stream job inserted per minute, from its own per-batch log (indexed on committed_at).
_ROWS_PER_MINUTE_SQL = """
SELECT date_trunc('minute', committed_at) AS minute, sum(inserted)::bigint AS inserted,
       sum(duplicates)::bigint AS duplicates, sum(dead_letters)::bigint AS dead_letters
FROM stream_batches
WHERE committed_at >= (now() AT TIME ZONE 'UTC') - %(window)s::interval
GROUP BY 1 ORDER BY 1
"""

_DEAD_BY_KIND_SQL = """
SELECT kind, count(*) FILTER (WHERE received_at >= (now() AT TIME ZONE 'UTC') - interval '1 hour'), count(*)
FROM dead_letters GROUP BY kind
"""

_DEAD_LATEST_SQL = """
SELECT received_at, kind, reason, kafka_partition, kafka_offset, message_key, topic
FROM dead_letters ORDER BY received_at DESC, id DESC LIMIT %(limit)s
"""

# The newest failures of each supervised component (run_failures is small: one row per failed run).
_RUN_FAILURES_SQL = """
SELECT component, age_s, error FROM (
    SELECT component, error,
           extract(epoch FROM (now() AT TIME ZONE 'UTC') - failed_at)::float8 AS age_s,
           row_number() OVER (PARTITION BY component ORDER BY failed_at DESC) AS n
    FROM run_failures WHERE component = ANY(%(components)s)
) AS f
WHERE n <= %(limit)s ORDER BY component, age_s
"""

# Each supervisor's newest decision; ages by the database's clock, which also stamped the decision.
_DECISIONS_SQL = """
SELECT component, action, failures,
       coalesce(extract(epoch FROM next_launch_at - (now() AT TIME ZONE 'UTC')), 0)::float8 AS wait_s,
       extract(epoch FROM (now() AT TIME ZONE 'UTC') - decided_at)::float8 AS age_s,
       reason, last_error
FROM supervisor_decisions WHERE component = ANY(%(components)s)
"""


@dataclass(frozen=True)
class DeadLetterSummary:
    """Dead letters per kind as (last hour, total), and the newest ones with their kind and reason."""

    by_kind: dict[str, tuple[int, int]]
    latest: pd.DataFrame

    @property
    def total(self) -> int:
        """All dead letters."""
        return sum(total for _, total in self.by_kind.values())

    @property
    def last_hour(self) -> int:
        """Dead letters received in the last hour."""
        return sum(hour for hour, _ in self.by_kind.values())


@ttl_cache(CACHE_SECONDS)
def last_event_per_symbol(dsn: str) -> pd.DataFrame:
    """Each symbol's newest tick time, when it was ingested, its price, and its age in seconds."""
    with pg_cursor(dsn) as cur:
        cur.execute(_LAST_EVENT_SQL)
        rows = cur.fetchall()
    return pd.DataFrame.from_records(rows, columns=["symbol", "event_time", "ingestion_time", "price", "age_s"])


@ttl_cache(CACHE_SECONDS)
def rows_per_minute(dsn: str, minutes: int = 30) -> pd.DataFrame:
    """Rows inserted, duplicates and dead letters per minute over the last `minutes`, from `stream_batches`."""
    with pg_cursor(dsn) as cur:
        cur.execute(_ROWS_PER_MINUTE_SQL, {"window": f"{int(minutes)} minutes"})
        rows = cur.fetchall()
    return pd.DataFrame.from_records(rows, columns=["minute", "inserted", "duplicates", "dead_letters"])


@ttl_cache(CACHE_SECONDS)
def committed_offsets(dsn: str, topic: str, batches: int = 200) -> tuple[dict[int, int], Any]:
    """Partition -> next offset the stream job committed on `topic` (over its last `batches`), and when (None if never)."""
    with pg_cursor(dsn) as cur:
        cur.execute(COMMITTED_OFFSETS_SQL, {"topic": topic, "batches": batches})
        rows = cur.fetchall()
    if not rows:
        return {}, None
    return merge_committed_offsets([raw for raw, _ in rows], topic), rows[0][1]


@ttl_cache(CACHE_SECONDS)
def dead_letter_summary(dsn: str, limit: int = 10) -> DeadLetterSummary:
    """Dead letters per kind in the last hour and in total, and the newest `limit` with their kinds and reasons."""
    with pg_cursor(dsn) as cur:
        cur.execute(_DEAD_BY_KIND_SQL)
        by_kind = {kind: (int(hour), int(total)) for kind, hour, total in cur.fetchall()}
        cur.execute(_DEAD_LATEST_SQL, {"limit": limit})
        rows = cur.fetchall()
    columns = ["received_at", "kind", "reason", "partition", "offset", "key", "topic"]
    return DeadLetterSummary(by_kind, pd.DataFrame.from_records(rows, columns=columns))


@ttl_cache(CACHE_SECONDS)
def recent_run_failures(dsn: str, components: tuple[str, ...], limit: int = 20) -> dict[str, list[tuple[float, str]]]:
    """Each component's newest `limit` failed runs as (age in seconds, error), newest first, from `run_failures`."""
    with pg_cursor(dsn) as cur:
        cur.execute(_RUN_FAILURES_SQL, {"components": list(components), "limit": limit})
        rows = cur.fetchall()
    out: dict[str, list[tuple[float, str]]] = {c: [] for c in components}
    for component, age_s, error in rows:
        out[component].append((float(age_s), error))
    return out


@ttl_cache(CACHE_SECONDS)
def supervisor_decisions(dsn: str, components: tuple[str, ...]) -> dict[str, SupervisorDecision]:
    """Each component's newest supervisor decision; a component whose supervisor never stored one is left out.

    A database not yet migrated to sql/014 has no decisions rather than an error: failed runs still show.
    """
    with pg_cursor(dsn) as cur:
        cur.execute("SELECT to_regclass('supervisor_decisions') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute(_DECISIONS_SQL, {"components": list(components)})
        rows = cur.fetchall()
    return {
        component: SupervisorDecision(action, int(failures), float(wait_s), float(age_s), reason, last_error)
        for component, action, failures, wait_s, age_s, reason, last_error in rows
    }
