"""Connections the dashboard reads through, and the one error every page turns into a banner.

PostgreSQL connections come from one small thread-safe pool per DSN (Streamlit
runs each browser session, and each auto-refreshing fragment, in its own
thread); Redis clients are shared per URL. Both use short timeouts so that a
service that is down costs a page a second, not a minute. Every PostgreSQL
session is read-only and carries a statement and a lock timeout
(DASHBOARD_STATEMENT_TIMEOUT_MS, DASHBOARD_LOCK_TIMEOUT_MS, set by
`configure`), so a slow query or a table locked by compaction costs a page
seconds, never a thread. Any driver error is re-raised as `DataUnavailable`,
which the pages show as a banner instead of a traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import redis

from stock_platform.config import Settings
from stock_platform.storage import postgres as shared_postgres
from stock_platform.storage import redis_client as shared_redis

__all__ = ["DataUnavailable", "configure", "pg_cursor", "redis_call", "redis_client", "reset_connections"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_CONNECT_TIMEOUT_S = 2
# Redis answers a page's few reads in milliseconds: a second means it is down or swamped.
_REDIS_TIMEOUT_S = 1.0
_POOL_MAX = 8

_lock = threading.Lock()
_pools: dict[str, _Pool] = {}
_redis: dict[str, redis.Redis] = {}
# (statement timeout, lock timeout) in ms of every new session; the settings' defaults until `configure` says otherwise.
_DEFAULTS = Settings.model_fields
_limits: tuple[int, int] = (_DEFAULTS["dashboard_statement_timeout_ms"].default, _DEFAULTS["dashboard_lock_timeout_ms"].default)


class DataUnavailable(RuntimeError):
    """A data service (PostgreSQL or Redis) could not answer; `service` names which one.

    `not_set_up` marks a server that answers but lacks the platform's tables (no migration yet).
    """

    def __init__(self, service: str, message: str, not_set_up: bool = False) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message
        self.not_set_up = not_set_up


class _Pool:
    """Idle connections to one DSN, reused across threads; at most `_POOL_MAX` kept, more opened when busy.

    (psycopg2's own pools close every returned connection beyond `minconn`,
    and open `minconn` eagerly, which fails outright when the server is down.)
    """

    def __init__(self, dsn: str, limits: tuple[int, int]) -> None:
        self.dsn = dsn
        self.limits = limits
        self.lock = threading.Lock()
        self.idle: list[psycopg2.extensions.connection] = []

    def get(self) -> psycopg2.extensions.connection:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        statement_ms, lock_ms = self.limits
        conn = shared_postgres.connect(
            self.dsn,
            "stock-platform-dashboard",
            _CONNECT_TIMEOUT_S,
            statement_timeout_ms=statement_ms,
            lock_timeout_ms=lock_ms,
            # Read-only even when POSTGRES_DSN is a writer's (a deployment without the stock_reader role).
            # JIT: the planner's row estimates for a symbol with millions of ticks make it compile
            # (~400 ms) queries that then read fifty rows; no dashboard query is big enough to gain.
            server_settings={"default_transaction_read_only": "on", "jit": "off"},
        )
        conn.autocommit = True
        return conn

    def put(self, conn: psycopg2.extensions.connection, broken: bool) -> None:
        if not broken and not conn.closed:
            with self.lock:
                if len(self.idle) < _POOL_MAX:
                    self.idle.append(conn)
                    return
        conn.close()

    def close_all(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


def _pool(dsn: str) -> _Pool:
    with _lock:
        pool = _pools.get(dsn)
        if pool is None:
            pool = _pools[dsn] = _Pool(dsn, _limits)
        return pool


def configure(settings: Settings) -> None:
    """Apply the settings' session limits to the connections opened from now on (pages call this on every run).

    Pools opened under other limits are closed, so no session keeps an old timeout.
    """
    global _limits
    limits = (settings.dashboard_statement_timeout_ms, settings.dashboard_lock_timeout_ms)
    with _lock:
        if limits == _limits:
            return
        _limits = limits
        stale = list(_pools.values())
        _pools.clear()
    for pool in stale:
        pool.close_all()


def _describe(error: Exception) -> str:
    # First line only: psycopg2 messages can span lines; none of them carries the DSN's password.
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


@contextmanager
def pg_cursor(dsn: str) -> Iterator[psycopg2.extensions.cursor]:
    """A read-only cursor on a pooled connection; driver errors become `DataUnavailable("PostgreSQL", ...)`."""
    pool = _pool(dsn)
    try:
        conn = pool.get()
    except psycopg2.Error as e:
        raise DataUnavailable("PostgreSQL", _describe(e)) from e
    broken = False
    try:
        with conn.cursor() as cur:
            yield cur
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
        broken = True
        raise DataUnavailable("PostgreSQL", _describe(e)) from e
    except psycopg2.errors.UndefinedTable as e:
        # The server answers, but the database has not been migrated: say so, not "down".
        raise DataUnavailable("PostgreSQL", _describe(e), not_set_up=True) from e
    except psycopg2.Error as e:
        # Another query error: the connection is still good.
        raise DataUnavailable("PostgreSQL", _describe(e)) from e
    finally:
        pool.put(conn, broken)
        if broken:
            # The server went away (a restart, say): every idle connection is dead too; start afresh.
            pool.close_all()


def redis_client(url: str) -> redis.Redis:
    """The shared Redis client for `url` (it pools its own connections); timeouts of one second."""
    with _lock:
        client = _redis.get(url)
        if client is None:
            client = shared_redis.redis_client(url, socket_timeout=_REDIS_TIMEOUT_S, connect_timeout=_REDIS_TIMEOUT_S)
            _redis[url] = client
        return client


def redis_call(url: str, action: Callable[[redis.Redis], T]) -> T:
    """Run `action(client)` and turn any Redis error into `DataUnavailable("Redis", ...)`."""
    try:
        return action(redis_client(url))
    except (redis.RedisError, OSError) as e:
        raise DataUnavailable("Redis", _describe(e)) from e


def reset_connections() -> None:
    """Close every pooled connection (tests, and the benchmark between its cold and warm runs)."""
    with _lock:
        for pool in _pools.values():
            pool.close_all()
        _pools.clear()
        for client in _redis.values():
            client.close()
        _redis.clear()
