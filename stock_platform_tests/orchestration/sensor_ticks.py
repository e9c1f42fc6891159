"""Helpers for evaluating supervisor sensors against a real instance: runs in a given state, heartbeats, one tick."""

import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import redis

from stock_platform.orchestration.resources import KafkaResource, PostgresResource, RedisResource
from stock_platform.orchestration.supervised import PID_TAG, SUPERVISED_TAG, streaming_job

__all__ = ["beat", "closed_port", "dead_pid", "evaluate", "started_run"]


def dead_pid() -> int:
    """The pid of a process that has just exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def closed_port() -> int:
    """A TCP port nothing listens on (a closed port stands in for a service that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def beat(resource: RedisResource, pid: int, **fields: int) -> None:
    """A stream heartbeat hash with `pid` and any extra fields (`updated_ms`, `last_batch_ms`)."""
    client = redis.Redis.from_url(resource.url)
    key = resource.key_layout().heartbeat("stream")
    client.hset(key, mapping={"pid": pid, "started_ms": int(time.time() * 1000), "batch_id": 3, **fields})
    client.expire(key, 120)
    client.close()


def started_run(instance: dg.DagsterInstance, pid: int | None = None, ago_s: float = 0.0) -> dg.DagsterRun:
    """A `streaming_job` run in STARTED, started `ago_s` seconds ago, with a pid tag when given."""
    tags = {SUPERVISED_TAG: "stream"} | ({PID_TAG: str(pid)} if pid else {})
    run = instance.create_run_for_job(streaming_job, tags=tags)
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name=streaming_job.name),
        update_timestamp=datetime.now(UTC) - timedelta(seconds=ago_s),
    )
    return instance.get_run_by_id(run.run_id)


def evaluate(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, redis_resource: RedisResource,
    postgres: PostgresResource | None = None, kafka: KafkaResource | None = None, cursor: str | None = None,
) -> dg.SensorResult:  # fmt: skip
    """One tick, from `cursor` when given; PostgreSQL and Kafka point at nothing unless given (ticks that must not need them)."""
    resources = {
        "redis": redis_resource,
        "postgres": postgres or PostgresResource(dsn=f"postgresql://nobody@127.0.0.1:{closed_port()}/none"),
        "kafka": kafka or KafkaResource(bootstrap_servers=f"127.0.0.1:{closed_port()}"),
    }
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor))
