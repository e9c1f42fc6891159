"""Heartbeats: the one stale rule (pure), and beats written and read in the real Redis, one key per producer."""

from __future__ import annotations

import time

import pytest
import redis

from stock_platform.config import Settings
from stock_platform.storage.heartbeats import (
    HEARTBEAT_TTL_SECONDS,
    STALE_AFTER_SECONDS,
    beat_age,
    is_stale,
    newest_beat,
    queue_producer_beat,
    queue_stream_beat,
    read_heartbeats,
    read_producer_beat,
    read_stream_beat,
    supervised_producer_id,
    work_age,
)
from stock_platform.storage.redis_client import redis_client
from stock_platform.storage.redis_keys import RedisKeys

NOW = 1_750_000_000.0  # epoch s


def _beat(age_s: float, **fields: str) -> dict[str, str]:
    return {"pid": "1", "updated_ms": str(int((NOW - age_s) * 1000)), **fields}


def test_a_beat_is_stale_past_the_threshold_or_when_there_is_none() -> None:
    assert is_stale(None, NOW) and is_stale({}, NOW)
    assert not is_stale(_beat(0), NOW) and not is_stale(_beat(STALE_AFTER_SECONDS), NOW)
    assert is_stale(_beat(STALE_AFTER_SECONDS + 0.5), NOW)
    # Without a beat time only the hash's TTL bounds it: present means not stale.
    assert not is_stale({"pid": "1"}, NOW) and beat_age({"pid": "1"}, NOW) is None
    assert not is_stale(_beat(-5), NOW) and beat_age(_beat(-5), NOW) == 0.0, "a clock ahead of ours is not stale"


def test_work_that_never_happened_has_no_age() -> None:
    """A producer that published nothing writes last_publish_ms = 0: no age counted from 1970."""
    assert work_age("producer", _beat(1, last_publish_ms="0"), NOW) is None
    assert work_age("producer", _beat(1), NOW) is None
    assert work_age("producer", _beat(1, last_publish_ms=str(int((NOW - 7) * 1000))), NOW) == pytest.approx(7.0)
    assert work_age("stream", _beat(1, last_batch_ms="not a number"), NOW) is None


def test_newest_beat_and_the_supervised_producer_id() -> None:
    old, new = _beat(30, producer_id="a"), _beat(3, producer_id="b")
    assert newest_beat([old, new]) is new and newest_beat([]) is None
    run_id = "0d4e1f5a-1b2c-4d3e-8f9a-0b1c2d3e4f5a"
    assert supervised_producer_id(run_id) == f"dagster-{run_id}" and len(supervised_producer_id(run_id)) <= 64


@pytest.mark.integration
def test_two_producers_beat_side_by_side_and_expired_ones_leave_the_list(platform_settings: Settings) -> None:
    keys = RedisKeys(platform_settings.redis_key_prefix)
    client = redis_client(platform_settings.redis_url)
    now_ms = int(time.time() * 1000)
    try:
        with client.pipeline() as pipe:
            queue_producer_beat(pipe, keys, "desk-a", {"pid": 11, "updated_ms": now_ms, "published": 5}, now_ms)
            queue_producer_beat(pipe, keys, "desk-b", {"pid": 12, "updated_ms": now_ms, "last_publish_ms": 0}, now_ms)
            queue_stream_beat(pipe, keys, {"pid": 13, "updated_ms": now_ms, "last_batch_ms": None})
            pipe.execute()
        beats = read_heartbeats(client, keys, now_ms)
        assert sorted(beats.producers) == ["desk-a", "desk-b"], "the second producer did not overwrite the first"
        assert beats.producers["desk-a"]["published"] == "5" and beats.producers["desk-b"]["pid"] == "12"
        assert beats.stream == {"pid": "13", "updated_ms": str(now_ms)}, "None fields are left out"
        assert read_producer_beat(client, keys, "desk-a") == beats.producers["desk-a"]
        assert read_stream_beat(client, keys) == beats.stream
        assert 0 < client.ttl(keys.producer_heartbeat("desk-a")) <= HEARTBEAT_TTL_SECONDS
        assert 0 < client.ttl(keys.producers) <= HEARTBEAT_TTL_SECONDS

        # desk-a beats again a TTL later: desk-b's entry is older than its hash can be, and leaves the list.
        later = now_ms + HEARTBEAT_TTL_SECONDS * 1000 + 1
        with client.pipeline() as pipe:
            queue_producer_beat(pipe, keys, "desk-a", {"pid": 11, "updated_ms": later}, later)
            pipe.execute()
        assert client.zrange(keys.producers, 0, -1) == ["desk-a"]
        assert "published" not in read_producer_beat(client, keys, "desk-a"), "a beat replaces the hash, not merges"
        # A listed producer whose hash expired is not reported.
        client.delete(keys.producer_heartbeat("desk-a"))
        assert read_heartbeats(client, keys, later).producers == {}
        assert read_producer_beat(client, keys, "desk-a") is None
    finally:
        client.close()


@pytest.mark.integration
def test_a_reader_that_cannot_reach_redis_gets_a_redis_error(platform_settings: Settings) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = redis_client(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(redis.ConnectionError):
        read_heartbeats(client, RedisKeys(platform_settings.redis_key_prefix), int(time.time() * 1000))
