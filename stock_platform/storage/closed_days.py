"""Compacted (symbol, day)s: days whose raw ticks compaction removed, so their candles and bars are final.

Compaction removes a day's verified raw ticks and marks the day's bars
(`stock_daily_bars.ticks_removed_at`, sql/012) in one transaction. From then on
`ON CONFLICT (symbol, event_time)` can no longer recognise a replayed tick of
that day, so the stream job asks here first and refuses such ticks (dead letter
kind `closed_day`) instead of adding them to the candles a second time.

The two sides agree through a transaction-scoped advisory lock per day:
compaction takes it exclusively while it closes a day, a writer takes it shared
before it looks. A tick is either refused, or committed before compaction gets
the lock; compaction then sees it among the day's ticks, which no longer match
the verified bar, and leaves that symbol's day open for the next run to rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from psycopg2.extensions import cursor as PgCursor  # noqa: N812 - psycopg2's own class name

__all__ = ["CLOSED_DAY_LOCK", "DAY_MS", "closed_symbol_days", "day_number", "day_of_ms", "lock_day_for_closing"]

# An arbitrary constant: the first key of the per-day advisory locks (the second is the day's number).
CLOSED_DAY_LOCK = 7_461_012
_EPOCH = date(1970, 1, 1)
DAY_MS = 86_400_000

_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(%s, d) FROM unnest(%s::int[]) AS d ORDER BY d"
_CLOSED = """
SELECT symbol, day FROM stock_daily_bars
WHERE ticks_removed_at IS NOT NULL AND day = ANY(%s::date[])
"""


def day_number(event_time_ms: int) -> int:
    """The UTC day of an epoch-millisecond event time as days since 1970-01-01 (cheap: one per tick)."""
    return event_time_ms // DAY_MS


def day_of_ms(event_time_ms: int) -> date:
    """The UTC day of an epoch-millisecond event time (the day its tick belongs to)."""
    return datetime.fromtimestamp(event_time_ms // DAY_MS * 86_400, UTC).date()


def closed_symbol_days(cur: PgCursor, day_numbers: Iterable[int]) -> set[tuple[str, int]]:
    """The closed (symbol, day number)s among days `day_numbers` (days since 1970-01-01, as `event_time_ms // 86_400_000`).

    Holds each day's shared lock until the transaction ends, so none of them closes before this writer commits.
    """
    wanted = sorted(set(day_numbers))
    if not wanted:
        return set()
    cur.execute(_LOCK_SHARED, (CLOSED_DAY_LOCK, wanted))
    # A statement of its own, after the lock is granted: in READ COMMITTED its snapshot then includes a closing
    # that committed while this writer waited (one statement would read with the snapshot from before the wait).
    cur.execute(_CLOSED, ([_EPOCH + timedelta(days=n) for n in wanted],))
    return {(symbol, (day - _EPOCH).days) for symbol, day in cur.fetchall()}


def lock_day_for_closing(cur: PgCursor, day: date) -> None:
    """Compaction's side: wait for writers that looked at `day` to commit, and keep new ones waiting until commit."""
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (CLOSED_DAY_LOCK, (day - _EPOCH).days))
