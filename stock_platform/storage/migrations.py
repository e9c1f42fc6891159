"""Applies the numbered SQL files in `sql/` in order, once each, recording what ran.

Each file runs in its own transaction together with its row in
`schema_migrations`, under an advisory lock, so two processes starting at once
(the stream job and a Dagster asset, say) never apply a file twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg2

from stock_platform.storage.postgres import connect

__all__ = ["Migration", "MigrationError", "apply_migrations", "default_sql_dir", "discover_migrations"]

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
# An arbitrary constant: the key of the advisory lock that serialises migration runs.
_LOCK_KEY = 7_461_001


class MigrationError(RuntimeError):
    """A migration file is malformed, out of order, changed after being applied, or failed."""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        """SHA-256 of the file: an applied migration must never change."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def default_sql_dir() -> Path:
    """The migrations that ship with the package: setup.py installs the repository's `sql/` as `stock_platform.sql`.

    Found through the import system, so an editable install reads the checkout's folder
    and a plain one its installed copy.
    """
    folder = resources.files("stock_platform.sql")
    if not isinstance(folder, Path):  # e.g. a zipped install: the runner reads and checksums files on disk
        raise MigrationError(f"the migrations are not files on disk ({folder}); install stock-platform unzipped")
    return folder


def discover_migrations(sql_dir: Path) -> list[Migration]:
    """The migration files in `sql_dir`, sorted by number; rejects duplicate numbers."""
    found: dict[int, Migration] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME_RE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_lower_snake.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: number {version} is also used by {found[version].name}")
        found[version] = Migration(version, path.name, path)
    return [found[v] for v in sorted(found)]


def apply_migrations(dsn: str, sql_dir: Path | None = None) -> list[str]:
    """Apply every pending migration; returns the names applied (empty when up to date)."""
    migrations = discover_migrations(sql_dir or default_sql_dir())
    applied_now: list[str] = []
    conn = connect(dsn, "stock-platform-migrations")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        with conn.cursor() as cur:
            cur.execute("SELECT version, name, checksum FROM schema_migrations")
            done = {v: (n, c) for v, n, c in cur.fetchall()}
        conn.commit()
        for migration in migrations:
            if migration.version in done:
                if done[migration.version][1] != migration.checksum:
                    raise MigrationError(f"{migration.name} changed after it was applied; add a new migration instead")
                continue
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(migration.path.read_text())
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg2.Error as e:
                raise MigrationError(f"{migration.name} failed: {e.pgerror or e}".strip()) from e
            logger.info("applied migration %s", migration.name)
            applied_now.append(migration.name)
    finally:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            conn.commit()
        finally:
            conn.close()
    return applied_now
