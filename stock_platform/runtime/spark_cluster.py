"""A local Spark standalone cluster (one master, `SPARK_WORKERS` workers), run from the installed PySpark.

PySpark's wheel carries Spark's jars and `bin/spark-class`, so the same
Spark that runs the stream job in local mode runs a real master and real
workers here: no download, no second Spark to keep in step. It starts only
when `SPARK_WORKERS` > 0, and then `SPARK_MASTER` defaults to this master
(`spark://127.0.0.1:SPARK_MASTER_PORT`), so the stream job's tasks run in
executor JVMs on the workers as they would on a cluster. Worker i's UI
listens on SPARK_MASTER_UI_PORT + i, which is also how its entry in the
master's list is recognised. Every process carries the marker
`STOCK_PLATFORM_SPARK=<data dir>`, passed on to the executors the workers
start, so `stop` leaves nothing behind even after a worker was SIGKILLed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import requests

from stock_platform.config import Settings
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.processes import (
    live_pid,
    pids_with_env,
    port_open,
    read_pid,
    start_detached,
    stop_pids,
    wait_until,
)

__all__ = ["SPARK_MARKER", "SparkCluster", "SparkProcess", "pyspark_home"]

logger = logging.getLogger(__name__)

SPARK_MARKER = "STOCK_PLATFORM_SPARK"
_PASSED_ENV = frozenset({"PATH", "HOME", "USER", "LANG", "TMPDIR", "TZ", "PYSPARK_PYTHON"})
_DAEMON_MEMORY = "256m"  # master and worker daemons only schedule; executors get SPARK_WORKER_MEMORY


def pyspark_home() -> Path:
    """The installed PySpark package, which is a complete SPARK_HOME (jars/, bin/spark-class)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


class SparkProcess:
    """The master or one worker: its command, pid file, log, and how to tell it is healthy."""

    def __init__(self, cluster: SparkCluster, name: str, argv: list[str], ports: tuple[int, ...], ui_port: int) -> None:
        self.cluster, self.name, self.argv, self.ports, self.ui_port = cluster, name, argv, ports, ui_port
        self.pid_file = cluster.root / f"{name.removeprefix('spark-')}.pid"
        self.log_file = cluster.settings.data_dir / "logs" / f"{name}.log"

    def pid(self) -> int | None:
        """The pid of the process we started, when it is alive (for a test or an operator to kill it)."""
        return live_pid(self.pid_file)

    def running(self) -> bool:
        """True when the process we started is alive."""
        return self.pid() is not None

    def healthy(self) -> bool:
        """The master: its UI says ALIVE. A worker: the master lists it (by its UI port) as ALIVE."""
        if not self.running():
            return False
        state = self.cluster.master_state()
        if self.name == "spark-master":
            return state.get("status") == "ALIVE"
        return self.ui_port in self.cluster.alive_worker_ui_ports(state)

    def launch(self, env: dict[str, str]) -> None:
        """Start the process detached, in its own session, with its pid file."""
        for port in self.ports:
            if port_open(port):
                raise ServiceError(
                    self.name,
                    f"port {port} is taken by another program",
                    hint="set SPARK_MASTER_PORT and SPARK_MASTER_UI_PORT to free ports (worker i uses the UI port + i)",
                )
        start_detached(self.argv, self.log_file, self.pid_file, env=env, cwd=self.cluster.root)


class SparkCluster:
    """Start, check and stop the local standalone master and its workers."""

    name = "spark"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.data_dir / "spark"
        self.master_url = f"spark://127.0.0.1:{settings.spark_master_port}"
        self.ui_url = f"http://127.0.0.1:{settings.spark_master_ui_port}"
        self.spark_class = str(pyspark_home() / "bin" / "spark-class")
        s = settings
        self.master = SparkProcess(
            self, "spark-master",
            [self.spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(s.spark_master_port), "--webui-port", str(s.spark_master_ui_port)],
            (s.spark_master_port, s.spark_master_ui_port), s.spark_master_ui_port,
        )  # fmt: skip
        self.workers = [self._worker(i, ui) for i, ui in enumerate(s.spark_worker_ui_ports, 1)]

    def _worker(self, i: int, ui_port: int) -> SparkProcess:
        s = self.settings
        argv = [
            self.spark_class, "org.apache.spark.deploy.worker.Worker", self.master_url, "--host", "127.0.0.1",
            "--cores", str(s.spark_worker_cores), "--memory", s.spark_worker_memory,
            "--work-dir", str(self.root / f"worker-{i}"), "--webui-port", str(ui_port),
        ]  # fmt: skip
        return SparkProcess(self, f"spark-worker-{i}", argv, (ui_port,), ui_port)

    def members(self) -> list[SparkProcess]:
        """The master and each worker, reported on their own by `services status`."""
        return [self.master, *self.workers]

    def master_state(self) -> dict[str, Any]:
        """The master's own view (`/json/`): status, workers with their state; empty when it does not answer."""
        try:
            answer = requests.get(f"{self.ui_url}/json/", timeout=2)
            return answer.json() if answer.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return {}

    @staticmethod
    def alive_worker_ui_ports(state: dict[str, Any]) -> set[int]:
        """UI ports of the workers the master lists as ALIVE (a killed worker stays listed, as DEAD)."""
        ports = set()
        for worker in state.get("workers", []):
            address = str(worker.get("webuiaddress", ""))
            if worker.get("state") == "ALIVE" and address.rsplit(":", 1)[-1].isdigit():
                ports.add(int(address.rsplit(":", 1)[-1]))
        return ports

    def running(self) -> bool:
        """True when the master or any worker we started is alive."""
        return any(p.running() for p in self.members())

    def healthy(self) -> bool:
        """True when the master is ALIVE and lists every worker we started as ALIVE."""
        if not all(p.running() for p in self.members()):
            return False
        state = self.master_state()
        wanted = {w.ui_port for w in self.workers}
        return state.get("status") == "ALIVE" and wanted <= self.alive_worker_ui_ports(state)

    def _env(self) -> dict[str, str]:
        # Only what Spark's daemons need: executors inherit this, and must not inherit the platform's
        # secrets (database passwords, the Finnhub key); tasks get their settings from the job.
        env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV or k.startswith(("LC_", "JAVA_", "SPARK_"))}
        env.update(
            {
                "SPARK_HOME": str(pyspark_home()),
                "SPARK_LOCAL_IP": "127.0.0.1",
                "SPARK_DAEMON_MEMORY": _DAEMON_MEMORY,
                # Finished applications' files on the workers are removed after Spark's default week.
                "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=true",
                SPARK_MARKER: str(self.settings.data_dir),
                # A path, not a secret: the writers' file, holding the platform role's password only, with which
                # executors' tasks log in to the local PostgreSQL.
                "PGPASSFILE": str(self.settings.postgres_passfile),
            }
        )
        return env

    def _wait(self, processes: list[SparkProcess], what: str, timeout: float) -> None:
        if wait_until(lambda: all(p.healthy() for p in processes), timeout, interval=0.5):
            return
        bad = next((p for p in processes if not p.healthy()), processes[0])
        state = "exited" if not bad.running() else what
        raise ServiceError(
            bad.name,
            f"{state} after {timeout:.0f} s (master {self.master_url}, UI {self.ui_url})",
            bad.log_file,
            hint="read the end of the log (`java` missing, memory, a port); `stock-platform services down --only spark` then `up`",
        )

    def start(self) -> None:
        """Start the master and every worker that is not running; wait until the master lists all workers ALIVE."""
        self.root.mkdir(parents=True, exist_ok=True)
        env = self._env()
        if not self.master.running():
            self.master.launch(env)
        self._wait([self.master], "not answering", 60)
        for worker in self.workers:
            if not worker.running():
                (self.root / worker.name.removeprefix("spark-")).mkdir(exist_ok=True)
                worker.launch(env)
        self._wait(self.workers, "not registered with the master", 60 + 15 * len(self.workers))
        logger.info("spark master %s with %d workers; UI %s", self.master_url, len(self.workers), self.ui_url)

    def stop(self) -> bool:
        """Stop the workers and the master together, then any executor left behind; True if anything ran."""
        pid_files = [self.root / "master.pid", *sorted(self.root.glob("worker-*.pid"))]  # whatever SPARK_WORKERS was
        stopped = stop_pids([read_pid(p) for p in pid_files], timeout=20)
        stragglers = pids_with_env(SPARK_MARKER, str(self.settings.data_dir))
        stopped += stop_pids(stragglers, timeout=10, group=False) if stragglers else 0
        return stopped > 0

    def env(self) -> dict[str, str]:
        """The variables that point a Spark driver at this cluster."""
        return {"SPARK_MASTER": self.master_url}
