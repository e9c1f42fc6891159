"""The simulated market: deterministic, Finnhub-shaped, valid under the contract, strictly increasing per symbol."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict

from stock_platform.ingestion.simulator import SimulatedMarket, synthetic_symbols
from stock_platform.quotes import parse_quote

SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA")


def _take(market: SimulatedMarket, n: int) -> list:
    return list(itertools.islice(market, n))


def test_same_seed_same_stream_and_another_seed_differs() -> None:
    start = 1_750_000_000_000
    a = _take(SimulatedMarket(SYMBOLS, seed=1, rate=50, start_ms=start), 2000)
    b = _take(SimulatedMarket(SYMBOLS, seed=1, rate=50, start_ms=start), 2000)
    c = _take(SimulatedMarket(SYMBOLS, seed=2, rate=50, start_ms=start), 2000)
    assert a == b
    assert [q.price for q in a] != [q.price for q in c]


def test_every_record_passes_the_contract_and_times_increase_per_symbol() -> None:
    start = int(time.time() * 1000) - 3_600_000
    quotes = _take(SimulatedMarket(synthetic_symbols(100), seed=3, rate=20_000, start_ms=start), 50_000)
    last: dict[str, int] = defaultdict(int)
    for quote in quotes:
        assert parse_quote(quote.to_json()) == quote
        assert quote.event_time_ms > last[quote.symbol]
        last[quote.symbol] = quote.event_time_ms
    assert len(last) == 100
    assert max(last.values()) <= int(time.time() * 1000) + 3_600_000


def test_records_have_finnhubs_two_shapes() -> None:
    quotes = _take(SimulatedMarket(SYMBOLS, seed=4, rate=10, start_ms=1_750_000_000_000, snapshot_every=5), 400)
    snapshots = [q for q in quotes if q.day_high is not None]
    trades = [q for q in quotes if q.day_high is None]
    assert 70 <= len(snapshots) <= 80 and len(snapshots) + len(trades) == 400
    for q in snapshots:
        assert q.day_low <= q.price <= q.day_high
        assert q.open_price and q.prev_close and q.volume and q.volume > 0
    assert all(q.volume and q.volume >= 1 and q.open_price is None for q in trades)
    # snapshot volume is the day's running total, so it grows within a day for one symbol
    aapl = [q.volume for q in snapshots if q.symbol == "AAPL"]
    assert aapl == sorted(aapl)


def test_prices_start_realistic_and_move_like_gbm() -> None:
    quotes = _take(SimulatedMarket(["AAPL"], seed=5, rate=1, start_ms=1_750_000_000_000), 3000)
    prices = [q.price for q in quotes]
    assert 150 < prices[0] < 320
    assert len(set(prices)) > 100  # it moves
    assert max(prices) / min(prices) < 1.5  # ~50 min of trading time at 25 % vol cannot move 50 %


def test_rate_sets_the_spacing_of_simulated_time() -> None:
    quotes = _take(SimulatedMarket(SYMBOLS, seed=6, rate=100, start_ms=1_750_000_000_000), 10_000)
    span_s = (quotes[-1].event_time_ms - quotes[0].event_time_ms) / 1000
    assert 90 < span_s < 110  # 10,000 events at 100/s
