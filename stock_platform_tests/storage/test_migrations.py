"""The migration runner applies sql/ in order, once, and refuses edited history."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from stock_platform.config import Settings
from stock_platform.storage.migrations import MigrationError, apply_migrations, default_sql_dir, discover_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_database(services: Settings):
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=services.postgres_port, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER stock").format(sql.Identifier(name)))
    yield f"postgresql://stock@127.0.0.1:{services.postgres_port}/{name}"
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def test_first_migration_is_the_seed_schema_verbatim() -> None:
    first = discover_migrations(default_sql_dir())[0]
    text = first.path.read_text()
    assert first.version == 1
    assert "UNIQUE(symbol, event_time)" in text
    assert "CREATE INDEX idx_symbol_time ON stock_prices(symbol, event_time DESC);" in text
    assert "CREATE INDEX idx_event_time ON stock_prices(event_time DESC);" in text


def test_applies_in_order_once(empty_database: str) -> None:
    applied = apply_migrations(empty_database)
    assert applied == [m.name for m in discover_migrations(default_sql_dir())]
    assert apply_migrations(empty_database) == []
    with psycopg2.connect(empty_database) as conn, conn.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'stock_prices'")
        assert {"idx_symbol_time", "idx_event_time"} <= {r[0] for r in cur.fetchall()}
        cur.execute("SELECT count(*) FROM schema_migrations")
        assert cur.fetchone()[0] == len(applied)


def test_edited_migration_is_refused(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "001_one.sql").write_text("CREATE TABLE one (x int);")
    assert apply_migrations(empty_database, tmp_path) == ["001_one.sql"]
    (tmp_path / "001_one.sql").write_text("CREATE TABLE one (x bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(empty_database, tmp_path)


def test_failed_migration_names_the_file_and_leaves_nothing(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE ok (x int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE bad (x int); SELECT * FROM missing_table;")
    with pytest.raises(MigrationError, match="002_bad.sql failed"):
        apply_migrations(empty_database, tmp_path)
    with psycopg2.connect(empty_database) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('bad'), to_regclass('ok')")
        assert cur.fetchone() == (None, "ok")


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_lower_snake.sql"):
        discover_migrations(tmp_path)


def test_migrate_run_by_hand_finds_the_local_password_without_pgpassfile(services) -> None:
    """The local server wants passwords; a shell with only the settings (no PGPASSFILE) must still migrate."""
    import os
    import subprocess
    import sys

    from stock_platform_tests.databases import scratch_database

    with scratch_database(services.postgres_port, "byhand") as dsn:
        env = {**os.environ, **services.to_env(), "POSTGRES_DSN": dsn}
        env.pop("PGPASSFILE", None)
        env.pop("PGPASSWORD", None)
        result = subprocess.run(
            [sys.executable, "-m", "stock_platform.cli", "migrate"], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.startswith("applied: 001_stock_prices.sql")
