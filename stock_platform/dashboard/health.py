"""Judging the pipeline's health: green, amber or red for each part, the Kafka consumer lag, failing runs, dead letters.

Thresholds live here, not in the page, so tests pin them down. Anything that
cannot be measured (Kafka or Dagster unreachable, no heartbeat yet) is a
status with a reason, never an exception. A component's failed runs and its
supervisor's decision are judged in `dashboard.run_health`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from stock_platform.dashboard.cache import ttl_cache
from stock_platform.kafka_options import KafkaSecurity, kafka_python_options

__all__ = [
    "DEAD_LETTER_KINDS",
    "HEARTBEAT_FIELDS",
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

# A heartbeat is fresh under 30 s, late under 120 s, and stale beyond (the lead's rule).
HEARTBEAT_AMBER_S = 30.0
HEARTBEAT_RED_S = 120.0
# A symbol's newest tick: the simulator ticks every few seconds and Finnhub REST every 30 s.
TICK_AMBER_S = 90.0
TICK_RED_S = 600.0
LAG_AMBER = 1_000
LAG_RED = 100_000
# The field holding each component's last sign of work, then its fallback.
HEARTBEAT_FIELDS: dict[str, tuple[str, ...]] = {
    "producer": ("last_publish_ms", "started_ms"),
    "stream": ("last_batch_ms", "started_ms"),
}


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
    """One component's light, the age of its last sign of life, and a sentence saying why."""

    component: str
    level: Level
    age_s: float | None
    detail: str


def heartbeat_state(component: str, heartbeat: dict[str, str], now_ms: int) -> ComponentState:
    """Judge a producer or stream heartbeat hash by how long ago it last did work."""
    if not heartbeat:
        return ComponentState(component, Level.RED, None, "no heartbeat in Redis: not running (or never started)")
    for name in HEARTBEAT_FIELDS.get(component, ("updated_ms", "started_ms")):
        try:
            last_ms = int(float(heartbeat[name]))
        except (KeyError, ValueError):
            continue
        age_s = max(0.0, (now_ms - last_ms) / 1000.0)
        level = age_level(age_s, HEARTBEAT_AMBER_S, HEARTBEAT_RED_S)
        return ComponentState(component, level, age_s, f"{name.removesuffix('_ms').replace('_', ' ')} {age_s:,.0f} s ago")
    return ComponentState(component, Level.AMBER, None, "heartbeat has no timestamp")


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
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    consumer = None
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            client_id="stock-platform-dashboard",
            enable_auto_commit=False,
            bootstrap_timeout_ms=2000,
            request_timeout_ms=3000,
            session_timeout_ms=2000,
            heartbeat_interval_ms=500,
            **kafka_python_options(security or KafkaSecurity()),
        )
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise RuntimeError(f"topic {topic!r} does not exist")
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    except KafkaError as e:
        raise RuntimeError(f"Kafka unreachable at {bootstrap_servers}: {type(e).__name__}") from e
    finally:
        if consumer is not None:
            consumer.close()


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


# The long-running jobs Dagster supervises: the page shows each one's newest run, whatever else ran since.
SUPERVISED_JOBS = ("producer_job", "streaming_job")

_RUN_FIELDS = "__typename ... on Runs { results { runId jobName status startTime endTime } } ... on PythonError { message }"
_RUNS_QUERY = (
    "{ "
    + " ".join(f'{job}: runsOrError(filter: {{pipelineName: "{job}"}}, limit: 1) {{ {_RUN_FIELDS} }}' for job in SUPERVISED_JOBS)
    + f" recent: runsOrError(limit: 5) {{ {_RUN_FIELDS} }} }}"
)

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


@dataclass(frozen=True)
class DagsterRuns:
    """The newest run of each supervised job, the newest runs of any job, or why Dagster could not be asked."""

    supervised: dict[str, dict | None]
    recent: list[dict]
    error: str = ""


@ttl_cache(5.0)
def dagster_runs(url: str) -> DagsterRuns:
    """Ask Dagster's GraphQL API for the supervised jobs' newest runs and the five newest runs overall."""
    import requests

    try:
        reply = requests.post(f"{url}/graphql", json={"query": _RUNS_QUERY}, timeout=1.5)
        reply.raise_for_status()
        data = reply.json()["data"]
        results = {key: (data.get(key) or {}).get("results") for key in (*SUPERVISED_JOBS, "recent")}
    except (requests.RequestException, ValueError, KeyError, TypeError, AttributeError) as e:
        empty = dict.fromkeys(SUPERVISED_JOBS)
        return DagsterRuns(empty, [], f"Dagster not reachable at {url} ({type(e).__name__})")
    if any(r is None for r in results.values()):
        return DagsterRuns(dict.fromkeys(SUPERVISED_JOBS), [], "Dagster answered without a run list")
    supervised = {job: (results[job][0] if results[job] else None) for job in SUPERVISED_JOBS}
    return DagsterRuns(supervised, results["recent"])


def dead_letter_level(by_kind: dict[str, tuple[int, int]], warn_per_hour: int) -> Level:
    """Red when PostgreSQL refused records in the last hour (a fault of ours, not the sender's) or above the warning rate.

    `by_kind` maps a kind to (last hour, total). Amber from the first dead letter in the last hour.
    """
    last_hour = sum(hour for hour, _ in by_kind.values())
    if by_kind.get("database", (0, 0))[0] > 0 or last_hour > warn_per_hour:
        return Level.RED
    return Level.AMBER if last_hour else Level.GREEN
