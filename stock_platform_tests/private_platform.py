"""A whole private platform for one test: own data dir, own free ports, driven by the real `stock-platform` command.

`platform up` runs with a scrubbed environment that names fresh ports, so
the services on the default ports (a running `make up`, other test sessions)
are never touched. Used by the platform up/down test and the chaos suite.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from psycopg2.extensions import make_dsn

from stock_platform.config import Settings, load_settings
from stock_platform.runtime.apps import MARKER
from stock_platform.runtime.postgres import cluster_root

__all__ = ["PrivatePlatform", "cluster_env", "free_port_block", "free_ports"]

# PGPASSFILE too: the private platform's PostgreSQL has passwords of its own, in its own files.
_SCRUBBED = (
    "POSTGRES_", "REDIS_", "KAFKA_", "DAGSTER_", "DASHBOARD_", "FINNHUB_", "STOCK_", "SIMULATOR_", "SPARK_", "PRODUCER_",
    "PGPASSFILE",
)  # fmt: skip


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now."""
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def free_port_block(count: int, low: int = 12_000, high: int = 30_000) -> int:
    """The first of `count` consecutive ports all free on 127.0.0.1, for settings that derive ports from one.

    Drawn below Linux's ephemeral range (32768+), where the OS would hand out client ports.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high - count)
        taken = False
        for port in range(base, base + count):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    taken = True
                    break
        if not taken:
            return base
    raise RuntimeError(f"no {count} consecutive free ports between {low} and {high}")


def cluster_env(kafka_brokers: int = 0, spark_workers: int = 0) -> dict[str, str]:
    """Settings for a private Kafka cluster and/or Spark standalone cluster on consecutive free ports.

    Kafka node i uses KAFKA_PORT+2(i-1) and the port after it; Spark worker i's UI is SPARK_MASTER_UI_PORT+i,
    and the master port follows the last worker's UI.
    """
    env: dict[str, str] = {}
    if kafka_brokers:
        kafka = free_port_block(2 * kafka_brokers)
        env |= {"KAFKA_BROKERS": str(kafka_brokers), "KAFKA_PORT": str(kafka), "KAFKA_CONTROLLER_PORT": str(kafka + 1)}
    if spark_workers:
        ui = free_port_block(spark_workers + 2)
        env |= {
            "SPARK_WORKERS": str(spark_workers),
            "SPARK_MASTER_UI_PORT": str(ui),
            "SPARK_MASTER_PORT": str(ui + spark_workers + 1),
        }
    return env


class PrivatePlatform:
    """One platform under `data_dir` on free ports; `cli(...)` runs `stock-platform ...` against it."""

    def __init__(self, data_dir: Path, cache_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        pg, rd, kafka, controller, dagster, dashboard = free_ports(6)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED) and k != MARKER}
        self.env.update(
            {
                "STOCK_DATA_DIR": str(data_dir),
                "STOCK_CACHE_DIR": str(cache_dir),
                "POSTGRES_PORT": str(pg),
                "REDIS_PORT": str(rd),
                "KAFKA_PORT": str(kafka),
                "KAFKA_CONTROLLER_PORT": str(controller),
                "DAGSTER_PORT": str(dagster),
                "DASHBOARD_PORT": str(dashboard),
                **(extra_env or {}),
            }
        )
        with pytest.MonkeyPatch.context() as mp:
            for key in [k for k in os.environ if k.startswith(_SCRUBBED)]:
                mp.delenv(key)
            for key, value in self.env.items():
                mp.setenv(key, value)
            settings = load_settings()
        # What the platform gives its writers, for a program a test starts by hand (`stock-platform stream`).
        self.env["PGPASSFILE"] = str(settings.postgres_passfile)
        # The test process keeps the shared server's PGPASSFILE; this platform's DSN names its own password file.
        dsn = make_dsn(settings.postgres_dsn, passfile=str(settings.postgres_passfile))
        self.settings: Settings = settings.replace(postgres_dsn=dsn)
        self.logs = data_dir / "logs"

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run `stock-platform <args>` with this platform's environment, as an operator would."""
        return subprocess.run(
            [sys.executable, "-m", "stock_platform.cli", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def up(self) -> None:
        """`stock-platform platform up`; raises with the command's stderr if it fails."""
        done = self.cli("platform", "up")
        if done.returncode != 0:
            raise RuntimeError(f"platform up failed: {done.stderr[-3000:]}")

    def down(self) -> subprocess.CompletedProcess[str]:
        """`stock-platform platform down`, then remove a PostgreSQL cluster kept outside the data dir, admin file included."""
        try:
            return self.cli("platform", "down", timeout=300)
        finally:
            root = cluster_root(self.settings.data_dir)
            if not root.is_relative_to(self.settings.data_dir):
                shutil.rmtree(root.parent, ignore_errors=True)

    def connect(self, dsn: str | None = None) -> psycopg2.extensions.connection:
        """A new autocommit connection to the platform database (or `dsn`)."""
        passfile = str(self.settings.postgres_passfile)
        conn = psycopg2.connect(dsn or self.settings.postgres_dsn, connect_timeout=5, passfile=passfile)
        conn.autocommit = True
        return conn

    def query(self, sql: str, params: tuple = (), dsn: str | None = None) -> list[tuple]:
        """All rows of one query, in a fresh connection (so a restarted server is no problem)."""
        conn = self.connect(dsn)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def log_tails(self, chars: int = 1500) -> str:
        """The end of every app and service log, for a failure message."""
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)
