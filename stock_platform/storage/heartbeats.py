"""Heartbeats in Redis: where each long-running process beats, writing and reading the beats, and the one stale rule.

A heartbeat is a hash of text fields with at least `pid`, `started_ms` and
`updated_ms` (epoch ms of the last write). The stream job beats at
`RedisKeys.heartbeat("stream")`; every producer at
`RedisKeys.producer_heartbeat(<producer id>)`, and lists itself in the sorted
set `RedisKeys.producers` (score: its last beat), so readers find every
producer without scanning the key space and two producers never overwrite
each other. Each hash expires `HEARTBEAT_TTL_SECONDS` after its last write,
so a dead process's beat disappears.

One rule says whether a beat is stale (`is_stale`): the supervisor sensors,
the health page and `platform status` all judge by it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from stock_platform.storage.redis_keys import RedisKeys

if TYPE_CHECKING:  # the rule and the key layout need no client: supervision imports them without Redis
    import redis
    from redis.typing import EncodableT

__all__ = [
    "HEARTBEAT_TTL_SECONDS",
    "PRODUCER",
    "STALE_AFTER_SECONDS",
    "STREAM",
    "WORK_FIELDS",
    "Heartbeats",
    "beat_age",
    "beat_time",
    "is_stale",
    "newest_beat",
    "queue_producer_beat",
    "queue_stream_beat",
    "read_heartbeats",
    "read_producer_beat",
    "read_stream_beat",
    "supervised_producer_id",
    "work_age",
]

logger = logging.getLogger(__name__)

STREAM = "stream"
PRODUCER = "producer"
# A beat whose last write is older than this is stale: the producer rewrites its hash every 5 s and the stream
# every 10 s, even when idle, so a minute is several missed beats, not a slow one.
STALE_AFTER_SECONDS = 60.0
# Every heartbeat hash (and the producer list) expires this long after its last write.
HEARTBEAT_TTL_SECONDS = 120
# The field holding a component's last sign of work (0 or absent: none yet).
WORK_FIELDS = {PRODUCER: "last_publish_ms", STREAM: "last_batch_ms"}


def supervised_producer_id(run_id: str) -> str:
    """The producer id of the producer a Dagster run launches: the run's own id, so its supervisor finds its beat."""
    return f"dagster-{run_id}"


def _epoch_s(beat: Mapping[str, str] | None, name: str) -> float | None:
    """A `*_ms` field in epoch seconds; None when absent, zero or not a number."""
    try:
        value = int(float((beat or {}).get(name, "0")))
    except ValueError:
        return None
    return value / 1000 if value > 0 else None


def beat_time(beat: Mapping[str, str] | None) -> float | None:
    """When the beat was last written (`updated_ms`), in epoch seconds; None when it carries no time."""
    return _epoch_s(beat, "updated_ms")


def beat_age(beat: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds since the beat's last write, never negative; None when it carries no time."""
    updated = beat_time(beat)
    return None if updated is None else max(0.0, now - updated)


def is_stale(beat: Mapping[str, str] | None, now: float) -> bool:
    """The stale rule: no beat at all, or its last write more than `STALE_AFTER_SECONDS` before `now` (epoch s).

    A beat without `updated_ms` is judged by its TTL alone: while the hash exists, it is not stale.
    """
    if not beat:
        return True
    age = beat_age(beat, now)
    return age is not None and age > STALE_AFTER_SECONDS


def work_age(component: str, beat: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds since the component last worked (published, committed a batch); None when it never has."""
    last = _epoch_s(beat, WORK_FIELDS.get(component, ""))
    return None if last is None else max(0.0, now - last)


def newest_beat(beats: Iterable[dict[str, str]]) -> dict[str, str] | None:
    """The most recently written of `beats`, or None when there is none."""
    return max(beats, key=lambda b: beat_time(b) or 0.0, default=None)


def _text(mapping: Mapping[str, object]) -> dict[EncodableT, EncodableT]:
    return {k: str(v) for k, v in mapping.items() if v is not None}


def _hash(raw: object) -> dict[str, str] | None:
    """A hash as read by a client that decodes replies (every one here does); None when the key is gone."""
    return dict(cast(dict[str, str], raw)) or None


def queue_stream_beat(pipe: redis.client.Pipeline, keys: RedisKeys, fields: Mapping[str, object]) -> None:
    """Queue the stream's beat: its fields merged into the hash (a batch's figures outlive idle beats), TTL renewed."""
    key = keys.heartbeat(STREAM)
    pipe.hset(key, mapping=_text(fields))
    pipe.expire(key, HEARTBEAT_TTL_SECONDS)


def queue_producer_beat(
    pipe: redis.client.Pipeline, keys: RedisKeys, producer_id: str, fields: Mapping[str, object], now_ms: int
) -> None:
    """Queue a producer's beat: its hash replaced by `fields`, and its entry in the producer list set to `now_ms`.

    Replaced, not merged, so counters that went away do not linger. Entries older than the TTL leave the
    list here, so it only ever holds producers whose hash may still exist.
    """
    key = keys.producer_heartbeat(producer_id)
    pipe.delete(key)
    pipe.hset(key, mapping=_text(fields))
    pipe.expire(key, HEARTBEAT_TTL_SECONDS)
    pipe.zadd(keys.producers, {producer_id: now_ms})
    pipe.zremrangebyscore(keys.producers, "-inf", f"({now_ms - HEARTBEAT_TTL_SECONDS * 1000}")
    pipe.expire(keys.producers, HEARTBEAT_TTL_SECONDS)


def read_stream_beat(client: redis.Redis, keys: RedisKeys) -> dict[str, str] | None:
    """The stream's heartbeat hash, or None when it has expired (the job is gone or never started)."""
    return _hash(client.hgetall(keys.heartbeat(STREAM)))


def read_producer_beat(client: redis.Redis, keys: RedisKeys, producer_id: str) -> dict[str, str] | None:
    """One producer's heartbeat hash, or None when it has expired."""
    return _hash(client.hgetall(keys.producer_heartbeat(producer_id)))


@dataclass(frozen=True)
class Heartbeats:
    """Every beat in Redis: the stream's (empty when none) and each producer's by producer id (sorted)."""

    stream: dict[str, str] = field(default_factory=dict)
    producers: dict[str, dict[str, str]] = field(default_factory=dict)


def read_heartbeats(client: redis.Redis, keys: RedisKeys, now_ms: int) -> Heartbeats:
    """The stream's beat and every producer's that beat within the TTL, in two round trips (HGETALL and ZRANGE only).

    `client` must decode responses (`storage.redis_client` does). Only read commands, so the dashboard's
    read-only Redis user may call it.
    """
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.heartbeat(STREAM))
    pipe.zrange(keys.producers, 0, -1, withscores=True)
    stream, listed = pipe.execute()
    since = now_ms - HEARTBEAT_TTL_SECONDS * 1000
    ids = sorted(str(member) for member, score in listed if score >= since)
    if not ids:
        return Heartbeats(dict(stream))
    pipe = client.pipeline(transaction=False)
    for producer_id in ids:
        pipe.hgetall(keys.producer_heartbeat(producer_id))
    beats = pipe.execute()
    return Heartbeats(dict(stream), {pid: dict(beat) for pid, beat in zip(ids, beats, strict=True) if beat})
