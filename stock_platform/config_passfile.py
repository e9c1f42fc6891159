"""Which password file libpq reads: the local server's own, which `services up` writes, when the DSN names it.

The local PostgreSQL requires passwords, generated once and kept in a libpq
password file (`Settings.postgres_passfile`, mode 0600). Pointing PGPASSFILE at
it lets every connection of a process and of its children (psycopg2, and
SQLAlchemy under Dagster) find its password, so no DSN, log line or command
line ever carries one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.extensions

if TYPE_CHECKING:
    from stock_platform.config import Settings

__all__ = ["dsn_is_local", "use_local_passfile"]


def dsn_is_local(dsn: str, port: int) -> bool:
    """True when `dsn` names the local server on `port` (127.0.0.1 or localhost), the one `services up` runs."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return False
    return params.get("host") in {"127.0.0.1", "localhost"} and str(params.get("port") or 5432) == str(port)


def use_local_passfile(settings: Settings) -> bool:
    """Set PGPASSFILE to the local server's password file when that exists and POSTGRES_DSN names that server.

    A PGPASSFILE already set wins (the platform sets its children's, the dashboard's to a file of its own);
    a remote DSN keeps libpq's own lookup (~/.pgpass). True when PGPASSFILE now names the local file.
    """
    path = str(settings.postgres_passfile)
    if os.environ.get("PGPASSFILE"):
        return os.environ["PGPASSFILE"] == path
    if not settings.postgres_passfile.is_file() or not dsn_is_local(settings.postgres_dsn, settings.postgres_port):
        return False
    os.environ["PGPASSFILE"] = path
    return True
