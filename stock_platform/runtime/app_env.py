"""The environment the dashboard starts with: built from an allowlist, never inherited whole.

The dashboard is the platform's one program open to the public, so a variable
reaches it only when it is on the list: the process basics (PATH, HOME, the
locale, the time zone, Streamlit's own STREAMLIT_* options, the platform's
process marker) and the settings its pages read, written out from `Settings`.
Its POSTGRES_DSN names the read-only role and its PGPASSFILE a file holding
only that role's password. Everything else stays behind: PGPASSWORD, the
Finnhub key, Dagster's database URL, the writers' password file, and any
secret the shell happens to hold. `platform up` and `stock-platform dashboard`
both call `dashboard_env`, so the dashboard gets the same environment however
it is started.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from stock_platform.config import Settings
from stock_platform.runtime.postgres import PostgresServer

__all__ = ["DASHBOARD_BASICS", "MARKER", "dashboard_env", "dashboard_settings_env"]

logger = logging.getLogger(__name__)

# Every process `platform up` starts carries it (value: the data dir), so `down` finds them all.
MARKER = "STOCK_PLATFORM_APP"
# What any program needs to run at all, none of it a secret; PYTHONPATH for a checkout run without installing.
DASHBOARD_BASICS = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "PYTHONUNBUFFERED", MARKER,
     "PGCONNECT_TIMEOUT", "PGTARGETSESSIONATTRS"}
)  # fmt: skip
# libpq's TLS and service-file settings (paths and modes, no secrets) that a managed server may require.
_BASIC_PREFIXES = ("LC_", "STREAMLIT_", "PGSSL", "PGSERVICE")


def dashboard_settings_env(settings: Settings) -> dict[str, str]:
    """The settings the dashboard reads, as the variables that recreate them in its process.

    STOCK_DATA_DIR and POSTGRES_PORT locate the local server and its password files, so that
    `stock-platform dashboard`, given this environment, derives the same one again; the other
    ports keep its settings check (no two services on one port) seeing the same layout.
    """
    env = {
        "STOCK_DATA_DIR": str(settings.data_dir),
        "POSTGRES_DSN": settings.postgres_dsn,
        "POSTGRES_PORT": str(settings.postgres_port),
        # Every local port, so the dashboard's own settings check sees the layout `platform up` saw.
        "REDIS_PORT": str(settings.redis_port),
        "KAFKA_PORT": str(settings.kafka_port),
        "KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
        "DAGSTER_PORT": str(settings.dagster_port),
        "DASHBOARD_PORT": str(settings.dashboard_port),
        "REDIS_URL": settings.redis_url,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_TOPIC": settings.kafka_topic,
        "KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
        "KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
        "KAFKA_SASL_USERNAME": settings.kafka_sasl_username,
        "STOCK_SYMBOLS": ",".join(settings.symbols),
        "DAGSTER_URL": settings.dagster_url,
        "DASHBOARD_REFRESH_SECONDS": str(settings.dashboard_refresh_seconds),
        "DASHBOARD_STATEMENT_TIMEOUT_MS": str(settings.dashboard_statement_timeout_ms),
        "DASHBOARD_LOCK_TIMEOUT_MS": str(settings.dashboard_lock_timeout_ms),
        "DEAD_LETTERS_WARN_PER_HOUR": str(settings.dead_letters_warn_per_hour),
    }
    # The two secrets it uses, only when set: its own login, and the lag reader's on a SASL-secured Kafka.
    if settings.dashboard_password:
        env["DASHBOARD_PASSWORD"] = settings.dashboard_password
    if settings.kafka_sasl_password:
        env["KAFKA_SASL_PASSWORD"] = settings.kafka_sasl_password
    return env


def dashboard_env(settings: Settings, parent: Mapping[str, str]) -> dict[str, str]:
    """The dashboard's whole environment: `parent`'s basics, its settings, and its own PostgreSQL login.

    On the local server that login is the read-only role with a password file of its own. A
    deployment's server keeps POSTGRES_DSN as configured, and the PGPASSFILE the operator chose
    for it, if any (a path; libpq's own lookup in HOME otherwise).
    """
    env = {k: v for k, v in parent.items() if k in DASHBOARD_BASICS or k.startswith(_BASIC_PREFIXES)}
    env.update(dashboard_settings_env(settings))
    reader = PostgresServer(settings).dashboard_env()
    if reader:
        env.update(reader)
    elif parent.get("PGPASSFILE"):
        env["PGPASSFILE"] = parent["PGPASSFILE"]
    logger.debug("dashboard environment (names only): %s", sorted(env))
    return env
