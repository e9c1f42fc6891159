"""A simulated market: the embedded default source when no Finnhub key is set.

Deterministic for a seed: prices follow geometric Brownian motion with a
per-symbol volatility from realistic starting prices, trade sizes follow a
U-shaped intraday volume curve (busy at the open and the close, New York time).
Records have Finnhub's two shapes: trades (price and the trade's volume, like the
WebSocket feed) and quote snapshots (day open/high/low, previous close and the
day's running volume, like the REST feed). Event times are simulated: they
follow the wall clock when the stream is paced at 1x (see `pacing.paced`), or
run ahead of a start in the past for load tests. Per symbol, event times are
strictly increasing in milliseconds (the table is unique on symbol and time).
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from stock_platform.quotes import Quote

__all__ = ["SimulatedMarket", "new_york_day", "synthetic_symbols"]

_NEW_YORK = ZoneInfo("America/New_York")
# Starting price and annual volatility of well-known symbols, roughly as traded in 2025.
_PROFILES: dict[str, tuple[float, float]] = {
    "AAPL": (230.0, 0.25), "MSFT": (420.0, 0.22), "GOOGL": (170.0, 0.28), "AMZN": (190.0, 0.30),
    "NVDA": (130.0, 0.50), "META": (560.0, 0.35), "TSLA": (250.0, 0.60), "JPM": (220.0, 0.20),
    "NFLX": (700.0, 0.40), "AMD": (150.0, 0.50), "INTC": (22.0, 0.45), "ORCL": (170.0, 0.30),
}  # fmt: skip
# Volatility is quoted per trading year: 252 days of 6.5 hours.
_TRADING_YEAR_SECONDS = 252 * 6.5 * 3600


def synthetic_symbols(count: int) -> tuple[str, ...]:
    """`count` synthetic tickers (SYM001, SYM002, ...) for load tests with many symbols."""
    return tuple(f"SYM{i:03d}" for i in range(1, count + 1))


def new_york_day(event_time_ms: int) -> tuple[int, int]:
    """The New York trading date of this moment (as an ordinal) and the epoch ms at which that date ends.

    Day fields (open, high, low, previous close, running volume) reset at midnight in New York, as
    Finnhub's do for US stocks, not at midnight UTC (19:00 or 20:00 in New York).
    """
    local = datetime.fromtimestamp(event_time_ms / 1000, _NEW_YORK)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    next_midnight = midnight + timedelta(days=1)  # wall-clock arithmetic: right across DST changes
    return local.date().toordinal(), int(next_midnight.timestamp() * 1000)


def _volume_curve(event_time_ms: int) -> float:
    """Relative trading activity at this moment: U-shaped in the session, low outside it."""
    local = datetime.fromtimestamp(event_time_ms / 1000, _NEW_YORK)
    minutes = local.hour * 60 + local.minute - 570  # minutes since 09:30
    if local.weekday() >= 5 or not 0 <= minutes < 390:
        return 0.1
    x = minutes / 390.0
    return 0.5 + 2.0 * (2 * x - 1) ** 2  # 2.5 at the open and the close, 0.5 at midday


@dataclass
class _SymbolState:
    symbol: str
    price: float
    sigma: float
    prev_close: float
    open_price: float
    day_high: float
    day_low: float
    day_volume: int
    day: int
    last_ms: int
    events: int = 0


class SimulatedMarket:
    """An endless, seeded stream of simulated `Quote`s across `symbols`.

    `rate` is events per simulated second across all symbols. `start_ms` is the
    first event's time (default: now). `snapshot_every` makes every n-th event of
    a symbol a quote snapshot; the others are trades.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int = 42,
        rate: float = 2.0,
        *,
        start_ms: int | None = None,
        snapshot_every: int = 5,
        producer_id: str = "simulator",
    ) -> None:
        if not symbols:
            raise ValueError("the simulated market needs at least one symbol")
        if rate <= 0:
            raise ValueError("the simulated rate must be positive")
        self.symbols = tuple(symbols)
        self.rate = rate
        self.snapshot_every = max(1, snapshot_every)
        self.producer_id = producer_id
        self.start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not cryptography
        self._states = [self._initial_state(s) for s in self.symbols]
        # Busier names trade more often: weight by volatility, like real tape activity.
        total = sum(st.sigma for st in self._states)
        self._cumulative = []
        acc = 0.0
        for st in self._states:
            acc += st.sigma / total
            self._cumulative.append(acc)

    def _initial_state(self, symbol: str) -> _SymbolState:
        price, sigma = _PROFILES.get(symbol) or (round(self._rng.uniform(20, 500), 2), round(self._rng.uniform(0.15, 0.6), 2))
        prev_close = round(price * math.exp(self._rng.gauss(0, 0.01)), 2)
        day = new_york_day(self.start_ms - 1)[0]
        return _SymbolState(symbol, price, sigma, prev_close, price, price, price, 0, day, self.start_ms - 1)

    def __iter__(self) -> Iterator[Quote]:
        return self.events()

    def events(self) -> Iterator[Quote]:
        """Generate quotes forever (stop by breaking out, or wrap in `itertools.islice`)."""
        rng, states, cumulative = self._rng, self._states, self._cumulative
        step_ms = 1000.0 / self.rate
        last, seq = len(states) - 1, 0
        clock = float(self.start_ms)
        curve_ms, curve = -1, 1.0
        day, day_end_ms = new_york_day(self.start_ms)
        while True:
            clock += rng.expovariate(1.0) * step_ms
            st = states[min(bisect_left(cumulative, rng.random()), last)]
            t = max(int(clock), st.last_ms + 1)
            dt = (t - st.last_ms) / 1000.0
            st.last_ms = t
            if t - curve_ms > 60_000:  # the curve changes by the minute: recompute it rarely
                curve_ms, curve = t, _volume_curve(t)
            if t >= day_end_ms:  # converting every event's time zone would cost more than the rest of the loop
                day, day_end_ms = new_york_day(t)
            if day != st.day:
                st.day, st.prev_close, st.day_volume = day, st.price, 0
                st.open_price = st.day_high = st.day_low = st.price
            sd = st.sigma * math.sqrt(min(dt, 3600.0) / _TRADING_YEAR_SECONDS)
            st.price = max(0.01, round(st.price * math.exp(sd * rng.gauss(0.0, 1.0) - 0.5 * sd * sd), 2))
            if st.price > st.day_high:
                st.day_high = st.price
            elif st.price < st.day_low:
                st.day_low = st.price
            size = max(1, int(rng.lognormvariate(4.0, 1.0) * curve))
            st.day_volume += size
            st.events += 1
            seq += 1
            if st.events % self.snapshot_every == 0:
                yield Quote(st.symbol, st.price, t, "simulator", self.producer_id, seq, st.day_volume,
                            st.day_high, st.day_low, st.open_price, st.prev_close)  # fmt: skip
            else:
                yield Quote(st.symbol, st.price, t, "simulator", self.producer_id, seq, size)
