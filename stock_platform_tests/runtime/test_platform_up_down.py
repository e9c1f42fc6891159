"""`stock-platform platform up` / `down` (what `make up` / `make down` run) on a private set of ports and data dir.

The whole platform comes up (services, migrations, Dagster webserver and
daemon whose sensors launch the producer and the Spark job, the dashboard),
simulated quotes reach PostgreSQL and Redis, `platform status` shows the
producer's and the stream's Dagster runs as running with their heartbeats, and
`down` leaves no process of ours running and no port open. Its PostgreSQL wants passwords, which every
program finds in its own password file (the writers' holds the platform role
alone); the dashboard runs as the read-only role without the Finnhub key.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import psycopg2
import pytest
import redis
import requests
from kafka import KafkaProducer

from stock_platform.config import Settings
from stock_platform.dashboard.health import Level, dagster_runs, run_level
from stock_platform.quotes import Quote
from stock_platform.runtime.apps import marked_pids
from stock_platform.runtime.postgres_auth import read_passwords
from stock_platform.runtime.processes import port_open, read_pid, wait_until
from stock_platform_tests.private_platform import PrivatePlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_platform_up_brings_quotes_to_postgres_and_redis_and_down_stops_everything(tmp_path: Path, services: Settings) -> None:
    # A Finnhub key the dashboard must never see; STOCK_SOURCE keeps the market simulated (no internet here).
    extra = {"SIMULATOR_QUOTES_PER_SECOND": "20", "FINNHUB_API_KEY": "dummy-finnhub-key", "STOCK_SOURCE": "simulator"}
    platform = PrivatePlatform(tmp_path / "data", services.cache_dir, extra)
    settings = platform.settings
    try:
        up = platform.cli("platform", "up")
        assert up.returncode == 0, up.stderr[-3000:]
        assert f"http://127.0.0.1:{settings.dashboard_port}" in up.stdout
        assert f"http://127.0.0.1:{settings.dagster_port}" in up.stdout
        assert requests.get(f"http://127.0.0.1:{settings.dashboard_port}/_stcore/health", timeout=5).status_code == 200
        assert requests.get(f"http://127.0.0.1:{settings.dagster_port}/server_info", timeout=5).status_code == 200

        rows = lambda: platform.query("SELECT count(*) FROM stock_prices")[0][0]  # noqa: E731
        assert wait_until(lambda: rows() > 0, 300, interval=5), f"no quote reached stock_prices in 300 s\n{platform.log_tails()}"
        hot = redis.Redis(port=settings.redis_port, decode_responses=True)
        assert wait_until(lambda: bool(hot.keys("stock:latest:*")), 60, interval=2)
        assert 0 < hot.ttl(hot.keys("stock:latest:*")[0]) <= settings.redis_ttl_seconds

        # The health page's question to the real Dagster GraphQL API: both supervised jobs have a started run.
        runs = dagster_runs.__wrapped__(f"http://127.0.0.1:{settings.dagster_port}")
        assert not runs.error, runs.error
        assert {job: run_level(run)[0] for job, run in runs.supervised.items()} == {
            "producer_job": Level.GREEN,
            "streaming_job": Level.GREEN,
        }, runs.supervised
        assert runs.recent and {"runId", "jobName", "status"} <= set(runs.recent[0])
        _status_shows_the_supervised_runs(platform, runs.supervised)

        # Those programs logged in with passwords: the server lets no one in without.
        with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
            psycopg2.connect(host="127.0.0.1", port=settings.postgres_port, user="stock", dbname="stock", passfile="/dev/null")
        environ = _environ(read_pid(settings.data_dir / "run" / "dashboard.pid"))
        assert "FINNHUB_API_KEY" not in environ and "DAGSTER_POSTGRES_URL" not in environ
        assert "user=stock_reader" in environ["POSTGRES_DSN"] and environ["PGPASSFILE"].endswith("dashboard.pgpass")
        # The stream job, launched by Dagster's sensor, reads the writers' file: the platform role and no superuser.
        stream_pid = next(pid for pid in marked_pids(settings.data_dir) if "stock_platform.cli stream" in _cmdline(pid))
        assert _environ(stream_pid)["PGPASSFILE"] == str(settings.postgres_passfile)
        assert set(read_passwords(settings.postgres_passfile)) == {"stock"}

        _hostile_records_cost_dead_letters_not_the_flow(platform, hot)
    finally:
        down = platform.down()  # as root, also removes the cluster kept in /var/lib/stock-platform
    assert down.returncode == 0, down.stderr[-3000:]
    assert wait_until(lambda: not marked_pids(settings.data_dir), 30), f"left running: {marked_pids(settings.data_dir)}"
    for port in (
        settings.postgres_port,
        settings.redis_port,
        settings.kafka_port,
        settings.dagster_port,
        settings.dashboard_port,
    ):
        assert not port_open(port), f"port {port} still open after down"


def _status_shows_the_supervised_runs(platform: PrivatePlatform, supervised: dict[str, dict | None]) -> None:
    """`platform status` names the Dagster runs of producer and stream as running, with a fresh heartbeat each.

    The producer's beat is found by its run: Dagster gave it the run's producer id.
    """
    lines: dict[str, str] = {}

    def status_ok() -> bool:
        done = platform.cli("platform", "status", timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
        lines.update(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
        return all(re.search(r"heartbeat \d+ s ago\)$", lines.get(name, "")) for name in ("producer", "stream"))

    # A beat may be seconds old, but never stale while the run works: the stream beats every 10 s.
    assert wait_until(status_ok, 30, interval=2), lines
    for name, job in (("producer", "producer_job"), ("stream", "streaming_job")):
        run_id = (supervised[job] or {}).get("runId")
        assert lines[name].startswith(f"running (Dagster run {run_id}, heartbeat "), lines[name]


def _environ(pid: int | None) -> dict[str, str]:
    """The environment process `pid` started with."""
    items = Path(f"/proc/{pid}/environ").read_text().split("\0")
    return dict(item.split("=", 1) for item in items if "=" in item)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _hostile_records_cost_dead_letters_not_the_flow(platform: PrivatePlatform, hot: redis.Redis) -> None:
    """Records PostgreSQL refuses (NUL, a lone surrogate, a candle volume past BIGINT): the contract must reject them."""
    settings = platform.settings
    now_ms = int(time.time() * 1000)
    base = Quote("AAPL", 150.0, now_ms - 1000, "simulator", "hostile", 9_990_001, 5).to_dict()
    hostile = [  # marked by their seq, 999000x
        {**base, "producer_id": "nul\x00byte"},  # PostgreSQL text cannot hold NUL
        {**base, "producer_id": "lone \ud800 surrogate", "seq": 9_990_002},  # not encodable as UTF-8
        {**base, "volume": 2**62, "seq": 9_990_003, "event_time_ms": now_ms - 900},  # two of these overflowed
        {**base, "volume": 2**62, "seq": 9_990_004, "event_time_ms": now_ms - 800},  # the candle's BIGINT volume
    ]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for record in hostile:
        producer.send(settings.kafka_topic, key=b"AAPL", value=json.dumps(record).encode())
    producer.flush(30)
    producer.close()
    # The server's clock: ingestion_time is in its local time; Redis's updated_ms in epoch milliseconds.
    [(sent_local, sent_ms)] = platform.query("SELECT localtimestamp, (EXTRACT(EPOCH FROM now()) * 1000)::bigint")

    def dead() -> int:
        query = """SELECT count(*) FROM dead_letters WHERE kind = 'contract' AND position('"seq": 999000'::bytea IN raw_payload) > 0"""
        return platform.query(query)[0][0]

    def stored_after() -> bool:
        return platform.query("SELECT count(*) FROM stock_prices WHERE ingestion_time > %s", (sent_local,))[0][0] > 0

    def redis_after() -> bool:
        stamps = [int(hot.hget(key, "updated_ms") or 0) for key in hot.keys("stock:latest:*")]
        return max(stamps, default=0) > sent_ms

    assert wait_until(lambda: dead() == len(hostile) and stored_after() and redis_after(), 30, interval=1), (
        f"dead letters {dead()}, new rows {stored_after()}, Redis fresh {redis_after()}\n{platform.log_tails()}"
    )
