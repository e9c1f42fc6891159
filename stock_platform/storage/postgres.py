"""Opening PostgreSQL connections the same way everywhere (stream job, benchmarks, Dagster, dashboard).

One helper so every connection names itself (`application_name` shows in
`pg_stat_activity`), fails fast when the server is down, and keeps TCP
keepalives on for the long-lived stream job. Session limits (statement and
lock timeouts, other server settings) travel as startup options, so they hold
from the first statement on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import psycopg2
from psycopg2.extensions import connection as PgConnection  # noqa: N812 - psycopg2's own class name

__all__ = ["PgConnection", "connect"]

logger = logging.getLogger(__name__)


def _options(statement_timeout_ms: int | None, lock_timeout_ms: int | None, server_settings: Mapping[str, str] | None) -> str:
    """libpq `options`: one `-c name=value` per server setting, the timeouts first."""
    values: dict[str, str] = {}
    if statement_timeout_ms is not None:
        values["statement_timeout"] = str(int(statement_timeout_ms))
    if lock_timeout_ms is not None:
        values["lock_timeout"] = str(int(lock_timeout_ms))
    values.update(server_settings or {})
    return " ".join(f"-c {name}={value}" for name, value in values.items())


def connect(
    dsn: str,
    application_name: str = "stock-platform",
    connect_timeout: int = 10,
    *,
    statement_timeout_ms: int | None = None,
    lock_timeout_ms: int | None = None,
    server_settings: Mapping[str, str] | None = None,
    **params: str | int,
) -> PgConnection:
    """A new psycopg2 connection (autocommit off) with a name, a connect timeout and keepalives.

    `statement_timeout_ms` and `lock_timeout_ms` bound every statement of the session (None: the
    server's default); `server_settings` adds other `-c` settings; `params` are further libpq
    keywords (host, port, user, passfile ...), which override the DSN's.
    """
    options = _options(statement_timeout_ms, lock_timeout_ms, server_settings)
    if options:
        params["options"] = options
    return psycopg2.connect(
        dsn,
        application_name=application_name,
        connect_timeout=connect_timeout,
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
        **params,
    )
