"""The message contract: what is accepted, and the precise reason for what is not."""

from __future__ import annotations

import json

import pytest

from stock_platform.quotes import MAX_MESSAGE_BYTES, Quote, QuoteError, parse_quote

NOW_MS = 1_790_000_000_000


def _record(**overrides: object) -> dict:
    base = {
        "v": 1, "symbol": "AAPL", "price": 189.5, "volume": 1200, "day_high": 190.0, "day_low": 187.2,
        "open_price": 188.0, "prev_close": 187.9, "event_time_ms": NOW_MS - 1000, "source": "simulator",
        "producer_id": "p1", "seq": 7,
    }  # fmt: skip
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def test_round_trip() -> None:
    quote = parse_quote(json.dumps(_record()), now_ms=NOW_MS)
    assert quote == parse_quote(quote.to_json(), now_ms=NOW_MS)
    assert quote.key == b"AAPL"
    assert quote.volume == 1200


def test_optional_fields_may_be_absent_or_null() -> None:
    quote = parse_quote(
        json.dumps(_record(volume=None, day_high=..., day_low=..., open_price=None, prev_close=...)), now_ms=NOW_MS
    )
    assert quote.volume is None and quote.day_high is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (None, "empty message"),
        (json.dumps(_record(symbol=...)), "missing field 'symbol'"),
        (json.dumps(_record(price="189.5")), "field 'price' must be a number"),
        (json.dumps(_record(price=0)), "field 'price' must be between 0.01"),
        (json.dumps(_record(price=-3.2)), "field 'price' must be between 0.01"),
        (
            '{"v":1,"symbol":"AAPL","price":NaN,"event_time_ms":1789999999000,"source":"simulator","producer_id":"p","seq":1}',
            "must be finite",
        ),
        (json.dumps(_record(day_high=180.0, day_low=181.0)), "day_high 180.0 is below day_low 181.0"),
        (json.dumps(_record(event_time_ms=NOW_MS + 2 * 3600 * 1000)), "more than 1 h in the future"),
        (json.dumps(_record(event_time_ms=600_000_000_000)), "before 1990"),
        (json.dumps(_record(v=2)), "unsupported schema version 2"),
        (json.dumps(_record(symbol="TOO-LONG-SYMBOL")), "field 'symbol' must be 1-10"),
        (json.dumps(_record(symbol="aapl")), "field 'symbol' must be 1-10"),
        (json.dumps(_record(source="bloomberg")), "field 'source' must be one of"),
        (json.dumps(_record(seq=True)), "field 'seq' must be a whole number"),
        (json.dumps(_record(extra=1)), "unknown field(s) 'extra'"),
        (json.dumps(_record(volume=-5)), "field 'volume' must be between 0 and"),
        (json.dumps(_record(seq=2**64)), "field 'seq' must be between 0 and"),
        (b"{" + b" " * MAX_MESSAGE_BYTES + b"}", "exceeds the 4096-byte limit"),
    ],
)
def test_rejections_say_why(raw: bytes | str | None, reason: str) -> None:
    with pytest.raises(QuoteError) as info:
        parse_quote(raw, now_ms=NOW_MS)
    assert reason in str(info.value)


def test_serialised_record_is_compact_json() -> None:
    quote = Quote(symbol="MSFT", price=410.25, event_time_ms=NOW_MS, source="finnhub-ws", producer_id="p", seq=1, volume=5)
    data = json.loads(quote.to_json())
    assert data["v"] == 1 and data["symbol"] == "MSFT" and data["volume"] == 5
    assert b" " not in quote.to_json()
