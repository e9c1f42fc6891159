"""The producer against the real Kafka and Redis: partitioning, order, sequence, heartbeat, tapes, SIGTERM."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2

from stock_platform.cli import main as cli_main
from stock_platform.config import Settings
from stock_platform.ingestion.run import ProduceOptions, run_produce
from stock_platform.ingestion.simulator import SimulatedMarket, synthetic_symbols
from stock_platform.ingestion.stats import FeedStats
from stock_platform.ingestion.tape import TapeWriter
from stock_platform.quotes import parse_quote
from stock_platform.runtime.processes import wait_until
from stock_platform_tests.ingestion.conftest import heartbeat, read_topic

pytestmark = pytest.mark.integration


def test_records_use_every_partition_one_per_symbol_in_sequence_order(platform_settings: Settings, tmp_path: Path) -> None:
    settings = platform_settings.replace(producer_id="partition-test")
    tape = tmp_path / "run.jsonl.gz"
    stats = FeedStats()
    options = ProduceOptions(source="simulator", symbols=synthetic_symbols(100), rate=None, max_records=5000, record=tape)
    assert run_produce(settings, options, stats=stats) == 0
    records = read_topic(settings, expected=5000)
    assert len(records) == 5000 and stats.published == 5000
    partition_of: dict[str, set[int]] = defaultdict(set)
    last_seq: dict[int, int] = defaultdict(int)
    last_time: dict[str, int] = defaultdict(int)
    for record in records:
        quote = parse_quote(record.value)
        assert record.key == quote.key and quote.producer_id == "partition-test"
        # the same partition kafka-python's (and Java's) default partitioner picks for this key
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % 3
        partition_of[quote.symbol].add(record.partition)
        assert quote.seq > last_seq[record.partition]  # in sequence order within the partition
        assert quote.event_time_ms > last_time[quote.symbol]
        last_seq[record.partition], last_time[quote.symbol] = quote.seq, quote.event_time_ms
    assert {p for parts in partition_of.values() for p in parts} == {0, 1, 2}
    assert all(len(parts) == 1 for parts in partition_of.values())
    assert sorted(parse_quote(r.value).seq for r in records) == list(range(1, 5001))
    with gzip.open(tape, "rb") as f:
        assert sorted(f.read().splitlines()) == sorted(r.value for r in records)
    beat = heartbeat(settings)
    assert beat["state"] == "stopped" and beat["published"] == "5000" and beat["failed"] == "0"
    assert beat["source"] == "simulator" and beat["producer_id"] == "partition-test" and int(beat["last_publish_ms"]) > 0


def test_replay_command_republishes_a_tape(platform_settings: Settings, tmp_path: Path) -> None:
    tape = tmp_path / "in.jsonl.gz"
    quotes = [q for q, _ in zip(SimulatedMarket(["AAPL", "MSFT"], seed=9, rate=1000), range(300), strict=False)]
    with TapeWriter(tape) as writer:
        for quote in quotes:
            writer.write(quote)
    env = {"KAFKA_TOPIC": platform_settings.kafka_topic, "REDIS_KEY_PREFIX": platform_settings.redis_key_prefix}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert cli_main(["produce", "--source", "replay", str(tape), "--speed", "10"]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    replayed = [parse_quote(r.value) for r in read_topic(platform_settings, expected=300)]
    assert len(replayed) == 300 and {q.source for q in replayed} == {"replay"}
    key = sorted((q.symbol, q.event_time_ms, q.price, q.volume) for q in quotes)
    assert sorted((q.symbol, q.event_time_ms, q.price, q.volume) for q in replayed) == key


def test_sigterm_flushes_everything_and_exits_0(platform_settings: Settings) -> None:
    platform_settings = platform_settings.replace(producer_id="sigterm-test")  # its heartbeat key, as PRODUCER_ID below
    env = os.environ | {
        "KAFKA_TOPIC": platform_settings.kafka_topic,
        "REDIS_KEY_PREFIX": platform_settings.redis_key_prefix,
        "PRODUCER_ID": "sigterm-test",
        "FINNHUB_API_KEY": "",
    }
    entry_point = str(Path(sys.executable).with_name("stock-platform"))  # the exit code a supervisor sees
    proc = subprocess.Popen(
        [entry_point, "produce", "--rate", "300", "--symbols", "AAPL", "MSFT", "NVDA"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert wait_until(lambda: int(heartbeat(platform_settings).get("published", 0)) >= 100, 60, interval=0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b" lost " not in err
    beat = heartbeat(platform_settings)
    assert beat["state"] == "stopped" and beat["failed"] == beat["dropped"] == beat["unsent"] == "0"
    published = int(beat["published"])
    seqs = sorted(json.loads(r.value)["seq"] for r in read_topic(platform_settings, expected=published))
    assert seqs == list(range(1, published + 1))  # everything sent before SIGTERM was flushed


def test_redis_down_does_not_stop_producing(platform_settings: Settings) -> None:
    settings = platform_settings.replace(redis_url="redis://127.0.0.1:1/0")
    stats = FeedStats()
    options = ProduceOptions(source="simulator", symbols=("AAPL",), rate=None, max_records=200)
    assert run_produce(settings, options, stats=stats) == 0
    assert stats.published == 200 and len(read_topic(settings, expected=200)) == 200
