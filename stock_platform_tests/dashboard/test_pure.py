"""Unit tests of the dashboard's pure parts: symbol checks, indicators, offsets, lights, the TTL cache."""

from __future__ import annotations

import argparse
import math

import pandas as pd
import pytest

from stock_platform.dashboard.cache import ttl_cache
from stock_platform.dashboard.health import (
    SUPERVISED_JOBS,
    KafkaLag,
    Level,
    age_level,
    heartbeat_state,
    run_level,
)
from stock_platform.dashboard.indicators import ema, normalise_to_100, sma, vwap
from stock_platform.dashboard.symbols import SymbolError, normalise_symbol, parse_symbol_list
from stock_platform.storage.heartbeats import STALE_AFTER_SECONDS, is_stale
from stock_platform.storage.stream_offsets import parse_offsets
from stock_platform.supervised_runs import RUNS_QUERY


@pytest.mark.parametrize("text", ["AAPL", " aapl ", "BRK.B", "BINANCE:BT", "X", "1234567890"])
def test_valid_symbols_are_upper_cased(text: str) -> None:
    assert normalise_symbol(text) == text.strip().upper()


@pytest.mark.parametrize("text", ["", "   ", "A B", "DROP TABLE;", "12345678901", ".AAPL", "^GSPC", "AAPL!", "é", "'; --"])
def test_malformed_symbols_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(SymbolError, match="ticker symbol"):
        normalise_symbol(text)


def test_symbol_list_keeps_order_drops_duplicates_and_reports_errors() -> None:
    symbols, errors = parse_symbol_list("msft, AAPL,,MSFT; nvda\nbad one")
    assert symbols == ["MSFT", "AAPL", "NVDA"]
    assert len(errors) == 1 and "BAD ONE" in errors[0]


def test_sma_and_ema() -> None:
    close = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0])
    assert sma(close, 3).tolist()[2:] == [2.0, 3.0, 4.0]
    assert math.isnan(sma(close, 3).iloc[1])
    # alpha = 2 / (3 + 1) = 0.5: 1, 1.5, 2.25, 3.125, 4.0625
    assert ema(close, 3).tolist() == pytest.approx([1.0, 1.5, 2.25, 3.125, 4.0625])


def test_vwap_weights_typical_price_by_volume_and_is_nan_without_volume() -> None:
    candles = pd.DataFrame({"high": [11.0, 21.0], "low": [9.0, 19.0], "close": [10.0, 20.0], "volume": [1, 3]})
    assert vwap(candles).tolist() == pytest.approx([10.0, (10.0 + 60.0) / 4])
    candles["volume"] = [0, 0]
    assert vwap(candles).isna().all()


def test_normalise_to_100_rebases_on_first_valid_value() -> None:
    closes = pd.DataFrame({"A": [None, 50.0, 75.0], "B": [200.0, 100.0, 300.0], "C": [None, None, None]})
    out = normalise_to_100(closes)
    assert list(out.columns) == ["A", "B"]
    assert out["A"].tolist()[1:] == [100.0, 150.0]
    assert out["B"].tolist() == [100.0, 50.0, 150.0]


@pytest.mark.parametrize(("raw", "expected"), [
    ({"t": {"0": 5, "1": 7}}, {0: 5, 1: 7}),
    ({"other": {"2": 9}}, {2: 9}),
    ({"0": 5, "1": 7}, {0: 5, 1: 7}),
    ([{"partition": 1, "offset": 3}], {1: 3}),
    ("garbage", {}),
    ({"t": {"0": "x"}}, {}),
    (None, {}),
])  # fmt: skip
def test_parse_offsets_tolerates_shapes(raw: object, expected: dict[int, int]) -> None:
    assert parse_offsets(raw, "t") == expected


@pytest.mark.parametrize(("age", "level"), [(0, Level.GREEN), (29.9, Level.GREEN), (30, Level.AMBER), (119, Level.AMBER),
                                            (120, Level.RED), (None, Level.UNKNOWN)])  # fmt: skip
def test_age_level_thresholds(age: float | None, level: Level) -> None:
    assert age_level(age, 30, 120) == level


def test_heartbeat_state_judges_by_the_shared_stale_rule_and_says_never() -> None:
    now = 1_750_000_000_000  # epoch ms

    def beat(beat_age_s: float = 2.0, **fields: object) -> dict[str, str]:
        return {"pid": "1", "updated_ms": str(now - int(beat_age_s * 1000)), **{k: str(v) for k, v in fields.items()}}

    assert heartbeat_state("stream", {}, now).level is Level.RED
    fresh = heartbeat_state("stream", beat(last_batch_ms=now - 5000), now)
    assert (fresh.level, fresh.age_s, fresh.detail) == (Level.GREEN, 2.0, "last batch 5 s ago; last beat 2 s ago")
    never = heartbeat_state("producer", beat(last_publish_ms=0, started_ms=now - 9000), now)
    assert (never.level, never.detail) == (Level.AMBER, "alive, nothing yet: last publish never; last beat 2 s ago")
    idle = heartbeat_state("stream", beat(last_batch_ms=now - 300_000), now)
    assert (idle.level, idle.detail) == (Level.AMBER, "alive, idle: last batch 300 s ago; last beat 2 s ago")
    stopped = heartbeat_state("producer", beat(state="failed", last_publish_ms=now - 3000), now)
    assert (stopped.level, stopped.detail) == (Level.RED, "failed: last publish 3 s ago; last beat 2 s ago")
    # The page's red is the supervisors' stale, on either side of the threshold.
    for age in (STALE_AFTER_SECONDS - 1, STALE_AFTER_SECONDS + 1):
        state = heartbeat_state("producer", beat(age, last_publish_ms=now - 1000), now)
        assert (state.level is Level.RED) == is_stale(beat(age), now / 1000), age
        assert ("stale" in state.detail) == (age > STALE_AFTER_SECONDS)


def test_kafka_lag_levels() -> None:
    assert KafkaLag({0: 3, 1: 0}, {0: 10, 1: 4}).level == Level.GREEN
    assert KafkaLag({0: 5000}, {0: 5000}).total == 5000
    assert KafkaLag({0: 5000}, {0: 5000}).level == Level.AMBER
    assert KafkaLag({}, {}, "down").level == Level.UNKNOWN


def test_ttl_cache_reuses_results_and_never_caches_errors() -> None:
    calls: list[int] = []

    @ttl_cache(60)
    def square(x: int) -> int:
        calls.append(x)
        if x < 0:
            raise ValueError("negative")
        return x * x

    assert square(3) == 9 and square(3) == 9
    assert calls == [3]
    for _ in range(2):
        with pytest.raises(ValueError):
            square(-1)
    assert calls == [3, -1, -1]
    square.cache_clear()  # type: ignore[attr-defined]
    square(3)
    assert calls == [3, -1, -1, 3]


def test_ttl_cache_expires() -> None:
    calls: list[int] = []

    @ttl_cache(0)
    def ident(x: int) -> int:
        calls.append(x)
        return x

    ident(1)
    ident(1)
    assert calls == [1, 1]


def test_dashboard_command_builds_a_streamlit_command_line() -> None:
    from stock_platform.dashboard.commands import register, streamlit_argv

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dashboard", "--port", "8600"])
    assert args.port == 8600 and callable(args.handler)
    argv = streamlit_argv(8600)
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("dashboard/app.py")
    assert argv[argv.index("--server.port") + 1] == "8600"
    assert argv[argv.index("--server.headless") + 1] == "true"


@pytest.mark.parametrize(
    ("run", "level", "word"),
    [
        (None, Level.RED, "no run yet"),
        ({"status": "STARTED"}, Level.GREEN, "running"),
        ({"status": "QUEUED"}, Level.AMBER, "queued"),
        ({"status": "STARTING"}, Level.AMBER, "starting"),
        ({"status": "CANCELING"}, Level.AMBER, "stopping"),
        ({"status": "FAILURE"}, Level.RED, "failed"),
        ({"status": "CANCELED"}, Level.RED, "cancelled"),
        ({"status": "SUCCESS"}, Level.RED, "ended"),
        ({"status": "SOMETHING_NEW"}, Level.UNKNOWN, "SOMETHING_NEW"),
    ],
)
def test_a_supervised_job_is_green_only_while_its_run_is_started(run: dict | None, level: Level, word: str) -> None:
    got_level, got_word = run_level(run)
    assert got_level is level and word in got_word


def test_the_runs_query_asks_for_each_supervised_job_by_name() -> None:
    for job in SUPERVISED_JOBS:
        assert f'{job}: runsOrError(filter: {{pipelineName: "{job}"}}, limit: 1)' in RUNS_QUERY
    assert "recent: runsOrError(limit: 5)" in RUNS_QUERY
