"""SPARK_WORKERS=2 starts a standalone master and two workers that run PySpark tasks, and stop leaves nothing.

A private cluster on free ports in its own data dir, started through the real
`stock-platform services` command. The PySpark job runs in a subprocess: one
Python process holds one SparkContext, and other tests hold a local one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from stock_platform.config import Settings
from stock_platform.runtime.processes import pid_alive, pids_with_env, wait_until
from stock_platform.runtime.services import services_env, services_status
from stock_platform.runtime.spark_cluster import SPARK_MARKER, SparkCluster
from stock_platform_tests.private_platform import PrivatePlatform, cluster_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Each task reports the working directory it ran in: a worker starts its executor in
# <work dir>/<app id>/<executor id>, so the directory names the worker.
_JOB = """
import json, os, sys, time
from pyspark.sql import SparkSession

spark = (
    SparkSession.builder.master(sys.argv[1]).appName("cluster-probe")
    .config("spark.ui.enabled", "false")
    .config("spark.cores.max", "2")
    .config("spark.executor.memory", "512m")
    .config("spark.scheduler.minRegisteredResourcesRatio", "1.0")  # wait for both executors before the first task
    .config("spark.scheduler.maxRegisteredResourcesWaitingTime", "60s")
    .getOrCreate()
)

def where(batches):
    import pandas as pd
    for batch in batches:
        time.sleep(0.3)
        yield pd.DataFrame({"cwd": [os.getcwd()], "pid": [os.getpid()], "total": [int(batch["id"].sum())]})

rows = spark.range(0, 1000, numPartitions=8).mapInPandas(where, "cwd string, pid long, total long").collect()
print(json.dumps({"cwds": sorted({r.cwd for r in rows}), "pids": sorted({r.pid for r in rows}),
                  "total": sum(r.total for r in rows), "driver": os.getpid()}))
spark.stop()
"""


@pytest.fixture(scope="module")
def cluster(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePlatform]:
    """Master and two one-core workers started with `stock-platform services up --only spark`; stopped at the end."""
    platform = PrivatePlatform(
        tmp_path_factory.mktemp("spark-cluster"),
        base_settings.cache_dir,
        {**cluster_env(spark_workers=2), "SPARK_WORKER_CORES": "1"},
    )
    done = platform.cli("services", "up", "--only", "spark")
    try:
        assert done.returncode == 0, done.stderr[-3000:] + platform.log_tails()
        yield platform
    finally:
        platform.cli("services", "down", "--only", "spark", timeout=120)


def test_master_lists_both_workers_and_env_points_at_it(cluster: PrivatePlatform) -> None:
    settings = cluster.settings
    again = cluster.cli("services", "up", "--only", "spark")
    assert again.returncode == 0, "up twice is harmless"
    master = f"spark://127.0.0.1:{settings.spark_master_port}"
    assert settings.spark_master == master, "SPARK_WORKERS > 0 makes the local master the default"
    status = {k: v for k, v in services_status(settings).items() if k.startswith("spark")}
    assert status == {"spark-master": "healthy", "spark-worker-1": "healthy", "spark-worker-2": "healthy"}
    assert services_env(settings)["SPARK_MASTER"] == master
    assert f"UI http://127.0.0.1:{settings.spark_master_ui_port}" in again.stdout
    state = SparkCluster(settings).master_state()
    assert state["aliveworkers"] == 2 and state["cores"] == 2


def test_a_pyspark_job_runs_its_tasks_on_both_workers(cluster: PrivatePlatform) -> None:
    env = {**cluster.env, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run(
        [sys.executable, "-c", _JOB, cluster.settings.spark_master], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["total"] == sum(range(1000)), "every row was processed once"
    work = cluster.settings.data_dir / "spark"
    workers = {os.path.relpath(cwd, work).split(os.sep)[0] for cwd in result["cwds"]}
    assert workers == {"worker-1", "worker-2"}, f"tasks ran in {result['cwds']}"
    assert result["driver"] not in result["pids"], "the Python UDF ran in executors, not in the driver"


def test_a_sigkilled_worker_is_brought_back_by_up(cluster: PrivatePlatform) -> None:
    settings = cluster.settings
    worker = SparkCluster(settings).workers[0]
    pid = worker.pid()
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(pid), 10)
    assert services_status(settings)["spark-worker-1"] == "stopped"
    done = cluster.cli("services", "up", "--only", "spark")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "spark-worker-1: healthy" in done.stdout
    assert worker.pid() not in (None, pid)


def test_down_leaves_no_process(cluster: PrivatePlatform) -> None:
    spark = SparkCluster(cluster.settings)
    pids = [p.pid() for p in spark.members()]
    assert all(pids)
    done = cluster.cli("services", "down", "--only", "spark", timeout=120)
    assert done.returncode == 0 and "spark" in done.stdout
    assert not any(pid_alive(p) for p in pids)
    assert pids_with_env(SPARK_MARKER, str(cluster.settings.data_dir)) == [], "no executor or daemon left behind"
    assert not spark.running()
