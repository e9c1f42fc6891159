"""`chaos.faults` on real stand-in processes: it finds a platform's parts by marker and pid file, and only those.

Fast (no services): the "stream job" here is a sleeping Python process whose
argv reads `-m stock_platform.cli stream` and whose child plays the Spark JVM.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stock_platform.config import Settings
from stock_platform.runtime.apps import MARKER
from stock_platform.runtime.processes import pid_alive, wait_until
from stock_platform.runtime.redis_server import RedisServer
from stock_platform_tests.chaos.faults import PARTS, kill_part, part_pids, recovery_command

# Sleeps, after starting one child that also sleeps; the trailing arguments are only there to be seen in argv.
_PARENT = (
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); time.sleep(120)"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data dir is this test's own."""
    return Settings.defaults().replace(data_dir=tmp_path / "data")


@pytest.fixture
def spawn(settings: Settings) -> Iterator:
    """Start stand-in processes (marked with this data dir or another); all are killed afterwards."""
    started: list[subprocess.Popen] = []

    def _spawn(*argv: str, data_dir: Path | None = None) -> subprocess.Popen:
        env = {**os.environ, MARKER: str(data_dir or settings.data_dir)}
        proc = subprocess.Popen([sys.executable, "-c", _PARENT, *argv], env=env, start_new_session=True)
        started.append(proc)
        return proc

    yield _spawn
    for proc in started:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait(10)


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_stream_is_found_with_its_child_by_marker_and_killed(settings: Settings, spawn, tmp_path: Path) -> None:
    stream = spawn("-m", "stock_platform.cli", "stream")
    other = spawn("-m", "stock_platform.cli", "stream", data_dir=tmp_path / "another-platform")
    producer = spawn("-m", "stock_platform.cli", "produce")
    assert wait_until(lambda: len(_children(stream.pid)) == 1 and len(_children(producer.pid)) == 1, 10)
    child = _children(stream.pid)[0]

    assert part_pids(settings, "stream") == sorted([stream.pid, child])
    assert part_pids(settings, "producer") == sorted([producer.pid, *_children(producer.pid)])
    assert part_pids(settings, "spark-jvm") == []  # no java among the stand-ins

    assert kill_part(settings, "stream") == sorted([stream.pid, child])
    assert not pid_alive(child) and part_pids(settings, "stream") == []
    assert pid_alive(other.pid) and pid_alive(producer.pid)


def test_services_are_found_by_their_pid_files(settings: Settings, spawn) -> None:
    fake_redis = spawn()
    pid_file = RedisServer(settings).pid_file
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{fake_redis.pid}\n")

    assert part_pids(settings, "redis") == [fake_redis.pid]
    assert part_pids(settings, "kafka") == []
    with pytest.raises(ProcessLookupError):
        kill_part(settings, "kafka")
    kill_part(settings, "redis")
    assert part_pids(settings, "redis") == []


def test_each_part_names_how_it_comes_back() -> None:
    assert {part: recovery_command(part) for part in PARTS} == {
        "stream": None,
        "producer": None,
        "kafka": ["services", "up"],
        "postgres": ["services", "up"],
        "redis": ["services", "up"],
        "dagster-daemon": ["platform", "up"],
    }
    with pytest.raises(ValueError, match="unknown part"):
        recovery_command("zookeeper")
