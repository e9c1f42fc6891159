"""The market overview's data: one tile per watched symbol, from Redis first and PostgreSQL second.

Redis holds the last five minutes; when it has nothing for a symbol (the
stream job is stopped, the TTL ran out, Redis is down) the tile is built from
the newest rows in PostgreSQL instead and says so. Only when both are
unreachable does loading fail, with `DataUnavailable`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pandas as pd

from stock_platform.config import Settings
from stock_platform.dashboard import queries
from stock_platform.dashboard.connections import DataUnavailable
from stock_platform.dashboard.hot import HotQuote, hot_quotes

__all__ = ["Tile", "Watchlist", "load_watchlist"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tile:
    """What one watchlist tile shows; `source` is "redis", "postgres" or "" when there is no data at all."""

    symbol: str
    price: float | None = None
    prev_close: float | None = None
    last_tick: datetime | None = None  # naive UTC, like the database
    points: list[tuple[datetime, float]] = field(default_factory=list)
    source: str = ""

    @property
    def change(self) -> float | None:
        """Price minus the previous close, when both are known."""
        if self.price is None or not self.prev_close:
            return None
        return self.price - self.prev_close

    @property
    def change_pct(self) -> float | None:
        """The change in percent of the previous close."""
        change = self.change
        return None if change is None or not self.prev_close else 100.0 * change / self.prev_close


@dataclass(frozen=True)
class Watchlist:
    """The tiles in watchlist order, and warnings to show above them (a service that is down)."""

    tiles: list[Tile]
    warnings: list[str]

    @property
    def empty(self) -> bool:
        """True when no tile has a price."""
        return all(t.price is None for t in self.tiles)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


def _hot_tile(quote: HotQuote) -> Tile:
    return Tile(
        symbol=quote.symbol,
        price=quote.price,
        prev_close=quote.prev_close,
        last_tick=_from_ms(quote.event_time_ms),
        points=[(_from_ms(t), p) for t, p in quote.points],
        source="redis",
    )


def _cold_tiles(settings: Settings, symbols: tuple[str, ...]) -> dict[str, Tile]:
    latest = queries.latest_quotes(settings.postgres_dsn, symbols)
    if latest.empty:
        return {}
    ticks = queries.recent_ticks(settings.postgres_dsn, tuple(latest["symbol"]))
    tiles: dict[str, Tile] = {}
    for row in latest.to_dict("records"):
        symbol = str(row["symbol"])
        mine = ticks[ticks["symbol"] == symbol]
        tiles[symbol] = Tile(
            symbol=symbol,
            price=float(row["price"]),
            prev_close=None if pd.isna(row["prev_close"]) else float(row["prev_close"]),
            last_tick=pd.Timestamp(row["event_time"]).to_pydatetime(),
            points=list(zip(mine["event_time"], mine["price"], strict=True)),
            source="postgres",
        )
    return tiles


def load_watchlist(settings: Settings, symbols: tuple[str, ...]) -> Watchlist:
    """Build the tiles of `symbols`: Redis for those it has, PostgreSQL for the rest."""
    warnings: list[str] = []
    hot: dict[str, HotQuote] = {}
    redis_error: DataUnavailable | None = None
    try:
        hot = hot_quotes(settings.redis_url, settings.redis_key_prefix, symbols)
    except DataUnavailable as e:
        redis_error = e
        warnings.append(f"Redis is unavailable ({e.message}); prices come from PostgreSQL and may be a little older.")
    missing = tuple(s for s in symbols if s not in hot)
    cold: dict[str, Tile] = {}
    if missing:
        try:
            cold = _cold_tiles(settings, missing)
        except DataUnavailable as e:
            if redis_error is not None:
                raise DataUnavailable("PostgreSQL and Redis", f"{redis_error.message}; {e.message}") from e
            if e.not_set_up:
                warnings.append(
                    f"PostgreSQL is not set up yet ({e.message}): `stock-platform migrate` (or `make up`) creates the "
                    "tables; symbols without hot data show no price."
                )
            else:
                warnings.append(f"PostgreSQL is unavailable ({e.message}); symbols without hot data show no price.")
    tiles = []
    for symbol in symbols:
        if symbol in hot:
            tiles.append(_hot_tile(hot[symbol]))
        else:
            tiles.append(cold.get(symbol, Tile(symbol=symbol)))
    return Watchlist(tiles=_with_previous_closes(settings, tiles), warnings=warnings)


def _with_previous_closes(settings: Settings, tiles: list[Tile]) -> list[Tile]:
    """Fill a missing previous close from yesterday's last candle (quotes from the simulator carry none)."""
    missing = tuple(t.symbol for t in tiles if t.price is not None and not t.prev_close)
    if not missing:
        return tiles
    try:
        closes = queries.previous_closes(settings.postgres_dsn, missing)
    except DataUnavailable:
        return tiles  # already reported, or Redis alone is serving: the tile shows no change
    return [replace(t, prev_close=closes[t.symbol]) if t.symbol in closes and not t.prev_close else t for t in tiles]
