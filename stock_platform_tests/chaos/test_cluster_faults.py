"""The stream job on a local cluster (3 Kafka brokers, a Spark master and 2 workers) loses a broker and a worker mid-run.

A private cluster on free ports (`KAFKA_BROKERS=3 SPARK_WORKERS=2 stock-platform
services up`), the real `stock-platform stream` on `spark://...` with the
executors' packed environment, and an `acks=all` producer sending known quotes
(1 % invalid). Once ~40 % are out, one broker and one Spark worker are
SIGKILLed. Then the producer finishes, the stream commits the topic's end
offsets, and every table is checked: each valid quote stored exactly once,
each invalid one in dead_letters, candles equal to their recomputation.

CLUSTER_QUOTES sets the size (default 20,000, in `make test` and `make chaos`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from stock_platform.config import Settings
from stock_platform.quotes import Quote
from stock_platform.runtime.kafka_broker import KafkaBroker
from stock_platform.runtime.processes import wait_until
from stock_platform.runtime.spark_cluster import SparkCluster
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL
from stock_platform_tests.chaos.topic import caught_up, end_offsets
from stock_platform_tests.private_platform import PrivatePlatform, cluster_env
from stock_platform_tests.streaming.conftest import expected_prices, invalid_records, make_quotes, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]

QUOTES = int(os.environ.get("CLUSTER_QUOTES") or 20_000)
RATE = 1_000.0  # records/s: the run lasts long enough for the faults to land mid-stream


def _records() -> tuple[list[Quote], list[tuple[bytes | None, str]], list[tuple[bytes, bytes | None]]]:
    """The valid quotes, the invalid records, and everything to send (one invalid every 100 records)."""
    bad_kinds = invalid_records()
    n_bad = QUOTES // 100
    quotes = make_quotes(QUOTES - n_bad, step_ms=400)
    bad = [bad_kinds[i % len(bad_kinds)] for i in range(n_bad)]
    stream: list[tuple[bytes, bytes | None]] = [(q.key, q.to_json()) for q in quotes]
    for i, (value, _reason) in enumerate(bad):
        stream.insert(i * 100 + 50, (b"AAPL", value))
    return quotes, bad, stream


class _Sender(threading.Thread):
    """Sends the records at `RATE` with acks=all and idempotence; `sent` counts what left the loop."""

    def __init__(self, settings: Settings, records: list[tuple[bytes, bytes | None]]) -> None:
        super().__init__(daemon=True)
        self.settings, self.records = settings, records
        self.sent = 0
        self.unsent = -1
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap_servers, "acks": "all",
                                 "enable.idempotence": True, "linger.ms": 20})  # fmt: skip
            started = time.monotonic()
            for key, value in self.records:
                while True:
                    try:
                        producer.produce(self.settings.kafka_topic, key=key, value=value)
                        break
                    except BufferError:
                        producer.poll(0.1)
                self.sent += 1
                producer.poll(0)
                ahead = self.sent / RATE - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            self.unsent = producer.flush(120)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def _cluster(tmp_path: Path, cache_dir: Path) -> PrivatePlatform:
    env = {**cluster_env(kafka_brokers=3, spark_workers=2), "SPARK_DRIVER_MEMORY": "1g"}
    return PrivatePlatform(tmp_path / "data", cache_dir, env)


@pytest.mark.timeout(1500)
def test_a_broker_and_a_worker_killed_mid_stream_lose_and_double_nothing(tmp_path: Path, base_settings: Settings) -> None:
    platform = _cluster(tmp_path, base_settings.cache_dir)
    settings = platform.settings
    assert settings.kafka_replication_factor == 3 and settings.spark_master.startswith("spark://")
    quotes, bad, records = _records()
    stream: subprocess.Popen | None = None
    try:
        up = platform.cli("services", "up", timeout=900)
        assert up.returncode == 0, up.stderr[-3000:]
        with open(tmp_path / "stream.log", "wb") as log:
            stream = subprocess.Popen(
                [sys.executable, "-m", "stock_platform.cli", "stream"],
                env=platform.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        log_text = lambda: (tmp_path / "stream.log").read_text(errors="replace")  # noqa: E731
        assert wait_until(lambda: "stream started" in log_text() or stream.poll() is not None, 600, interval=1)
        assert stream.poll() is None, "the stream job exited"
        sender = _Sender(settings, records)
        sender.start()
        assert wait_until(lambda: sender.sent >= 0.4 * len(records) or not sender.is_alive(), 300, interval=0.2)
        broker = KafkaBroker(settings).nodes[1]
        worker = SparkCluster(settings).workers[0]
        broker_pid, worker_pid = broker.pid(), worker.pid()
        assert broker_pid and worker_pid
        os.kill(broker_pid, signal.SIGKILL)
        os.kill(worker_pid, signal.SIGKILL)
        sender.join(600)
        assert sender.error is None and sender.unsent == 0, (sender.error, sender.unsent)
        assert stream.poll() is None, "the stream job died"
        ends = end_offsets(settings.kafka_bootstrap_servers, settings.kafka_topic)
        assert sum(ends.values()) == len(records)  # idempotent producer: no retry wrote a record twice
        assert wait_until(lambda: caught_up(platform, ends), 600, interval=2), f"the stream did not commit {ends}"

        db = snapshot(settings.postgres_dsn)
        assert db["prices"] == expected_prices(quotes)
        assert sorted(bytes(raw or b"") for *_x, raw, _r in db["dead"]) == sorted(v or b"" for v, _ in bad)
        assert db["candles"] == platform.query(CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2")
        assert platform.query("SELECT sum(trade_count) FROM stock_candles_1m")[0][0] == len(quotes)
        # The batch ledger agrees, so no batch was recorded twice or with a re-run's counts.
        sums = platform.query("SELECT sum(rows_in), sum(inserted), sum(duplicates), sum(dead_letters) FROM stream_batches")
        assert tuple(int(x) for x in sums[0]) == (len(records), len(quotes), 0, len(bad))
        assert "Lost executor" in log_text() or "Worker lost" in log_text(), "the killed worker's executor was not lost"
    except BaseException:
        print(platform.log_tails(), (tmp_path / "stream.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        if stream is not None and stream.poll() is None:
            os.killpg(stream.pid, signal.SIGTERM)
            stream.wait(120)
        platform.cli("services", "down", timeout=300)
