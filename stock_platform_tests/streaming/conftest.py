"""Helpers for the stream job's tests: producing quotes and bad records, reading the tables back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

import psycopg2
from kafka import KafkaProducer

from stock_platform.config import Settings
from stock_platform.quotes import Quote

BASE_MS = 1_764_100_000_000  # 2025-11-25T19:46:40Z: a fixed past time, so tests are reproducible
SYMBOLS = ("AAPL", "MSFT", "NVDA", "BRK.B")


def make_quotes(n: int, start_ms: int = BASE_MS, step_ms: int = 700, symbols: Sequence[str] = SYMBOLS) -> list[Quote]:
    """`n` valid quotes round-robin over `symbols`, one every `step_ms` per symbol; every 5th is a snapshot."""
    out = []
    for i in range(n):
        sym = symbols[i % len(symbols)]
        t = start_ms + (i // len(symbols)) * step_ms + (i % len(symbols))
        price = round(100 + (i * 37 % 1000) / 10, 2)
        if i % 5 == 4:
            out.append(Quote(sym, price, t, "finnhub-rest", "test-producer", i, 1_000_000 + i, price + 1, price - 1, 100.0, 99.5))
        else:
            out.append(Quote(sym, price, t, "finnhub-ws", "test-producer", i, 10 + i % 90))
    return out


def _valid_dict(**changes: object) -> dict:
    base = Quote("AAPL", 150.0, BASE_MS, "finnhub-ws", "bad-producer", 1, 5).to_dict()
    base.update(changes)
    return base


def _enc(d: dict) -> bytes:
    return json.dumps(d).encode()


def invalid_records() -> list[tuple[bytes | None, str]]:
    """Fifteen bad records (thirteen kinds), each with a fragment of the reason it must be dead-lettered with."""
    missing = _valid_dict()
    del missing["price"]
    return [
        (b"this is {not json", "not valid JSON"),
        (_enc(missing), "missing field 'price'"),
        (_enc(_valid_dict(price="12.5")), "'price' must be a number"),
        (_enc(_valid_dict(price=float("nan"))), "must be finite"),
        (_enc(_valid_dict(price=-3.0)), "must be between 0.01"),
        (_enc(_valid_dict(price=0)), "must be between 0.01"),
        (_enc(_valid_dict(day_high=10.0, day_low=20.0)), "below day_low"),
        (_enc(_valid_dict(event_time_ms=int(time.time() * 1000) + 3 * 3600 * 1000)), "in the future"),
        (_enc(_valid_dict(event_time_ms=315_532_800_000)), "before 1990"),
        (_enc(_valid_dict(v=2)), "unsupported schema version"),
        (_enc(_valid_dict(symbol="X" * 5000)), "exceeds the 4096-byte limit"),
        (None, "empty message"),
        (_enc(_valid_dict(colour="red")), "unknown field"),
        (_enc([1, 2, 3]), "must be a JSON object"),
        (_enc(_valid_dict(volume=2**64)), "must be between 0 and"),
    ]


def produce(settings: Settings, records: Iterable[Quote | tuple[bytes | None, bytes | None]]) -> int:
    """Send quotes (keyed by symbol) or raw (key, value) pairs to the settings' topic; returns how many."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5, acks="all")
    n = 0
    try:
        for r in records:
            if isinstance(r, Quote):
                producer.send(settings.kafka_topic, key=r.key, value=r.to_json())
            else:
                producer.send(settings.kafka_topic, key=r[0], value=r[1])
            n += 1
        producer.flush(60)
    finally:
        producer.close()
    return n


def fetch(dsn: str, query: str, params: tuple = ()) -> list[tuple]:
    """All rows of a query, in a fresh connection."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    finally:
        conn.close()


PRICES_SQL = (
    "SELECT symbol, (EXTRACT(EPOCH FROM event_time) * 1000)::bigint, price::float8, volume, day_high::float8,"
    " day_low::float8, open_price::float8, prev_close::float8, source, producer_id, seq FROM stock_prices ORDER BY 1, 2"
)
DEAD_SQL = "SELECT topic, kafka_partition, kafka_offset, raw_payload, reason FROM dead_letters ORDER BY 2, 3"
CANDLES_SQL = "SELECT * FROM stock_candles_1m ORDER BY symbol, minute"


def expected_prices(quotes: Iterable[Quote]) -> list[tuple]:
    """What stock_prices must hold for these quotes: the first of each (symbol, event time), prices in cents."""
    seen: dict[tuple[str, int], Quote] = {}
    for q in quotes:
        seen.setdefault((q.symbol, q.event_time_ms), q)

    def cents(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    rows = [
        (q.symbol, q.event_time_ms, cents(q.price), q.volume, cents(q.day_high), cents(q.day_low), cents(q.open_price),
         cents(q.prev_close), q.source, q.producer_id, q.seq)
        for q in seen.values()
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (r[0], r[1]))


def snapshot(dsn: str) -> dict[str, list[tuple]]:
    """The contents the job is responsible for (without surrogate ids and wall-clock columns)."""
    return {
        "prices": fetch(dsn, PRICES_SQL),
        "dead": [(t, p, o, bytes(raw) if raw is not None else None, r) for t, p, o, raw, r in fetch(dsn, DEAD_SQL)],
        "candles": fetch(dsn, CANDLES_SQL),
    }
