"""Scratch PostgreSQL databases on the real server, one per test or session, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
from psycopg2 import sql


@contextmanager
def scratch_database(postgres_port: int, prefix: str) -> Iterator[str]:
    """Create an empty database owned by `stock` named `<prefix>_<random>`; yield its DSN; drop it (even if in use)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=postgres_port, user="postgres", dbname="postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER stock").format(sql.Identifier(name)))
        try:
            yield f"postgresql://stock@127.0.0.1:{postgres_port}/{name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()
