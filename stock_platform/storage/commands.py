"""`stock-platform migrate`: apply pending SQL migrations."""

from __future__ import annotations

import argparse
import sys

from stock_platform.config import Settings

__all__ = ["register"]


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg2

    from stock_platform.config_passfile import with_local_passfile
    from stock_platform.storage.migrations import MigrationError, apply_migrations

    try:
        applied = apply_migrations(with_local_passfile(settings))
    except (MigrationError, psycopg2.OperationalError) as e:
        print(f"stock-platform migrate: {e}", file=sys.stderr)
        return 1
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `migrate` command."""
    parser = subparsers.add_parser("migrate", help="apply pending SQL migrations from sql/ to POSTGRES_DSN")
    parser.set_defaults(handler=_migrate)
