"""`stock-platform platform up` / `down` (what `make up` / `make down` run) on a private set of ports and data dir.

The whole platform comes up (services, migrations, Dagster webserver and
daemon whose sensors launch the producer and the Spark job, the dashboard),
simulated quotes reach PostgreSQL and Redis, and `down` leaves no process of
ours running and no port open.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import requests

from stock_platform.config import Settings
from stock_platform.dashboard.health import Level, dagster_runs, run_level
from stock_platform.runtime.apps import marked_pids
from stock_platform.runtime.processes import port_open, wait_until
from stock_platform_tests.private_platform import PrivatePlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_platform_up_brings_quotes_to_postgres_and_redis_and_down_stops_everything(tmp_path: Path, services: Settings) -> None:
    platform = PrivatePlatform(tmp_path / "data", services.cache_dir, {"SIMULATOR_QUOTES_PER_SECOND": "20"})
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
    finally:
        down = platform.cli("platform", "down", timeout=300)
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
