"""Each program `platform up` starts gets only the secrets it uses; the dashboard reads as the read-only role.

The environments are the ones `apps_up` hands to its programs; the last test
runs a Python process in the dashboard's exact environment against the real
server, as the dashboard process would.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg2.extensions import parse_dsn

from stock_platform.config import Settings
from stock_platform.runtime.apps import App, app_env, platform_apps
from stock_platform.runtime.postgres_auth import READER_ROLE, read_passwords

pytestmark = pytest.mark.integration

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
def apps(platform_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, dict[str, App]]:
    """The session database's settings, a Finnhub key and a dashboard password in the environment, and the apps."""
    monkeypatch.setenv("FINNHUB_API_KEY", "dummy-finnhub-key")
    monkeypatch.setenv("DASHBOARD_PASSWORD", "dummy-dashboard-password")
    settings = dataclasses.replace(platform_settings, finnhub_api_key="dummy-finnhub-key")
    return settings, {app.name: app for app in platform_apps(settings, supervise_with_dagster=False)}


def test_the_dashboard_gets_the_reader_role_and_no_finnhub_key(apps) -> None:
    settings, by_name = apps
    env = app_env(settings, by_name["dashboard"])
    assert "FINNHUB_API_KEY" not in env and "DAGSTER_POSTGRES_URL" not in env
    assert env["DASHBOARD_PASSWORD"] == "dummy-dashboard-password"
    assert parse_dsn(env["POSTGRES_DSN"])["user"] == READER_ROLE
    assert set(read_passwords(Path(env["PGPASSFILE"]))) == {READER_ROLE}, "the dashboard's file holds no writer's password"


@pytest.mark.parametrize("name", ["producer", "stream", "dagster-webserver", "dagster-daemon"])
def test_the_other_programs_get_the_writer_and_not_the_dashboard_password(apps, name: str) -> None:
    settings, by_name = apps
    env = app_env(settings, by_name[name])
    assert env["FINNHUB_API_KEY"] == "dummy-finnhub-key"
    assert "DASHBOARD_PASSWORD" not in env
    assert env["POSTGRES_DSN"] == settings.postgres_dsn and env["PGPASSFILE"] == str(settings.postgres_passfile)


def test_a_process_in_the_dashboards_environment_reads_but_cannot_write(apps) -> None:
    settings, by_name = apps
    env = app_env(settings, by_name["dashboard"])
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60)  # noqa: S603
    assert done.returncode == 0, done.stderr[-2000:]
    read, write = done.stdout.splitlines()[:2]
    assert read.startswith(f"read as {READER_ROLE} ") and write == "write refused", done.stdout
