"""Opening PostgreSQL connections the same way everywhere (stream job, benchmarks, Dagster, dashboard).

One helper so every connection names itself (`application_name` shows in
`pg_stat_activity`), fails fast when the server is down, and keeps TCP
keepalives on for the long-lived stream job.
"""

from __future__ import annotations

import logging

import psycopg2
from psycopg2.extensions import connection as PgConnection  # noqa: N812 - psycopg2's own class name

__all__ = ["PgConnection", "connect"]

logger = logging.getLogger(__name__)


def connect(dsn: str, application_name: str = "stock-platform", connect_timeout: int = 10) -> PgConnection:
    """A new psycopg2 connection (autocommit off) with a name, a connect timeout and keepalives."""
    return psycopg2.connect(
        dsn,
        application_name=application_name,
        connect_timeout=connect_timeout,
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )
