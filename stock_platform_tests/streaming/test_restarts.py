"""The stream job as a process: SIGKILL mid-stream and a Redis outage end with the same tables as a clean run.

Each test runs `stock-platform stream` in its own process group against the
test's topic, database and Redis prefix; the Redis test starts a private
Redis so stopping it never touches the shared one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from stock_platform.config import Settings
from stock_platform.runtime.processes import wait_until
from stock_platform.runtime.redis_server import RedisServer
from stock_platform.storage.redis_keys import RedisKeys
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL
from stock_platform_tests.streaming.conftest import expected_prices, fetch, invalid_records, make_quotes, produce, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]


def _start(settings: Settings, checkpoint: Path, log: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        POSTGRES_DSN=settings.postgres_dsn, KAFKA_TOPIC=settings.kafka_topic, KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        REDIS_URL=settings.redis_url, REDIS_KEY_PREFIX=settings.redis_key_prefix, STOCK_DATA_DIR=str(settings.data_dir),
    )  # fmt: skip
    argv = [sys.executable, "-m", "stock_platform.cli", "stream", "--checkpoint", str(checkpoint), *args]
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _count(dsn: str, table: str = "stock_prices") -> int:
    return fetch(dsn, f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 - fixed table names


def _recorded(dsn: str) -> int:
    """Quotes inserted by the batches the driver has recorded (it records after its tasks committed)."""
    return fetch(dsn, "SELECT coalesce(sum(inserted), 0) FROM stream_batches")[0][0]


def _assert_complete(dsn: str, quotes: list, bad: list) -> None:
    db = snapshot(dsn)
    assert db["prices"] == expected_prices(quotes)
    assert sorted((raw or b"", reason) for *_x, raw, reason in db["dead"]) == sorted(
        (v or b"", next(r for *_y, raw, r in db["dead"] if (raw or b"") == (v or b""))) for v, _ in bad
    )
    for value, fragment in bad:
        assert any(fragment in r for *_y, raw, r in db["dead"] if raw == value)
    assert db["candles"] == fetch(dsn, CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2")
    # Every quote was counted into the candles exactly once.
    assert fetch(dsn, "SELECT sum(trade_count) FROM stock_candles_1m")[0][0] == len(db["prices"])


def test_sigkill_mid_stream_then_restart_loses_nothing_and_duplicates_nothing(platform_settings, clean_tables, tmp_path) -> None:
    settings = platform_settings
    quotes = make_quotes(24_000, step_ms=250)
    bad = invalid_records()
    produce(settings, list(quotes) + quotes[:3000] + [(b"X", v) for v, _ in bad])
    checkpoint, log = tmp_path / "cp", tmp_path / "stream.log"

    job = _start(settings, checkpoint, log, "--trigger-seconds", "0.5", "--max-offsets-per-trigger", "1500", "--no-redis")
    try:
        assert wait_until(lambda: _count(settings.postgres_dsn, "stream_batches") >= 3, 180), log.read_text()[-3000:]
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    assert _count(settings.postgres_dsn) < len(quotes), "the job finished before it was killed: not a mid-stream kill"

    again = _start(settings, checkpoint, log, "--available-now", "--max-offsets-per-trigger", "5000", "--no-redis")
    assert again.wait(300) == 0, log.read_text()[-3000:]
    _assert_complete(settings.postgres_dsn, quotes, bad)
    assert "stream_batch query_id=" in log.read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_redis_outage_does_not_stop_postgres_and_redis_is_refilled(platform_settings, clean_tables, tmp_path) -> None:
    port = _free_port()
    settings = platform_settings.replace(redis_port=port, redis_url=f"redis://127.0.0.1:{port}/0")
    server = RedisServer(settings.replace(data_dir=tmp_path / "redis-data"))
    server.start()
    keys = RedisKeys(settings.redis_key_prefix)
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    quotes = make_quotes(3000, step_ms=200)
    waves = [quotes[:1000], quotes[1000:2000], [q for q in quotes[2000:] if q.symbol == "AAPL"]]
    log = tmp_path / "stream.log"
    job = _start(settings, tmp_path / "cp", log, "--trigger-seconds", "0.5")
    try:
        produce(settings, waves[0])
        assert wait_until(lambda: _count(settings.postgres_dsn) == 1000, 180), log.read_text()[-3000:]
        assert wait_until(lambda: r.exists(keys.latest("MSFT")), 30)

        # The tasks write PostgreSQL and Redis before the driver publishes and records the batch: wait for the
        # driver too, or its publish of wave 1 and wave 2's batch could be mistaken for each other.
        assert wait_until(lambda: _recorded(settings.postgres_dsn) == 1000, 60), log.read_text()[-3000:]
        server.stop()
        produce(settings, waves[1])  # written while Redis is down
        assert wait_until(lambda: _count(settings.postgres_dsn) == 2000, 120), log.read_text()[-3000:]
        # Wait for the driver to record wave 2 as well: Redis must stay down until the batch's tasks gave up on it.
        assert wait_until(lambda: _recorded(settings.postgres_dsn) == 2000, 60), log.read_text()[-3000:]
        assert job.poll() is None

        server.start()
        r.flushall()  # the cache came back empty
        produce(settings, waves[2])  # only AAPL: the other symbols can come back only by the refill
        expected_total = 2000 + len(waves[2])
        assert wait_until(lambda: _count(settings.postgres_dsn) == expected_total, 120), log.read_text()[-3000:]
        assert wait_until(lambda: r.exists(keys.latest("MSFT")), 30), log.read_text()[-3000:]

        for sym in ("AAPL", "MSFT", "NVDA", "BRK.B"):
            stored = [q for q in quotes[:2000] + waves[2] if q.symbol == sym]
            newest = max(stored, key=lambda q: q.event_time_ms)
            latest = r.hgetall(keys.latest(sym))
            assert int(latest["event_time_ms"]) == newest.event_time_ms and float(latest["price"]) == newest.price
            assert r.ttl(keys.latest(sym)) > 0 and r.ttl(keys.ticks(sym)) > 0
            assert r.zcard(keys.ticks(sym)) > 0
        assert r.smembers(keys.symbols) == {"AAPL", "MSFT", "NVDA", "BRK.B"}

        job.send_signal(signal.SIGTERM)  # graceful: the Python driver finishes its batch and exits 0
        assert job.wait(120) == 0, log.read_text()[-3000:]
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        server.stop()
    text = log.read_text()
    assert "redis_ok=False" in text and "refilling Redis from PostgreSQL" in text and "stream stopped" in text
    _assert_complete(settings.postgres_dsn, quotes[:2000] + waves[2], [])
