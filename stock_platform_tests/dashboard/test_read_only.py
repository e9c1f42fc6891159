"""The dashboard's PostgreSQL access: a role that can only read, sessions that are read-only and time-limited.

Three separate guards, each tested on its own: the `stock_reader` role has
SELECT and nothing else (sql/013), every dashboard session is read-only (so a
writer's DSN cannot write through it either), and statement and lock timeouts
(DASHBOARD_STATEMENT_TIMEOUT_MS, DASHBOARD_LOCK_TIMEOUT_MS) cut a slow or
blocked query off.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.errors
import pytest

from stock_platform.config import Settings
from stock_platform.dashboard.connections import DataUnavailable, configure, pg_cursor, reset_connections
from stock_platform.runtime.postgres_auth import READER_ROLE, as_role
from stock_platform_tests.dashboard.conftest import texts

pytestmark = pytest.mark.integration

WRITES = [
    "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason) VALUES ('t', 0, 0, 'x')",
    "UPDATE stock_prices SET price = 0",
    "DELETE FROM stream_batches",
    "TRUNCATE stock_candles_1m",
    "CREATE TABLE planted (x int)",
]


@pytest.fixture
def limits_restored() -> Iterator[None]:
    """Whatever limits a test configures, the next one starts from the defaults."""
    yield
    configure(Settings.defaults())
    reset_connections()


@pytest.mark.parametrize("statement", WRITES, ids=lambda s: s.split()[0])
def test_the_reader_role_cannot_write(dash_settings: Settings, statement: str) -> None:
    # A plain connection, without the dashboard's read-only session: the role's privileges alone refuse.
    conn = psycopg2.connect(as_role(dash_settings.postgres_dsn, READER_ROLE), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, count(*) FROM stock_prices")
            assert cur.fetchone() == (READER_ROLE, 0)
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
    finally:
        conn.close()


def test_the_reader_can_read_every_platform_table(dash_settings: Settings) -> None:
    conn = psycopg2.connect(as_role(dash_settings.postgres_dsn, READER_ROLE), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            tables = [row[0] for row in cur.fetchall()]
            assert {"stock_prices", "stock_candles_1m", "stream_batches", "dead_letters"} <= set(tables)
            cur.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT has_table_privilege(c.oid, 'SELECT')"
            )
            assert cur.fetchall() == []
    finally:
        conn.close()


def test_a_table_created_after_the_migrations_is_readable_too(dash_settings: Settings) -> None:
    """ALTER DEFAULT PRIVILEGES: tomorrow's migration (or partition) needs no new grant."""
    writer = psycopg2.connect(dash_settings.postgres_dsn)
    try:
        with writer, writer.cursor() as cur:
            cur.execute("CREATE TABLE later_table (x int)")
        with pg_cursor(as_role(dash_settings.postgres_dsn, READER_ROLE)) as cur:
            cur.execute("SELECT count(*) FROM later_table")
            assert cur.fetchone() == (0,)
    finally:
        with writer, writer.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS later_table")
        writer.close()
        reset_connections()


def test_a_dashboard_session_is_read_only_even_with_a_writers_dsn(dash_settings: Settings) -> None:
    with pytest.raises(DataUnavailable, match="read-only transaction"):
        with pg_cursor(dash_settings.postgres_dsn) as cur:
            cur.execute(WRITES[0])
    with pg_cursor(dash_settings.postgres_dsn) as cur:
        cur.execute("SELECT count(*) FROM dead_letters")
        assert cur.fetchone() == (0,)


def test_sessions_carry_the_configured_timeouts(dash_settings: Settings, limits_restored: None) -> None:
    reader = as_role(dash_settings.postgres_dsn, READER_ROLE)
    with pg_cursor(reader) as cur:
        cur.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
        assert cur.fetchone() == ("5s", "2s")
    configure(dash_settings.replace(dashboard_statement_timeout_ms=300, dashboard_lock_timeout_ms=200))
    with pg_cursor(reader) as cur:
        cur.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
        assert cur.fetchone() == ("300ms", "200ms")
    with pytest.raises(DataUnavailable, match="statement timeout"):
        with pg_cursor(reader) as cur:
            cur.execute("SELECT pg_sleep(5)")


def test_a_locked_table_costs_a_page_the_lock_timeout_not_a_hang(
    run_page, dash_settings: Settings, monkeypatch: pytest.MonkeyPatch, limits_restored: None
) -> None:
    """Compaction holds table locks for a while: the page says so after DASHBOARD_LOCK_TIMEOUT_MS instead of waiting."""
    monkeypatch.setenv("DASHBOARD_LOCK_TIMEOUT_MS", "400")
    monkeypatch.setenv("DASHBOARD_STATEMENT_TIMEOUT_MS", "4321")
    locker = psycopg2.connect(dash_settings.postgres_dsn)
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE stock_candles_1m, stock_daily_bars, stock_prices IN ACCESS EXCLUSIVE MODE")
        at = run_page("compare", dash_settings)
    finally:
        locker.rollback()
        locker.close()
    assert not at.exception
    assert "canceling statement due to lock timeout" in texts(at.error), texts(at.error)
    # The page applied the settings it read: sessions opened from now on carry them.
    with pg_cursor(as_role(dash_settings.postgres_dsn, READER_ROLE)) as cur:
        cur.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
        assert cur.fetchone() == ("4321ms", "400ms")
