"""The shared Redis client: a Redis that is down fails fast (one immediate retry); a dropped connection is replaced."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from stock_platform.config import Settings
from stock_platform.storage.redis_client import RETRIES, redis_client

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _count_connects(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The times at which any client opens a socket from now on."""
    attempts: list[float] = []
    original = redis.connection.Connection._connect

    def counting(self: redis.connection.Connection) -> socket.socket:
        attempts.append(time.monotonic())
        return original(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counting)
    return attempts


def test_a_redis_that_is_down_fails_fast_after_one_immediate_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = _count_connects(monkeypatch)
    client = redis_client(f"redis://127.0.0.1:{_closed_port()}/0")
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert time.monotonic() - started < 0.5
    assert len(attempts) == 1 + RETRIES == 2
    # The policy the factory exists to avoid: redis-py's default for a client built from host and port.
    attempts.clear()
    default = redis.Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        default.ping()
    assert len(attempts) > 1 + RETRIES, "redis-py's default changed: revisit the factory's docstring"


def test_a_blackholed_connect_gives_up_after_the_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Redis that never answers the handshake (a hung host) costs two connect timeouts, not redis-py's ten retries."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # accepts into the backlog, never answers
        client = redis_client(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", socket_timeout=0.3, connect_timeout=0.3)
        started = time.monotonic()
        with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
            client.ping()
        assert time.monotonic() - started < 2 * 0.3 + 0.5


def _drop_pooled_connection(client: redis.Redis, admin: redis.Redis) -> None:
    """Close `client`'s one pooled connection from the server's side, as a Redis restart does (only that one)."""
    assert client.ping()
    assert admin.client_kill_filter(_id=str(client.client_id())) == 1


def test_a_long_lived_client_outlives_a_dropped_connection(platform_settings: Settings) -> None:
    """The stream's sink and the dashboard keep one client for hours: a Redis restart must not break it for good."""
    key = f"{platform_settings.redis_key_prefix}after-drop"
    admin = redis.Redis.from_url(platform_settings.redis_url)
    client = redis_client(platform_settings.redis_url)
    try:
        _drop_pooled_connection(client, admin)
        assert client.set(key, "1") is True
        assert client.get(key) == "1", "responses are decoded to str"
    finally:
        client.close()
        admin.close()
