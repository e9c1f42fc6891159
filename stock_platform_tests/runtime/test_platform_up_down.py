"""`stock-platform platform up` / `down` (what `make up` / `make down` run) on a private set of ports and data dir.

The whole platform comes up (services, migrations, Dagster webserver and
daemon whose sensors launch the producer and the Spark job, the dashboard),
simulated quotes reach PostgreSQL and Redis, and `down` leaves no process of
ours running.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
import redis
import requests

from stock_platform.runtime.apps import MARKER
from stock_platform.runtime.processes import port_open, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def _our_processes(data_dir: Path) -> list[int]:
    wanted = f"{MARKER}={data_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if wanted in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def _count_rows(dsn: str) -> int:
    with psycopg2.connect(dsn, connect_timeout=3) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM stock_prices")
        return cur.fetchone()[0]


def test_platform_up_brings_quotes_to_postgres_and_redis_and_down_stops_everything(tmp_path: Path, services) -> None:
    pg, rd, kafka, controller, dagster, dashboard = _free_ports(6)
    data_dir = tmp_path / "data"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSTGRES_", "REDIS_", "KAFKA_", "DAGSTER_", "DASHBOARD_", "FINNHUB_", "STOCK_"))
    }
    env.update(
        {
            "STOCK_DATA_DIR": str(data_dir),
            "STOCK_CACHE_DIR": str(services.cache_dir),
            "POSTGRES_PORT": str(pg),
            "REDIS_PORT": str(rd),
            "KAFKA_PORT": str(kafka),
            "KAFKA_CONTROLLER_PORT": str(controller),
            "DAGSTER_PORT": str(dagster),
            "DASHBOARD_PORT": str(dashboard),
            "SIMULATOR_QUOTES_PER_SECOND": "20",
        }
    )
    cli = [sys.executable, "-m", "stock_platform.cli", "platform"]
    try:
        up = subprocess.run([*cli, "up"], env=env, capture_output=True, text=True, timeout=600)
        assert up.returncode == 0, up.stderr[-3000:]
        assert f"http://127.0.0.1:{dashboard}" in up.stdout and f"http://127.0.0.1:{dagster}" in up.stdout
        assert requests.get(f"http://127.0.0.1:{dashboard}/_stcore/health", timeout=5).status_code == 200
        assert requests.get(f"http://127.0.0.1:{dagster}/server_info", timeout=5).status_code == 200

        dsn = f"postgresql://stock@127.0.0.1:{pg}/stock"
        assert wait_until(lambda: _count_rows(dsn) > 0, 300, interval=5), "no quote reached stock_prices within 300 s"
        hot = redis.Redis(port=rd, decode_responses=True)
        assert wait_until(lambda: bool(hot.keys("stock:latest:*")), 60, interval=2)
        assert 0 < hot.ttl(hot.keys("stock:latest:*")[0]) <= 300
    finally:
        down = subprocess.run([*cli, "down"], env=env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr[-3000:]
    assert wait_until(lambda: not _our_processes(data_dir), 30), f"left running: {_our_processes(data_dir)}"
    for port in (pg, rd, kafka, dagster, dashboard):
        assert not port_open(port), f"port {port} still open after down"
