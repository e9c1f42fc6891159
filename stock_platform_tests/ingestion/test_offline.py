"""Pieces that need no service: redaction, tapes, day volume, the producer's encoding, feed parsing."""

from __future__ import annotations

import dataclasses
import gzip
import logging
import threading
from pathlib import Path

import pytest

from stock_platform.cli import main as cli_main
from stock_platform.config import Settings, load_settings
from stock_platform.ingestion.day_volume import DayVolume
from stock_platform.ingestion.limits import ProducerLimits
from stock_platform.ingestion.pacing import paced
from stock_platform.ingestion.producer import encode_quote
from stock_platform.ingestion.redact import RedactingFilter, redact
from stock_platform.ingestion.simulator import SimulatedMarket
from stock_platform.ingestion.sources import parse_feeds
from stock_platform.ingestion.stats import FeedStats
from stock_platform.ingestion.tape import TapeWriter, read_tape, tape_span_ms

START = 1_750_000_000_000


def test_redact_masks_the_key_and_any_token_parameter() -> None:
    text = "GET wss://ws.finnhub.io?token=abc123secret&x=1 failed; key abc123secret"
    out = redact(text, "abc123secret")
    assert "abc123secret" not in out
    assert "token=****" in out
    assert "token=****" in redact("https://x/quote?symbol=A&token=other", "")


def test_redacting_filter_cleans_messages_arguments_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", ("http://h/?token=s3cr3t",), None)
    try:
        raise RuntimeError("boom s3cr3t")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter("s3cr3t").filter(record)
    assert "s3cr3t" not in record.getMessage()
    assert "s3cr3t" not in (record.exc_text or "")


def test_encode_quote_matches_the_contracts_json() -> None:
    market = SimulatedMarket(["AAPL", "BRK.B"], seed=1, rate=5, start_ms=START, snapshot_every=2)
    for quote, _ in zip(market, range(20), strict=False):
        assert encode_quote(quote, "p-1", 99) == dataclasses.replace(quote, producer_id="p-1", seq=99).to_json()


def test_tape_round_trip_counts_bad_lines_and_shifts_time(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    market = SimulatedMarket(["AAPL", "MSFT"], seed=2, rate=10, start_ms=START)
    quotes = [q for q, _ in zip(market, range(50), strict=False)]
    with TapeWriter(path) as tape:
        for quote in quotes[:25]:
            tape.write(quote)
        tape.write(b'{"not": "a quote"}')
        for quote in quotes[25:]:
            tape.write(quote.to_json())
    with gzip.open(path, "ab") as f:
        f.write(b"garbage\n")
    stats = FeedStats()
    replayed = list(read_tape(path, stats=stats, source=None))
    assert replayed == quotes
    assert stats.skipped["invalid"] == 2
    assert tape_span_ms(path)[0] == quotes[0].event_time_ms
    shifted = list(read_tape(path, shift_ms=1000))
    assert [q.event_time_ms - 1000 for q in shifted] == [q.event_time_ms for q in quotes]
    assert {q.source for q in shifted} == {"replay"}


def test_paced_stops_at_once_when_asked() -> None:
    stop = threading.Event()
    market = SimulatedMarket(["AAPL"], seed=1, rate=0.01, start_ms=START)  # one event per 100 s
    stream = paced(market, 1.0, stop)
    first = next(stream)
    assert first.symbol == "AAPL"
    threading.Timer(0.2, stop.set).start()
    assert list(stream) == []


def test_day_volume_sums_trades_and_resets_on_a_new_new_york_day() -> None:
    volume = DayVolume()
    day1 = 1_764_100_800_000  # 2025-11-25T20:00Z = 15:00 New York
    volume.add("AAPL", day1, 100)
    volume.add("AAPL", day1 + 1000, 50)
    assert volume.get("AAPL", day1 + 2000) == 150
    assert volume.get("MSFT", day1) is None
    next_day = day1 + 86_400_000
    assert volume.get("AAPL", next_day) is None
    volume.add("AAPL", next_day, 7)
    assert volume.get("AAPL", next_day) == 7
    volume.add("AAPL", day1, 1000)  # late trade of yesterday: not today's
    assert volume.get("AAPL", next_day) == 7


@pytest.mark.parametrize(("text", "expected"), [("rest,ws", {"rest", "ws"}), ("ws", {"ws"}), ("both", {"rest", "ws"})])
def test_parse_feeds(text: str, expected: set[str]) -> None:
    assert parse_feeds(text) == expected


def test_parse_feeds_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="FINNHUB_FEEDS"):
        parse_feeds("rest,fax")


def test_parallel_tape_reader_yields_the_same_quotes_and_counts(tmp_path: Path) -> None:
    from stock_platform.ingestion.tape import read_tape_parallel

    path = tmp_path / "p.jsonl.gz"
    market = SimulatedMarket(["AAPL", "MSFT", "NVDA"], seed=5, rate=100, start_ms=START)
    with TapeWriter(path) as tape:
        for quote, _ in zip(market, range(12_000), strict=False):
            tape.write(quote)
        tape.write(b"not json")
    stats = FeedStats()
    assert list(read_tape_parallel(path, stats=stats, shift_ms=5)) == list(read_tape(path, shift_ms=5))
    assert stats.skipped["invalid"] == 1


def test_producer_limits_come_from_the_settings_and_bad_ones_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ProducerLimits.of(Settings.defaults()) == ProducerLimits()
    monkeypatch.setenv("PRODUCER_FLUSH_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("PRODUCER_QUEUE_MAX_MESSAGES", "500")
    limits = ProducerLimits.of(load_settings())
    assert limits.flush_timeout_s == 2.5 and limits.queue_max_messages == 500 and limits.inbox_max == 10_000
    for name, raw in [("PRODUCER_FLUSH_TIMEOUT_SECONDS", "soon"), ("PRODUCER_INBOX_MAX", "0"), ("PRODUCER_QUEUE_MAX_KBYTES", "1.5"),
                      ("PRODUCER_QUEUE_FULL_TIMEOUT_SECONDS", "nan")]:  # fmt: skip
        with monkeypatch.context() as m:
            m.setenv(name, raw)
            with pytest.raises(ValueError, match=f"setting {name} must be a positive"):
                load_settings()


def test_a_bad_producer_limit_stops_produce_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRODUCER_FLUSH_TIMEOUT_SECONDS", "-1")
    assert cli_main(["produce", "--max-records", "1"]) == 2  # before any connection is tried
    assert "setting PRODUCER_FLUSH_TIMEOUT_SECONDS must be a positive number, got '-1'" in capsys.readouterr().err


def test_lost_records_are_summed_up_in_one_line_with_their_seq_range() -> None:
    stats = FeedStats()
    assert stats.lost == 0
    stats.add_unsent(seq=40)
    stats.add_unsent(seq=12)
    stats.add_failed(seq=55)
    stats.add_dropped("queue_full", seq=30)
    stats.add_dropped("inbox_full")
    assert stats.lost == 5 and stats.lost_seqs == (12, 55)
    summary = stats.lost_summary()
    assert summary.startswith("lost 5 records: 2 unsent at stop, 2 dropped (inbox_full 1, queue_full 1), 1 failed; seq 12..55")
    expected = {"dropped": 2, "unsent": 2, "failed": 1, "dropped_queue_full": 1, "dropped_inbox_full": 1,
                "lost_first_seq": 12, "lost_last_seq": 55}  # fmt: skip
    snapshot = stats.snapshot()  # what the heartbeat writes
    assert {name: snapshot.get(name) for name in expected} == expected
