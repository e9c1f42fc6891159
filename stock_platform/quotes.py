"""The message contract: one quote or trade as it travels on the `stock-quotes` topic.

Producer, stream job and tests all use this module, so a record that the
producer accepts is exactly a record that the stream job accepts. Validation
raises `QuoteError` whose message names the field and the rule broken: that
message is what lands in the dead-letter table.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "MAX_MESSAGE_BYTES",
    "SCHEMA_VERSION",
    "SOURCES",
    "Quote",
    "QuoteError",
    "parse_quote",
    "quote_from_fields",
]

SCHEMA_VERSION = 1
SOURCES = frozenset({"finnhub-rest", "finnhub-ws", "simulator", "replay"})
MAX_MESSAGE_BYTES = 4096
# DECIMAL(10, 2) in the seed's table holds 0.01 to 99,999,999.99: a smaller price would be stored as 0.00.
MIN_PRICE = 0.01
MAX_PRICE = 99_999_999.99
# 1990-01-01T00:00:00Z: nothing older is a plausible quote for this platform.
MIN_EVENT_TIME_MS = 631_152_000_000
MAX_FUTURE_SKEW_MS = 60 * 60 * 1000
# Whole numbers land in BIGINT columns.
MAX_BIGINT = 2**63 - 1
# A hundred billion shares: far above any real volume, low enough that a day's bar cannot overflow its BIGINT
# volume even if every millisecond of the day had a trade this big (86,400,000 x 10^11 < 2^63).
MAX_VOLUME = 10**11
# Finnhub symbols: letters, digits and . - : ^ (BRK.B, ^GSPC); the seed's column is VARCHAR(10).
_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-:^]{0,9}$")
_CENT = Decimal("0.01")
_FIELDS = (
    "v", "symbol", "price", "volume", "day_high", "day_low", "open_price",
    "prev_close", "event_time_ms", "source", "producer_id", "seq",
)  # fmt: skip


class QuoteError(ValueError):
    """A record that breaks the contract; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Quote:
    """One validated quote (REST snapshot) or trade (WebSocket) of one symbol."""

    symbol: str
    price: float
    event_time_ms: int
    source: str
    producer_id: str
    seq: int
    volume: int | None = None
    day_high: float | None = None
    day_low: float | None = None
    open_price: float | None = None
    prev_close: float | None = None
    v: int = SCHEMA_VERSION

    @property
    def key(self) -> bytes:
        """The Kafka key: the symbol, so one symbol always lands in one partition, in order."""
        return self.symbol.encode()

    def market_data(self) -> tuple[object, ...]:
        """What the quote says about the market, as the table stores it (prices in cents).

        Two records with the same (symbol, event time) and equal market data are one
        fact sent twice (a replay, two producers polling one snapshot): the copy is a
        duplicate. Different market data is a conflict, kept as a dead letter. The
        sink's SQL compares the same columns (`pg_sink`).
        """
        return (
            _cents(self.price), self.volume, _cents(self.day_high), _cents(self.day_low), _cents(self.open_price),
            _cents(self.prev_close),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON object sent on the wire."""
        return asdict(self)

    def to_json(self) -> bytes:
        """The record serialised for Kafka: compact UTF-8 JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


def _cents(value: float | None) -> Decimal | None:
    """A price as DECIMAL(10, 2) stores it: PostgreSQL rounds the text form half away from zero."""
    return None if value is None else Decimal(repr(value)).quantize(_CENT, ROUND_HALF_UP)


def _number(data: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = data.get(name)
    if value is None:
        if required:
            raise QuoteError(f"missing field {name!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise QuoteError(f"field {name!r} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise QuoteError(f"field {name!r} must be finite, got {value!r}")
    return float(value)


def _price(data: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = _number(data, name, required=required)
    if value is not None and not MIN_PRICE <= value <= MAX_PRICE:
        raise QuoteError(f"field {name!r} must be between {MIN_PRICE} and {MAX_PRICE}, got {value!r}")
    return value


def _integer(data: dict[str, Any], name: str, *, required: bool, maximum: int = MAX_BIGINT) -> int | None:
    value = data.get(name)
    if value is None:
        if required:
            raise QuoteError(f"missing field {name!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise QuoteError(f"field {name!r} must be a whole number, got {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise QuoteError(f"field {name!r} must be between 0 and {maximum}, got {value}")
    return value


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        raise QuoteError(f"missing field {name!r}")
    if not isinstance(value, str):
        raise QuoteError(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def quote_from_fields(data: dict[str, Any], *, now_ms: int | None = None) -> Quote:
    """Validate a decoded JSON object against the contract and build the `Quote`."""
    if not isinstance(data, dict):
        raise QuoteError(f"record must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise QuoteError(f"unknown field(s) {', '.join(map(repr, unknown))}")
    version = _integer(data, "v", required=True)
    if version != SCHEMA_VERSION:
        raise QuoteError(f"unsupported schema version {version} (this build reads {SCHEMA_VERSION})")
    symbol = _text(data, "symbol")
    if not _SYMBOL_RE.match(symbol):
        raise QuoteError(f"field 'symbol' must be 1-10 of A-Z 0-9 . - : ^ starting with a letter or digit, got {symbol!r}")
    source = _text(data, "source")
    if source not in SOURCES:
        raise QuoteError(f"field 'source' must be one of {', '.join(sorted(SOURCES))}, got {source!r}")
    producer_id = _text(data, "producer_id")
    if not 0 < len(producer_id) <= 64:
        raise QuoteError("field 'producer_id' must be 1-64 characters")
    if not producer_id.isprintable():
        # Control characters, NUL and lone surrogates: PostgreSQL cannot store the last two, and none is a name.
        raise QuoteError(f"field 'producer_id' must be printable characters, got {producer_id!r}")
    event_time_ms = _integer(data, "event_time_ms", required=True)
    assert event_time_ms is not None  # noqa: S101 - required=True guarantees it
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if event_time_ms < MIN_EVENT_TIME_MS:
        raise QuoteError(f"field 'event_time_ms' is before 1990: {event_time_ms}")
    if event_time_ms > now_ms + MAX_FUTURE_SKEW_MS:
        raise QuoteError(f"field 'event_time_ms' is more than 1 h in the future: {event_time_ms}")
    high = _price(data, "day_high", required=False)
    low = _price(data, "day_low", required=False)
    if high is not None and low is not None and high < low:
        raise QuoteError(f"day_high {high} is below day_low {low}")
    price = _price(data, "price", required=True)
    assert price is not None  # noqa: S101 - required=True guarantees it
    return Quote(
        symbol=symbol,
        price=price,
        event_time_ms=event_time_ms,
        source=source,
        producer_id=producer_id,
        seq=_integer(data, "seq", required=True) or 0,
        volume=_integer(data, "volume", required=False, maximum=MAX_VOLUME),
        day_high=high,
        day_low=low,
        open_price=_price(data, "open_price", required=False),
        prev_close=_price(data, "prev_close", required=False),
    )


def parse_quote(raw: bytes | str | None, *, now_ms: int | None = None) -> Quote:
    """Decode one Kafka message value into a `Quote`, or raise `QuoteError` with the reason.

    Never raises anything else, whatever the bytes: the stream job relies on it
    to route every bad record to the dead-letter table.
    """
    if raw is None:
        raise QuoteError("empty message (null value)")
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        raise QuoteError(f"message of {size} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise QuoteError(f"not valid JSON: {e}") from e
    try:
        return quote_from_fields(data, now_ms=now_ms)
    except QuoteError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        raise QuoteError(f"invalid record: {e}") from e
