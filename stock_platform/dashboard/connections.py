"""Connections the dashboard reads through, and the one error every page turns into a banner.

PostgreSQL connections come from one small thread-safe pool per DSN (Streamlit
runs each browser session, and each auto-refreshing fragment, in its own
thread); Redis clients are shared per URL. Both use short timeouts so that a
service that is down costs a page a second, not a minute. Any driver error is
re-raised as `DataUnavailable`, which the pages show as a banner instead of a
traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.pool
import redis

__all__ = ["DataUnavailable", "pg_cursor", "redis_call", "redis_client", "reset_connections"]

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 2
# Every dashboard query is a small indexed read; anything slower is a bug or an overloaded server.
_STATEMENT_TIMEOUT_MS = 5000
_POOL_MAX = 8

_lock = threading.Lock()
_pools: dict[str, psycopg2.pool.ThreadedConnectionPool] = {}
_redis: dict[str, redis.Redis] = {}


class DataUnavailable(RuntimeError):
    """A data service (PostgreSQL or Redis) could not answer; `service` names which one."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message


def _pool(dsn: str) -> psycopg2.pool.ThreadedConnectionPool:
    with _lock:
        pool = _pools.get(dsn)
        if pool is None:
            # minconn=0: creating the pool does not connect, so a down server is reported by the first query.
            pool = psycopg2.pool.ThreadedConnectionPool(
                0,
                _POOL_MAX,
                dsn,
                connect_timeout=_CONNECT_TIMEOUT_S,
                application_name="stock-platform-dashboard",
                options=f"-c statement_timeout={_STATEMENT_TIMEOUT_MS}",
            )
            _pools[dsn] = pool
        return pool


def _describe(error: Exception) -> str:
    # First line only: psycopg2 messages can span lines; none of them carries the DSN's password.
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


@contextmanager
def pg_cursor(dsn: str) -> Iterator[psycopg2.extensions.cursor]:
    """A read-only cursor on a pooled connection; driver errors become `DataUnavailable("PostgreSQL", ...)`."""
    try:
        pool = _pool(dsn)
        conn = pool.getconn()
    except (psycopg2.Error, psycopg2.pool.PoolError) as e:
        raise DataUnavailable("PostgreSQL", _describe(e)) from e
    broken = False
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            yield cur
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
        broken = True
        raise DataUnavailable("PostgreSQL", _describe(e)) from e
    except psycopg2.Error as e:
        # A query error (a missing table on an unmigrated database, say): the connection is still good.
        raise DataUnavailable("PostgreSQL", _describe(e)) from e
    finally:
        pool.putconn(conn, close=broken or bool(conn.closed))


def redis_client(url: str) -> redis.Redis:
    """The shared Redis client for `url` (it pools its own connections); timeouts of one second."""
    with _lock:
        client = _redis.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url, socket_timeout=1, socket_connect_timeout=1, decode_responses=True, health_check_interval=30
            )
            _redis[url] = client
        return client


def redis_call(url: str, action: Any) -> Any:
    """Run `action(client)` and turn any Redis error into `DataUnavailable("Redis", ...)`."""
    try:
        return action(redis_client(url))
    except (redis.RedisError, OSError) as e:
        raise DataUnavailable("Redis", _describe(e)) from e


def reset_connections() -> None:
    """Close every pooled connection (tests, and the benchmark between its cold and warm runs)."""
    with _lock:
        for pool in _pools.values():
            pool.closeall()
        _pools.clear()
        for client in _redis.values():
            client.close()
        _redis.clear()
