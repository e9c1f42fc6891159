"""Which password file libpq reads for the local server, decided from the settings alone.

The local PostgreSQL requires passwords, generated once and kept in libpq
password files (mode 0600) that `services up` writes. Nothing here touches the
environment: the platform names a file in each child's PGPASSFILE
(`runtime.apps`, `runtime.app_env`), and a connection this process opens itself names the file
in its DSN (`with_local_passfile`), so no DSN, log line or command line ever
carries a password and no setting reaches a process that did not ask for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg2
import psycopg2.extensions

if TYPE_CHECKING:
    from stock_platform.config import Settings

__all__ = ["LOCAL_HOSTS", "dsn_is_local", "with_local_passfile"]

# The host names a DSN may give for the local server; libpq matches a password file's host field literally.
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def dsn_is_local(dsn: str, port: int) -> bool:
    """True when `dsn` names the local server on `port` (127.0.0.1 or localhost), the one `services up` runs."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return False
    return params.get("host") in LOCAL_HOSTS and str(params.get("port") or 5432) == str(port)


def with_local_passfile(settings: Settings) -> str:
    """POSTGRES_DSN naming the writers' password file (libpq's `passfile`) when it names the local server.

    For connections this process opens itself (`platform up` and `migrate` applying the migrations, the
    stream job's driver and, through its task settings, its executors): the file is
    named in the DSN rather than in PGPASSFILE, so the process's environment, which its children
    inherit, stays as it was. Another server's DSN, or the local one before `services up` wrote the
    file (someone's own server on that port), is returned as it is: libpq's own lookup serves it.
    """
    if not dsn_is_local(settings.postgres_dsn, settings.postgres_port) or not settings.postgres_passfile.exists():
        return settings.postgres_dsn
    return psycopg2.extensions.make_dsn(settings.postgres_dsn, passfile=str(settings.postgres_passfile))
