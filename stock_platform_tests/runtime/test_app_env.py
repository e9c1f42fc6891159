"""Each program the platform starts gets only the secrets it uses; the dashboard's environment is an allowlist.

The first tests build the environments from a parent full of secrets, as a
developer's shell may be, without any service. The last ones use the real
password files and run a Python process in the dashboard's exact environment
against the real server, as the dashboard process would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg2.extensions import parse_dsn

from stock_platform import cli
from stock_platform.config import Settings, load_settings
from stock_platform.runtime.app_env import DASHBOARD_BASICS, MARKER, dashboard_env
from stock_platform.runtime.apps import App, app_env, platform_apps
from stock_platform.runtime.postgres import PostgresServer
from stock_platform.runtime.postgres_auth import READER_ROLE, SUPERUSER, read_passwords

# Secrets a shell may hold; none is the dashboard's to have.
SHELL_SECRETS = {
    "PGPASSWORD": "dummy-pgpassword",
    "POSTGRES_PASSWORD": "dummy-postgres-password",
    "REDIS_PASSWORD": "dummy-redis-password",
    "FINNHUB_API_KEY": "dummy-finnhub-key",
    "DAGSTER_POSTGRES_URL": "postgresql://stock:dummy-dagster@127.0.0.1:5432/dagster",
    "AWS_SECRET_ACCESS_KEY": "dummy-aws-secret",
}
# The settings the dashboard's pages read, and the two that place the local server and its password files.
DASHBOARD_SETTINGS = {
    "STOCK_DATA_DIR", "POSTGRES_DSN", "POSTGRES_PORT", "REDIS_URL", "REDIS_KEY_PREFIX", "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "STOCK_SYMBOLS",
    "DAGSTER_URL", "DASHBOARD_REFRESH_SECONDS", "DASHBOARD_STATEMENT_TIMEOUT_MS", "DASHBOARD_LOCK_TIMEOUT_MS",
    "DEAD_LETTERS_WARN_PER_HOUR", "DASHBOARD_PASSWORD", "PGPASSFILE",
    "REDIS_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "DAGSTER_PORT", "DASHBOARD_PORT", "LOG_LEVEL",
}  # fmt: skip

_PROBE = """
import os, psycopg2, psycopg2.errors
conn = psycopg2.connect(os.environ["POSTGRES_DSN"], connect_timeout=5)
cur = conn.cursor()
cur.execute("SELECT current_user, count(*) FROM stock_prices")
print("read as", *cur.fetchone())
try:
    cur.execute("INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason) VALUES ('t', 0, 0, 'x')")
    print("wrote")
except psycopg2.errors.InsufficientPrivilege:
    print("write refused")
"""


@pytest.fixture
def parent(tmp_path: Path) -> dict[str, str]:
    """A shell's environment: the basics, a Streamlit option, secrets, and PGPASSFILE naming the admin file."""
    return {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
        "STREAMLIT_THEME_BASE": "dark", "DASHBOARD_PASSWORD": "dummy-dashboard-password",
        "PGPASSFILE": str(tmp_path / "secrets" / "admin.pgpass"), "SOMETHING_ELSE": "x", **SHELL_SECRETS,
    }  # fmt: skip


def _use_environ(mp: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Make `env` this process's whole environment (restored when `mp` undoes)."""
    for name in list(os.environ):
        mp.delenv(name)
    for name, value in env.items():
        mp.setenv(name, value)


@pytest.fixture
def local(tmp_path: Path, parent: dict[str, str]) -> Settings:
    """Settings of a platform on the local server, as `load_settings` reads them from `parent` alone."""
    with pytest.MonkeyPatch.context() as mp:
        _use_environ(mp, {**parent, "STOCK_DATA_DIR": str(tmp_path)})
        return load_settings()


def _dashboard(settings: Settings) -> App:
    return next(app for app in platform_apps(settings, supervise_with_dagster=True) if app.name == "dashboard")


def test_the_dashboard_gets_the_allowlist_and_nothing_else(local: Settings, parent: dict[str, str]) -> None:
    # libpq's TLS settings pass (a managed server may require them; no secret), like the process basics.
    env = app_env(local, _dashboard(local), {**parent, "PGSSLMODE": "verify-full"})
    basics = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "STREAMLIT_THEME_BASE", "PGSSLMODE", MARKER, "PYTHONUNBUFFERED"}
    assert set(env) == DASHBOARD_SETTINGS | basics
    assert set(env) <= DASHBOARD_SETTINGS | DASHBOARD_BASICS | {"LC_ALL", "STREAMLIT_THEME_BASE", "PGSSLMODE"}
    for name, secret in SHELL_SECRETS.items():
        assert secret not in str(env), f"the dashboard receives {name}"
    assert parse_dsn(env["POSTGRES_DSN"])["user"] == READER_ROLE
    assert env["PGPASSFILE"] == str(PostgresServer(local).dashboard_passfile)
    assert env["DASHBOARD_PASSWORD"] == "dummy-dashboard-password" and env[MARKER] == str(local.data_dir)


def test_started_by_hand_the_dashboard_gets_the_same_environment(
    local: Settings, parent: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stock-platform dashboard` from a shell full of secrets, and again inside the environment `platform up` gives it."""
    execs: list[dict[str, str]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: execs.append(dict(env)))
    for shell in ({**parent, "STOCK_DATA_DIR": str(local.data_dir)}, app_env(local, _dashboard(local), parent)):
        with pytest.MonkeyPatch.context() as mp:
            _use_environ(mp, shell)
            assert cli.main(["dashboard", "--port", str(local.dashboard_port)]) == 0
    by_hand, under_platform_up = execs
    assert by_hand == dashboard_env(local, parent)
    assert under_platform_up == app_env(local, _dashboard(local), parent), "applied twice, the environment is the same"
    assert "FINNHUB_API_KEY" not in by_hand and "DAGSTER_POSTGRES_URL" not in by_hand and "PGPASSWORD" not in by_hand


def test_a_deployments_own_server_keeps_its_dsn_and_the_operators_password_file(local: Settings, parent) -> None:
    remote = local.replace(postgres_dsn="postgresql://reader@db.example.com:5432/stock")
    env = dashboard_env(remote, parent)
    assert env["POSTGRES_DSN"] == remote.postgres_dsn and env["PGPASSFILE"] == parent["PGPASSFILE"]
    assert "PGPASSWORD" not in env


@pytest.mark.parametrize("name", ["producer", "stream", "dagster-webserver", "dagster-daemon"])
def test_the_writers_get_the_writers_file_and_not_the_dashboard_password(local: Settings, parent, name: str) -> None:
    apps = {app.name: app for app in platform_apps(local, supervise_with_dagster=False)}
    env = app_env(local, apps[name], parent)
    assert env["FINNHUB_API_KEY"] == "dummy-finnhub-key"
    assert "DASHBOARD_PASSWORD" not in env
    assert "PGPASSWORD" not in env, "it would be sent to the local server before the password file is read"
    assert env["POSTGRES_DSN"] == local.postgres_dsn and env["PGPASSFILE"] == str(local.postgres_passfile)


def test_spark_daemons_get_the_writers_file_only(local: Settings, parent, monkeypatch: pytest.MonkeyPatch) -> None:
    from stock_platform.runtime.spark_cluster import SparkCluster

    _use_environ(monkeypatch, parent)
    env = SparkCluster(local)._env()
    assert env["PGPASSFILE"] == str(local.postgres_passfile)
    assert not set(SHELL_SECRETS) & set(env)


@pytest.mark.integration
def test_the_password_files_hold_only_their_programs_roles(platform_settings: Settings) -> None:
    server = PostgresServer(platform_settings)
    assert set(read_passwords(server.passfile)) == {"stock"}, "no writer may know the superuser's password"
    assert set(read_passwords(server.dashboard_passfile)) == {READER_ROLE}
    assert {SUPERUSER, "stock", READER_ROLE} <= set(read_passwords(server.admin_passfile))


@pytest.mark.integration
def test_a_process_in_the_dashboards_environment_reads_but_cannot_write(platform_settings: Settings, parent) -> None:
    env = app_env(platform_settings, _dashboard(platform_settings), parent)
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    read, write = done.stdout.splitlines()[:2]
    assert read.startswith(f"read as {READER_ROLE} ") and write == "write refused", done.stdout
