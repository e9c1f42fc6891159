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

from stock_platform.config import APP_MARKER, Settings
from stock_platform.runtime.postgres import PostgresServer

__all__ = ["DASHBOARD_BASICS", "DASHBOARD_SETTINGS", "MARKER", "dashboard_env", "dashboard_settings_env"]

logger = logging.getLogger(__name__)

MARKER = APP_MARKER  # every process `platform up` starts carries it (see stock_platform.config)
# What any program needs to run at all, none of it a secret; PYTHONPATH for a checkout run without installing.
DASHBOARD_BASICS = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "PYTHONUNBUFFERED", MARKER,
     "PGCONNECT_TIMEOUT", "PGTARGETSESSIONATTRS"}
)  # fmt: skip
# libpq's TLS and service-file settings (paths and modes, no secrets) that a managed server may require.
_BASIC_PREFIXES = ("LC_", "STREAMLIT_", "PGSSL", "PGSERVICE")


# The settings the dashboard reads. STOCK_DATA_DIR and POSTGRES_PORT locate the local server and its password
# files, so that `stock-platform dashboard`, given this environment, derives the same one again; every local port
# keeps its settings check (no two services on one port) seeing the layout `platform up` saw. Of the secrets only
# its own login and, on a SASL-secured Kafka, the lag reader's password (each passed only when set).
DASHBOARD_SETTINGS = (
    "data_dir", "postgres_dsn", "postgres_port", "redis_port", "kafka_port", "kafka_controller_port", "dagster_port",
    "dashboard_port", "redis_url", "redis_key_prefix", "kafka_bootstrap_servers", "kafka_topic",
    "kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password", "symbols",
    "dagster_url", "dashboard_refresh_seconds", "dashboard_password", "dashboard_statement_timeout_ms",
    "dashboard_lock_timeout_ms", "dead_letters_warn_per_hour", "log_level",
)  # fmt: skip


def dashboard_settings_env(settings: Settings) -> dict[str, str]:
    """The settings the dashboard reads, as the variables that recreate them in its process."""
    return settings.to_env(DASHBOARD_SETTINGS)


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
