"""Property tests of the message contract: whatever arrives, it parses to a valid quote or is rejected with a reason."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from stock_platform.quotes import MAX_VOLUME, SOURCES, Quote, QuoteError, parse_quote

NOW_MS = 1_790_000_000_000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "v",
        "symbol",
        "price",
        "volume",
        "day_high",
        "day_low",
        "open_price",
        "prev_close",
        "event_time_ms",
        "source",
        "producer_id",
        "seq",
        "x",
    ]
)


def _check(raw: bytes | str) -> None:
    try:
        quote = parse_quote(raw, now_ms=NOW_MS)
    except QuoteError as e:
        assert str(e), "a rejection must carry a reason"
        return
    assert isinstance(quote, Quote)
    assert math.isfinite(quote.price) and quote.price > 0
    assert quote.source in SOURCES
    assert parse_quote(quote.to_json(), now_ms=NOW_MS) == quote


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_parse_or_are_rejected_with_a_reason(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=13))
def test_any_json_object_parses_or_is_rejected_with_a_reason(data: dict) -> None:
    _check(json.dumps(data))


@settings(max_examples=300, deadline=None)
@given(
    symbol=st.from_regex(r"[A-Z][A-Z0-9.]{0,9}", fullmatch=True),
    price=st.floats(min_value=0.01, max_value=99_999_999.99),
    event_time_ms=st.integers(min_value=631_152_000_000, max_value=NOW_MS),
    seq=st.integers(min_value=0, max_value=2**62),
    volume=st.none() | st.integers(min_value=0, max_value=MAX_VOLUME),
    source=st.sampled_from(sorted(SOURCES)),
)
def test_every_valid_quote_round_trips(
    symbol: str, price: float, event_time_ms: int, seq: int, volume: int | None, source: str
) -> None:
    quote = Quote(symbol=symbol, price=price, event_time_ms=event_time_ms, source=source, producer_id="p", seq=seq, volume=volume)
    assert parse_quote(quote.to_json(), now_ms=NOW_MS) == quote
