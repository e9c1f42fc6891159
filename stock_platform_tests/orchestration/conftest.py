"""Fixtures for the orchestration tests: resources for sensor ticks, and for the tests that run the real Dagster daemon.

The daemon tests get a private storage database, DAGSTER_HOME and data.
"""

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from stock_platform.config import Settings
from stock_platform.orchestration.resources import KafkaResource, PostgresResource, RedisResource
from stock_platform.runtime.processes import wait_until
from stock_platform.storage.redis_keys import RedisKeys
from stock_platform_tests.databases import scratch_database
from stock_platform_tests.orchestration.sensor_ticks import closed_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_resource(platform_settings: Settings) -> Iterator[RedisResource]:
    """The test's Redis prefix as a resource; the stream heartbeat it may have written is removed afterwards."""
    resource = RedisResource(url=platform_settings.redis_url, key_prefix=platform_settings.redis_key_prefix)
    yield resource
    client = redis.Redis.from_url(platform_settings.redis_url)
    client.delete(RedisKeys(platform_settings.redis_key_prefix).heartbeat("stream"))
    client.close()


@pytest.fixture
def redis_down(platform_settings: Settings) -> RedisResource:
    """A Redis resource pointed at a port nothing listens on."""
    return RedisResource(url=f"redis://127.0.0.1:{closed_port()}/0", key_prefix=platform_settings.redis_key_prefix)


@pytest.fixture
def postgres(platform_settings: Settings) -> PostgresResource:
    """The session's database as a resource."""
    return PostgresResource(dsn=platform_settings.postgres_dsn)


@pytest.fixture
def kafka(platform_settings: Settings) -> KafkaResource:
    """The test's own topic as a resource."""
    return KafkaResource(bootstrap_servers=platform_settings.kafka_bootstrap_servers, topic=platform_settings.kafka_topic)


@pytest.fixture
def dagster_database(services: Settings) -> Iterator[str]:
    """A private database for Dagster's run/event/schedule storage, dropped afterwards."""
    with scratch_database(services.postgres_port, "dagster_test") as dsn:
        yield dsn


@pytest.fixture
def daemon_env(
    platform_settings: Settings, dagster_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Environment of the daemon (and so of its run workers and the stream): everything private to this test."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        **platform_settings.to_env(),
        "STOCK_DATA_DIR": str(tmp_path / "data"),
        "SPARK_TRIGGER_SECONDS": "2",
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": dagster_database,
        "PYTHONUNBUFFERED": "1",
    }
    # This process reads the same instance (DagsterInstance.get()) to watch the runs.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_database)
    return env


def dagster_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `dagster ARGS` from the repository root; fail the test with its output if it fails."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"dagster {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture
def start_daemon(daemon_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts `dagster-daemon run -w workspace.yaml` in its own process group; stops the group afterwards."""
    started: list[tuple[subprocess.Popen, object]] = []

    def start(stop_sensors: list[str]) -> subprocess.Popen:
        for sensor in stop_sensors:
            dagster_cli(["sensor", "stop", sensor, "-w", "workspace.yaml"], daemon_env)
        log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115 - closed at teardown
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            env=daemon_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        os.killpg(proc.pid, signal.SIGTERM)
        if not wait_until(lambda p=proc: p.poll() is not None, 30):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()
