"""Nothing vanishes silently: with Kafka gone the producer stops in time, bounds its buffers, and names what it lost.

A private broker is started and SIGKILLed (its port then refuses connections),
so the platform's own Kafka is never disturbed. The producer runs as the real
`stock-platform` console script where the exit code matters.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stock_platform.config import Settings
from stock_platform.ingestion.fake_finnhub import FakeFinnhub
from stock_platform.ingestion.heartbeat import Heartbeat
from stock_platform.ingestion.limits import ProducerLimits
from stock_platform.ingestion.producer import QuoteProducer
from stock_platform.ingestion.simulator import SimulatedMarket
from stock_platform.ingestion.sources import finnhub_quotes
from stock_platform.ingestion.stats import FeedStats
from stock_platform.runtime.kafka_broker import KafkaBroker
from stock_platform.runtime.processes import wait_until
from stock_platform_tests.ingestion.conftest import API_KEY, free_port, heartbeat, kill_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The installed entry point, so the test sees the exit code a supervisor sees.
ENTRY_POINT = str(Path(sys.executable).with_name("stock-platform"))
LOST_LINE = re.compile(r"lost (\d+) records: (\d+) unsent at stop, 0 dropped, 0 failed; seq (\d+)\.\.(\d+)")


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "KAFKA_TOPIC": settings.kafka_topic,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix, "PRODUCER_ID": settings.producer_id or "loss-test",
        "FINNHUB_API_KEY": "", **extra,
    }  # fmt: skip


def _terminate(proc: subprocess.Popen[str]) -> tuple[str, float]:
    """SIGTERM `proc`; its stderr and how long it took to exit."""
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return err, time.monotonic() - start


def test_sigterm_with_the_broker_gone_exits_1_within_the_flush_timeout_naming_the_unsent_seqs(
    private_kafka: tuple[Settings, KafkaBroker],
) -> None:
    settings, broker = private_kafka
    proc = subprocess.Popen(
        [ENTRY_POINT, "produce", "--rate", "200", "--symbols", "AAPL", "MSFT", "NVDA"],
        env=_env(settings, PRODUCER_FLUSH_TIMEOUT_SECONDS="3"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert wait_until(lambda: int(heartbeat(settings).get("published", 0)) >= 100, 60, interval=0.2)
        kill_broker(broker)
        time.sleep(2)  # records keep coming; none can be acknowledged now
        err, took = _terminate(proc)
    finally:
        proc.kill()
    assert proc.returncode == 1, err[-3000:]
    assert took < 3 + 5, f"took {took:.1f} s to stop with a 3-s flush timeout"  # 5 s: purge, last heartbeat, exit
    lost = [line for line in err.splitlines() if LOST_LINE.search(line)]
    assert len(lost) == 1, err[-3000:]
    total, unsent, first, last = map(int, LOST_LINE.search(lost[0]).groups())  # type: ignore[union-attr]
    beat = heartbeat(settings)
    assert beat["state"] == "failed" and total == unsent == int(beat["unsent"]) >= 200  # 2 s at 200/s
    assert (first, last) == (int(beat["lost_first_seq"]), int(beat["lost_last_seq"]))
    # every numbered record is either acknowledged or reported lost, and the last one sent is among the lost
    assert int(beat["published"]) + unsent == last and unsent <= last - first + 1


def test_sigterm_while_kafka_is_unreachable_at_start_exits_1_at_once(platform_settings: Settings) -> None:
    port = free_port()  # nothing listens there
    env = _env(platform_settings, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    proc = subprocess.Popen(
        [ENTRY_POINT, "produce", "--rate", "50"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        seen = []
        while not any("waiting up to" in line for line in seen):  # the producer is now in its 30-s wait for Kafka
            line = proc.stderr.readline()
            assert line, "the producer exited before waiting for Kafka:\n" + "".join(seen)
            seen.append(line)
        time.sleep(1.5)
        err, took = _terminate(proc)
    finally:
        proc.kill()
    assert proc.returncode == 1, err[-3000:]
    assert took < 5, f"took {took:.1f} s to honour SIGTERM"
    assert f"stopped while waiting for Kafka at 127.0.0.1:{port}; nothing was sent" in err


def test_a_full_queue_waits_for_the_timeout_then_drops_counts_and_logs(
    private_kafka: tuple[Settings, KafkaBroker], caplog: pytest.LogCaptureFixture
) -> None:
    settings, broker = private_kafka
    caplog.set_level(logging.WARNING, logger="stock_platform.ingestion")
    stats = FeedStats()
    limits = ProducerLimits(queue_max_messages=20, queue_full_timeout_s=0.5, flush_timeout_s=1.0)
    producer = QuoteProducer(settings, stats, limits=limits)
    kill_broker(broker)
    results, waits = [], []
    for quote, _ in zip(SimulatedMarket(["AAPL", "MSFT"], seed=3, rate=10), range(26), strict=False):
        start = time.monotonic()
        results.append(producer.send(quote))
        waits.append(time.monotonic() - start)
    assert producer.queued <= 20  # the bound held
    assert all(isinstance(r, bytes) for r in results[:20]) and results[20:] == [None] * 6
    assert max(waits[:20]) < 0.25 and min(waits[20:]) >= 0.5  # queued at once, then each waited for room
    assert stats.dropped == {"queue_full": 6}
    Heartbeat(settings, stats, "test").beat()
    beat = heartbeat(settings)
    assert beat["dropped"] == beat["dropped_queue_full"] == "6"  # visible to the supervisor and the dashboard
    assert producer.close() == 20
    assert stats.unsent == 20 and stats.published == 0 and stats.lost == 26 and stats.lost_seqs == (1, 26)
    drops = [r.getMessage() for r in caplog.records if r.name == "stock_platform.ingestion.drops"]
    assert len(drops) == 2, drops  # a run of drops is two lines, not one per record
    assert "dropping records from seq 21" in drops[0] and "dropped 6 records (seq 21..26)" in drops[1]


def test_the_finnhub_inbox_is_bounded_and_counts_what_it_drops(finnhub_settings: Settings) -> None:
    with FakeFinnhub(API_KEY, trade_interval=0.01) as busy:
        settings = finnhub_settings.replace(finnhub_ws_url=busy.ws_url)
        stats, stop = FeedStats(), threading.Event()
        quotes = finnhub_quotes(settings, {"ws"}, stats, stop, inbox_max=5)
        next(quotes)  # starts the feed; from now on nobody takes its quotes, as when Kafka is down
        assert wait_until(lambda: stats.dropped["inbox_full"] >= 50, 20, interval=0.05)
        stop.set()
        time.sleep(1.0)  # the stream sees the stop within its 0.5-s receive timeout and emits nothing more
        waiting = list(quotes)
    assert len(waiting) <= 5  # all that was buffered meanwhile
    assert stats.snapshot()["dropped_inbox_full"] >= 50
