"""The simulated market: deterministic, Finnhub-shaped, valid under the contract, strictly increasing per symbol."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from datetime import date, datetime

from stock_platform.ingestion.simulator import SimulatedMarket, new_york_day, synthetic_symbols
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


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_the_trading_day_turns_at_midnight_in_new_york() -> None:
    # 2025-06-10 23:50 UTC is 19:50 in New York (EDT): the same trading day until 04:00 UTC.
    assert new_york_day(_ms("2025-06-10T23:50:00+00:00"))[0] == date(2025, 6, 10).toordinal()
    assert new_york_day(_ms("2025-06-11T03:59:59+00:00"))[0] == date(2025, 6, 10).toordinal()
    assert new_york_day(_ms("2025-06-11T04:00:00+00:00")) == (date(2025, 6, 11).toordinal(), _ms("2025-06-12T04:00:00+00:00"))
    # Winter (EST), and the day that loses an hour to daylight saving time is 23 hours long.
    assert new_york_day(_ms("2025-01-15T12:00:00+00:00"))[1] == _ms("2025-01-16T05:00:00+00:00")
    assert new_york_day(_ms("2025-03-09T12:00:00+00:00"))[1] == _ms("2025-03-10T04:00:00+00:00")


def test_day_fields_reset_at_new_york_midnight_not_utc_midnight() -> None:
    # Two simulated hours across 00:00 UTC (20:00 New York): one trading day, so one open and one running volume.
    start = _ms("2025-06-10T23:00:00+00:00")
    quotes = _take(SimulatedMarket(["AAPL"], seed=8, rate=1, start_ms=start, snapshot_every=1), 7200)
    assert quotes[-1].event_time_ms > _ms("2025-06-11T00:30:00+00:00")
    assert len({q.open_price for q in quotes}) == 1 and len({q.prev_close for q in quotes}) == 1
    assert all(b.volume >= a.volume for a, b in itertools.pairwise(quotes))
    # ... and across 04:00 UTC (midnight in New York) the day starts afresh from the last price.
    start = _ms("2025-06-11T03:30:00+00:00")
    quotes = _take(SimulatedMarket(["AAPL"], seed=8, rate=1, start_ms=start, snapshot_every=1), 3600)
    before = [q for q in quotes if q.event_time_ms < _ms("2025-06-11T04:00:00+00:00")]
    after = [q for q in quotes if q.event_time_ms >= _ms("2025-06-11T04:00:00+00:00")]
    assert before and after
    assert after[0].prev_close == before[-1].price and after[0].open_price == before[-1].price
    assert after[0].volume < before[-1].volume


def test_volume_follows_the_session_u_shape() -> None:
    """Trades are larger at the open and the close than at midday, and small outside the session."""

    def mean_size(start_iso: str) -> float:
        market = SimulatedMarket(["AAPL"], seed=9, rate=2, start_ms=_ms(start_iso), snapshot_every=10**9)
        return sum(q.volume for q in _take(market, 1200)) / 1200  # 10 simulated minutes of trades

    open_, midday, close = (mean_size(f"2025-06-10T{t}-04:00") for t in ("09:30:00", "12:40:00", "15:50:00"))
    night = mean_size("2025-06-10T22:00:00-04:00")
    assert open_ > 2 * midday and close > 2 * midday and midday > 2 * night
