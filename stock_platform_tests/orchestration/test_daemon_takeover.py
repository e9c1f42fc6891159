"""End to end: the Dagster daemon, run with the repo's dagster.yaml, keeps the real stream job alive.

The streaming_supervisor launches `streaming_job` (the real `stock-platform
stream` through Pipes); we SIGKILL the Spark driver process, and a new run must
take over within 90 s with no quote lost or duplicated in stock_prices.
Cancelling the new run must then stop its process. Dagster's storage is a
private PostgreSQL database, DAGSTER_HOME a temporary folder, and the platform
data (database, topic, Redis prefix, checkpoints) is this test's own.
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable

import dagster as dg
import psycopg2
import pytest
import redis
from kafka import KafkaProducer

from stock_platform.config import Settings
from stock_platform.orchestration.supervised import PID_TAG
from stock_platform.quotes import Quote
from stock_platform.runtime.processes import pid_alive, wait_until
from stock_platform.storage.redis_keys import RedisKeys

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TAKEOVER_DEADLINE_S = 90


@pytest.fixture
def daemon(start_daemon: Callable[..., subprocess.Popen]) -> subprocess.Popen:
    """The daemon with only the stream supervisor on: quotes come from the test, so each can be accounted for."""
    return start_daemon(stop_sensors=["producer_supervisor"])


def _send(settings: Settings, first_seq: int, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    base_ms = int(time.time() * 1000) - 600_000
    for seq in range(first_seq, first_seq + count):
        quote = Quote(
            symbol=("AAA", "BBB", "CCC")[seq % 3], price=100 + seq % 50, event_time_ms=base_ms + seq * 1000,
            source="simulator", producer_id="e2e-takeover", seq=seq, volume=10,
        )  # fmt: skip
        producer.send(settings.kafka_topic, key=quote.key, value=quote.to_json())
    producer.flush()
    producer.close()


def _counts(dsn: str) -> tuple[int, int]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT seq) FROM stock_prices WHERE producer_id = 'e2e-takeover'")
            return cur.fetchone()
    finally:
        conn.close()


def _recorded_failures(dsn: str) -> set[str]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT run_id FROM run_failures WHERE job_name = 'streaming_job'")
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


def _stream_pid(settings: Settings) -> int | None:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        pid = client.hget(RedisKeys(settings.redis_key_prefix).heartbeat("stream"), "pid")
    finally:
        client.close()
    return int(pid) if pid else None


def _active_stream_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(job_name="streaming_job", statuses=[dg.DagsterRunStatus.STARTED])))


def test_supervisor_replaces_a_killed_stream_within_90_s(platform_settings: Settings, daemon: subprocess.Popen) -> None:
    dsn = platform_settings.postgres_dsn
    instance = dg.DagsterInstance.get()
    _send(platform_settings, 0, 300)

    # The supervisor launches the stream; it drains the first quotes and beats.
    assert wait_until(lambda: _counts(dsn)[0] == 300, 240, interval=2), f"first quotes not stored: {_counts(dsn)}"
    first_run = _active_stream_runs(instance)[0]

    def progress_materialized() -> bool:
        records = instance.fetch_materializations(dg.AssetKey("stock_prices"), limit=20).records
        return any(r.run_id == first_run.run_id and "total_rows_in" in r.asset_materialization.metadata for r in records)

    assert wait_until(progress_materialized, 30, interval=1), "no stock_prices materialisation while the stream runs"
    old_pid = _stream_pid(platform_settings)
    assert old_pid and pid_alive(old_pid)

    # More quotes in flight, then the Spark driver dies without warning.
    _send(platform_settings, 300, 300)
    os.kill(old_pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def new_pid() -> int | None:
        runs = [r for r in _active_stream_runs(instance) if r.run_id != first_run.run_id]
        pid = runs[0].tags.get(PID_TAG) if runs else None
        return int(pid) if pid else None

    # Takeover = a new run whose own stream process is alive and beating (it beats once per batch,
    # so quotes are sent as soon as it is up: the killed one may have stored all the earlier ones).
    assert wait_until(lambda: new_pid() is not None, TAKEOVER_DEADLINE_S, interval=1), "no new stream run within 90 s"
    _send(platform_settings, 600, 300)
    remaining = TAKEOVER_DEADLINE_S - (time.monotonic() - killed_at)
    assert wait_until(lambda: _stream_pid(platform_settings) == new_pid(), max(remaining, 0), interval=1), (
        "the new stream run did not beat within 90 s of the kill"
    )
    takeover_s = time.monotonic() - killed_at
    assert instance.get_run_by_id(first_run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert len(_active_stream_runs(instance)) == 1, "two stream runs at once"

    assert wait_until(lambda: _counts(dsn)[0] >= 900, 120, interval=2), f"quotes missing after takeover: {_counts(dsn)}"
    assert _counts(dsn) == (900, 900), "a quote was lost or stored twice"
    print(f"takeover after SIGKILL: {takeover_s:.1f} s")

    # The failure sensor recorded the killed run.
    assert wait_until(lambda: first_run.run_id in _recorded_failures(dsn), 90, interval=2), "run failure not recorded"

    # Cancelling the run stops its process.
    new_run = _active_stream_runs(instance)[0]
    stream_pid = int(new_run.tags[PID_TAG])
    instance.run_coordinator.cancel_run(new_run.run_id)
    assert wait_until(lambda: not pid_alive(stream_pid), 90, interval=1), "stream process survived the cancelled run"
    assert wait_until(lambda: instance.get_run_by_id(new_run.run_id).status == dg.DagsterRunStatus.CANCELED, 60, interval=1)
