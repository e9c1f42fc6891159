"""The day's running traded volume per symbol, from WebSocket trades, to fill REST quotes' volume.

Finnhub's `/quote` has no volume; its trade stream does. The trading day is
the New York calendar day of the trade, so the count resets at midnight there.
"""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["DayVolume"]

_NEW_YORK = ZoneInfo("America/New_York")


def _trading_day(event_time_ms: int) -> str:
    return datetime.fromtimestamp(event_time_ms / 1000, _NEW_YORK).date().isoformat()


class DayVolume:
    """Thread-safe running volume per symbol for the current New York day."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, tuple[str, int]] = {}

    def add(self, symbol: str, event_time_ms: int, volume: int) -> None:
        """Count a trade's volume (a trade from a later day starts a new total)."""
        day = _trading_day(event_time_ms)
        with self._lock:
            seen_day, total = self._totals.get(symbol, (day, 0))
            if day > seen_day:
                total = 0
            elif day < seen_day:
                return  # a late trade of yesterday does not belong to today's total
            self._totals[symbol] = (day, total + volume)

    def get(self, symbol: str, event_time_ms: int) -> int | None:
        """The running volume of `symbol` on the day of `event_time_ms`, or None if no trade was seen."""
        with self._lock:
            found = self._totals.get(symbol)
        if found is None or found[0] != _trading_day(event_time_ms):
            return None
        return found[1]
