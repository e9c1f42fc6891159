"""What `platform status` says about the producer and the stream job: who runs each, in what state, and its heartbeat.

After `platform up`, Dagster's supervisor sensors launch both as runs, so they
have no pid file of ours: their state is the newest run of each supervised
job, asked of the Dagster webserver (`supervised_runs`), and their liveness is
the heartbeat of that run's process, judged by the supervisors' stale rule
(`storage.heartbeats`). After `platform up --direct` they have pid files, and
each is matched to its beat by pid.
"""

from __future__ import annotations

import logging
import time

import redis

from stock_platform.config import Settings
from stock_platform.runtime.apps import platform_apps
from stock_platform.runtime.processes import pid_alive, read_pid
from stock_platform.storage.heartbeats import (
    PRODUCER,
    STREAM,
    beat_age,
    is_stale,
    read_heartbeats,
    read_producer_beat,
    supervised_producer_id,
)
from stock_platform.storage.redis_client import redis_client
from stock_platform.storage.redis_keys import RedisKeys
from stock_platform.supervised_runs import DagsterRuns, fetch_supervised_runs

__all__ = ["JOBS", "RUN_STATES", "heartbeat_text", "supervised_status"]

logger = logging.getLogger(__name__)

# The Dagster job that runs each component.
JOBS = {PRODUCER: "producer_job", STREAM: "streaming_job"}
# A run's Dagster status as `platform status` words it; only a started run is running.
RUN_STATES = {
    "STARTED": "running",
    "QUEUED": "queued",
    "NOT_STARTED": "starting",
    "STARTING": "starting",
    "CANCELING": "stopping",
    "FAILURE": "stopped (its last run failed)",
    "CANCELED": "stopped (its last run was cancelled)",
    "SUCCESS": "stopped (its last run ended)",
}
_ACTIVE = ("STARTED", "QUEUED", "NOT_STARTED", "STARTING", "CANCELING")


def heartbeat_text(beat: dict[str, str] | None, now: float) -> str:
    """`heartbeat 3 s ago`, `heartbeat stale (95 s ago)` or `no heartbeat`, by the shared stale rule."""
    if not beat:
        return "no heartbeat"
    age = beat_age(beat, now)
    when = "time unknown" if age is None else f"{age:,.0f} s ago"
    return f"heartbeat stale ({when})" if is_stale(beat, now) else f"heartbeat {when}"


def _beats(settings: Settings, runs: DagsterRuns, pids: dict[str, int | None], now: float) -> dict[str, str]:
    """Each component's heartbeat text: its Dagster run's producer or the stream, or the direct process by pid."""
    keys = RedisKeys(settings.redis_key_prefix)
    client = redis_client(settings.redis_url)
    try:
        beats = read_heartbeats(client, keys, int(now * 1000))
        out = {STREAM: heartbeat_text(beats.stream, now)}
        if pids[PRODUCER] is not None:
            mine = [b for b in beats.producers.values() if b.get("pid") == str(pids[PRODUCER])]
            out[PRODUCER] = heartbeat_text(mine[0] if mine else None, now)
        else:
            run = runs.supervised.get(JOBS[PRODUCER])
            beat = read_producer_beat(client, keys, supervised_producer_id(run["runId"])) if run else None
            out[PRODUCER] = heartbeat_text(beat, now)
        return out
    except (redis.RedisError, OSError) as e:
        return dict.fromkeys(JOBS, f"heartbeat unknown (Redis unreachable: {type(e).__name__})")
    finally:
        client.close()


def _line(component: str, runs: DagsterRuns, pid: int | None, beat: str, dagster_up: bool) -> str:
    """One component's status line."""
    if pid is not None:
        return f"running (pid {pid}, started directly, {beat})"
    if runs.error:
        return f"unknown ({runs.error})" if dagster_up else "stopped (Dagster is not running)"
    run = runs.supervised.get(JOBS[component])
    if run is None:
        return "stopped (no Dagster run yet)"
    status = str(run.get("status"))
    state = RUN_STATES.get(status, f"status {status}")
    detail = f"Dagster run {run['runId']}" + (f", {beat}" if status in _ACTIVE else "")
    return f"{state} ({detail})"


def supervised_status(settings: Settings, timeout_s: float = 5.0) -> dict[str, str]:
    """`producer` and `stream` -> their status line: state, the Dagster run (or pid) behind it, heartbeat age."""
    apps = {app.name: app for app in platform_apps(settings, supervise_with_dagster=False)}
    pids: dict[str, int | None] = {}
    for component in JOBS:
        pid = read_pid(apps[component].pid_file(settings))
        pids[component] = pid if pid_alive(pid) else None
    dagster_up = pid_alive(read_pid(apps["dagster-webserver"].pid_file(settings)))
    runs = fetch_supervised_runs(settings.dagster_url, timeout_s)
    now = time.time()
    beats = _beats(settings, runs, pids, now)
    return {c: _line(c, runs, pids[c], beats[c], dagster_up) for c in JOBS}
