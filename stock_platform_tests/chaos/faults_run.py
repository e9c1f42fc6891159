"""One fault, end to end: SIGKILL a part, let the platform (or `services up` / `platform up`) bring it back, time it.

Recovery is over when the part is healthy again AND quotes flow again: a
stream batch that inserted rows was committed after the part came back (and,
per part, the evidence that the part itself works: the new producer's rows are
in stock_prices, the stream writes Redis again, the new daemon's sensors tick).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

from stock_platform.runtime.kafka_broker import KafkaBroker
from stock_platform.runtime.postgres import PostgresServer
from stock_platform.runtime.redis_server import RedisServer
from stock_platform.storage.redis_keys import RedisKeys
from stock_platform_tests.chaos.faults import kill_part, part_pids, recovery_command
from stock_platform_tests.private_platform import PrivatePlatform

__all__ = ["FaultResult", "inject", "sensor_daemon_id", "wait_for"]

logger = logging.getLogger(__name__)


@dataclass
class FaultResult:
    """What one fault did: the pids killed, how long recovery took, and how it was recovered."""

    part: str
    killed: list[int]
    recovery_s: float
    recovered_by: str
    notes: list[str] = field(default_factory=list)
    # Wall-clock ms just before the SIGKILL: a killed producer's unsent window ends here (`gaps`).
    killed_at_ms: int = 0


def wait_for(check: Callable[[], object], timeout: float, interval: float = 1.0, what: str = "") -> float:
    """Poll `check()` until true; return the seconds waited, or raise TimeoutError naming `what`."""
    t0 = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - t0
        except Exception as e:  # noqa: BLE001 - a probe that fails means "not yet"
            logger.debug("probe %s: %s", what, e)
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"not within {timeout:.0f} s: {what}")
        time.sleep(interval)


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def batches_since(platform: PrivatePlatform, since: datetime) -> int:
    """Stream batches that inserted rows and committed after `since` (naive UTC, like the column)."""
    return platform.query("SELECT count(*) FROM stream_batches WHERE committed_at > %s AND inserted > 0", (since,))[0][0]


def sensor_daemon_id(platform: PrivatePlatform) -> str | None:
    """The id of the Dagster daemon whose sensor loop beat last (changes when a new daemon takes over)."""
    rows = platform.query(
        "SELECT daemon_id FROM daemon_heartbeats WHERE daemon_type = 'SENSOR'", dsn=platform.settings.dagster_postgres_url
    )
    return rows[0][0] if rows else None


def _stream_wrote_redis_since(platform: PrivatePlatform, since_ms: int) -> bool:
    settings = platform.settings
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, decode_responses=True)
    try:
        last = client.hget(RedisKeys(settings.redis_key_prefix).heartbeat("stream"), "last_batch_ms")
    finally:
        client.close()
    return last is not None and int(last) > since_ms


def _healthy(platform: PrivatePlatform, part: str, killed: list[int], daemon_before: str | None) -> bool:
    settings = platform.settings
    if part in {"stream", "producer", "spark-jvm"}:
        pids = part_pids(settings, part)
        return bool(pids) and not set(pids) & set(killed)
    if part == "kafka":
        return KafkaBroker(settings).healthy()
    if part == "postgres":
        return PostgresServer(settings).healthy()
    if part == "redis":
        return RedisServer(settings).healthy()
    return bool(part_pids(settings, part)) and sensor_daemon_id(platform) not in {None, daemon_before}


def _producer_id(pid: int) -> str:
    """The id a producer stamps on its quotes: PRODUCER_ID from its environment (Dagster gives each run its own)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        environ = []
    given = [v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"PRODUCER_ID=")]
    return given[0] if given and given[0] else f"{os.uname().nodename}-{pid}"


def _part_works(platform: PrivatePlatform, part: str, since_ms: int) -> bool:
    """Evidence, beyond a committed batch, that the recovered part does its job."""
    if part == "producer":
        pid = min(part_pids(platform.settings, "producer"))
        producer_id = _producer_id(pid)
        return bool(platform.query("SELECT 1 FROM stock_prices WHERE producer_id = %s LIMIT 1", (producer_id,)))
    if part == "redis":
        return _stream_wrote_redis_since(platform, since_ms)
    return True


def replayed_batches(platform: PrivatePlatform) -> int:
    """Batches the stream job found already committed in PostgreSQL and skipped (a re-run after a kill), per its logs."""
    logs = (platform.settings.data_dir / "dagster" / "storage").glob("*/compute_logs/*.err")
    return sum(log.read_text(errors="replace").count("was already committed; skipping") for log in logs)


def _await_fresh_commit(platform: PrivatePlatform, timeout: float = 120) -> None:
    """Return the moment a new stream batch commits in PostgreSQL: a kill now most likely lands before Spark's own
    checkpoint commit, the window in which a restarted job re-runs a batch that is already in the tables."""
    conn = platform.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM stream_batches")
            before = cur.fetchone()[0]
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM stream_batches")
                if cur.fetchone()[0] > before:
                    return
                time.sleep(0.005)
    finally:
        conn.close()
    raise TimeoutError(f"no stream batch committed within {timeout:.0f} s")


def inject(platform: PrivatePlatform, part: str, outage_s: float, timeout: float) -> FaultResult:
    """Kill `part`, keep it down `outage_s` (services), recover it the platform's way, and time the recovery.

    The stream job is killed right after a batch commits in PostgreSQL (see `_await_fresh_commit`);
    everything else whenever the test gets there, mid-flow.
    """
    daemon_before = sensor_daemon_id(platform) if part == "dagster-daemon" else None
    wait_for(lambda: part_pids(platform.settings, part), 120, what=f"{part} running before the fault")
    supervised_before = {name: set(part_pids(platform.settings, name)) for name in ("stream", "producer")}
    replays_before = replayed_batches(platform)
    pids = part_pids(platform.settings, part)
    if part == "stream":
        _await_fresh_commit(platform)
    t0, killed_at_ms = time.monotonic(), int(time.time() * 1000)
    killed = kill_part(platform.settings, part, pids=pids)
    command = recovery_command(part)
    recovered_by = "Dagster supervisor sensor"
    notes: list[str] = []
    if command is not None:
        time.sleep(outage_s)
        done = platform.cli(*command)
        recovered_by = f"stock-platform {' '.join(command)}"
        if done.returncode != 0:
            raise RuntimeError(f"{recovered_by} failed after killing {part}: {done.stderr[-2000:]}")

    def remaining() -> float:
        return timeout - (time.monotonic() - t0)

    wait_for(lambda: _healthy(platform, part, killed, daemon_before), remaining(), what=f"{part} healthy again")
    healthy_at, healthy_ms = _utc_now(), int(time.time() * 1000)
    notes.append(f"healthy after {time.monotonic() - t0:.1f} s")
    wait_for(
        lambda: batches_since(platform, healthy_at) > 0 and _part_works(platform, part, healthy_ms),
        remaining(), what=f"quotes flowing again after {part} recovered",
    )  # fmt: skip
    replays = replayed_batches(platform) - replays_before
    if replays:
        notes.append(f"{replays} already-committed batch(es) re-run and skipped")
    for name, before in supervised_before.items():
        if name != part and part != "spark-jvm" and before and not before & set(part_pids(platform.settings, name)):
            notes.append(f"{name} was restarted too")
    return FaultResult(part, killed, round(time.monotonic() - t0, 1), recovered_by, notes, killed_at_ms)
