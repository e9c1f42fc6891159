"""Judging the pipeline's health: green, amber or red for each part, the Kafka consumer lag, failing runs, dead letters.

Thresholds live here, not in the page, so tests pin them down. Anything that
cannot be measured (Kafka or Dagster unreachable, no heartbeat yet) is a
status with a reason, never an exception. A component's failed runs and its
supervisor's decision are judged in `dashboard.run_health`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from stock_platform.dashboard.cache import ttl_cache
from stock_platform.kafka_options import KafkaSecurity
from stock_platform.storage.heartbeats import PRODUCER, STALE_AFTER_SECONDS, STREAM, beat_age, is_stale, work_age
from stock_platform.storage.kafka_offsets import end_offsets
from stock_platform.supervised_runs import SUPERVISED_JOBS, DagsterRuns, fetch_supervised_runs

__all__ = [
    "DEAD_LETTER_KINDS",
    "SUPERVISED_JOBS",
    "ComponentState",
    "DagsterRuns",
    "KafkaLag",
    "Level",
    "age_level",
    "dagster_runs",
    "dead_letter_level",
    "heartbeat_state",
    "kafka_end_offsets",
    "kafka_lag",
    "run_level",
]

logger = logging.getLogger(__name__)

# A symbol's newest tick: the simulator ticks every few seconds and Finnhub REST every 30 s.
TICK_AMBER_S = 90.0
TICK_RED_S = 600.0
LAG_AMBER = 1_000
LAG_RED = 100_000
# What a component's last sign of work is called on its card.
_WORK_WORDS = {PRODUCER: "last publish", STREAM: "last batch"}


# Why a record is a dead letter (sql/012), in the order the page lists them.
DEAD_LETTER_KINDS: dict[str, str] = {
    "contract": "broke the message contract",
    "database": "refused by PostgreSQL",
    "conflict": "conflicting duplicate: same symbol and time, other market data",
    "closed_day": "for a day already compacted",
}


class Level(Enum):
    """A traffic light; `unknown` when it cannot be measured."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    UNKNOWN = "unknown"

    @property
    def icon(self) -> str:
        """A coloured dot for tables and headings."""
        return {"green": "🟢", "amber": "🟠", "red": "🔴", "unknown": "⚪"}[self.value]


def age_level(age_s: float | None, amber_s: float, red_s: float) -> Level:
    """Green below `amber_s`, amber below `red_s`, red beyond; unknown when there is no age."""
    if age_s is None:
        return Level.UNKNOWN
    if age_s < amber_s:
        return Level.GREEN
    if age_s < red_s:
        return Level.AMBER
    return Level.RED


@dataclass(frozen=True)
class ComponentState:
    """One component's light, the age of its last beat (None: none, or no time in it), and a sentence saying why."""

    component: str
    level: Level
    age_s: float | None
    detail: str


def heartbeat_state(component: str, heartbeat: Mapping[str, str], now_ms: int) -> ComponentState:
    """Judge a producer's or the stream's heartbeat by the supervisors' stale rule, and say when it last worked.

    Red without a beat, with a stale one (`storage.heartbeats.is_stale`) or with the last beat a process
    wrote on its way out (`state` other than running); amber while it beats but has not worked for longer
    than the stale threshold, or never ("never", not an age counted from 1970); green otherwise.
    """
    if not heartbeat:
        return ComponentState(component, Level.RED, None, "no heartbeat in Redis: not running (or never started)")
    now = now_ms / 1000
    age, worked = beat_age(heartbeat, now), work_age(component, heartbeat, now)
    beat = "no beat time" if age is None else f"last beat {age:,.0f} s ago"
    when = "never" if worked is None else f"{worked:,.0f} s ago"
    work = f"{_WORK_WORDS.get(component, 'last work')} {when}"
    state = heartbeat.get("state") or "running"
    if is_stale(heartbeat, now):
        return ComponentState(component, Level.RED, age, f"stale: {beat} (stale after {STALE_AFTER_SECONDS:.0f} s); {work}")
    if state != "running":
        return ComponentState(component, Level.RED, age, f"{state}: {work}; {beat}")
    if worked is None or worked > STALE_AFTER_SECONDS:
        quiet = "nothing yet" if worked is None else "idle"
        return ComponentState(component, Level.AMBER, age, f"alive, {quiet}: {work}; {beat}")
    return ComponentState(component, Level.GREEN, age, f"{work}; {beat}")


@dataclass(frozen=True)
class KafkaLag:
    """Consumer lag per partition (end offset minus committed), or `error` saying why it is unknown."""

    per_partition: dict[int, int]
    end_offsets: dict[int, int]
    error: str = ""

    @property
    def total(self) -> int | None:
        """Messages not yet processed, over all partitions; None when unknown."""
        return None if self.error or not self.per_partition else sum(self.per_partition.values())

    @property
    def level(self) -> Level:
        """Green under 1,000 messages behind, amber under 100,000, red beyond."""
        total = self.total
        if total is None:
            return Level.UNKNOWN
        return Level.GREEN if total < LAG_AMBER else Level.AMBER if total < LAG_RED else Level.RED


@ttl_cache(5.0)
def kafka_end_offsets(bootstrap_servers: str, topic: str, security: KafkaSecurity | None = None) -> dict[int, int]:
    """The broker's end offset of each partition of `topic`; raises `RuntimeError` with a reason if unreachable.

    `security` (hashable, so it is part of the cache key) logs the consumer in to a secured cluster.
    """
    from kafka.errors import KafkaError

    try:
        ends = end_offsets(
            bootstrap_servers, topic, security, client_id="stock-platform-dashboard",
            request_timeout_ms=3000, bootstrap_timeout_ms=2000,
        )  # fmt: skip
    except KafkaError as e:
        raise RuntimeError(f"Kafka unreachable at {bootstrap_servers}: {type(e).__name__}") from e
    if not ends:
        raise RuntimeError(f"topic {topic!r} does not exist")
    return ends


def kafka_lag(bootstrap_servers: str, topic: str, committed: dict[int, int], security: KafkaSecurity | None = None) -> KafkaLag:
    """Lag of the stream job on `topic`: broker end offsets minus the offsets it committed."""
    if not committed:
        return KafkaLag({}, {}, "the stream job has not committed a batch on this topic yet")
    try:
        ends = kafka_end_offsets(bootstrap_servers, topic, security)
    except RuntimeError as e:
        return KafkaLag({}, {}, str(e))
    except Exception as e:  # noqa: BLE001 - a client library failing in any way still only means "unknown"
        logger.warning("kafka lag unavailable: %s", type(e).__name__)
        return KafkaLag({}, {}, f"Kafka unreachable: {type(e).__name__}")
    lag = {p: max(0, end - committed.get(p, 0)) for p, end in ends.items()}
    return KafkaLag(lag, ends)


# A supervised job is meant to run forever: only a started run is green.
_RUN_LEVELS = {
    "STARTED": (Level.GREEN, "running"),
    "QUEUED": (Level.AMBER, "queued"),
    "NOT_STARTED": (Level.AMBER, "starting"),
    "STARTING": (Level.AMBER, "starting"),
    "CANCELING": (Level.AMBER, "stopping"),
    "FAILURE": (Level.RED, "failed (its supervisor sensor starts a new run)"),
    "CANCELED": (Level.RED, "cancelled"),
    "SUCCESS": (Level.RED, "ended"),
}


def run_level(run: dict | None) -> tuple[Level, str]:
    """The light and a short word for a supervised job's newest run (None: never launched)."""
    if run is None:
        return Level.RED, "no run yet: is the Dagster daemon running with its supervisor sensors on?"
    return _RUN_LEVELS.get(str(run.get("status")), (Level.UNKNOWN, f"status {run.get('status')}"))


@ttl_cache(5.0)
def dagster_runs(url: str) -> DagsterRuns:
    """The supervised jobs' newest runs and the five newest runs overall (`supervised_runs`), for five seconds."""
    return fetch_supervised_runs(url)


def dead_letter_level(by_kind: dict[str, tuple[int, int]], warn_per_hour: int) -> Level:
    """Red when PostgreSQL refused records in the last hour (a fault of ours, not the sender's) or above the warning rate.

    `by_kind` maps a kind to (last hour, total). Amber from the first dead letter in the last hour.
    """
    last_hour = sum(hour for hour, _ in by_kind.values())
    if by_kind.get("database", (0, 0))[0] > 0 or last_hour > warn_per_hour:
        return Level.RED
    return Level.AMBER if last_hour else Level.GREEN
