"""`stock-platform services up|down|status|env`."""

from __future__ import annotations

import argparse
import sys

from stock_platform.config import Settings

__all__ = ["register"]

_NAMES = ("postgres", "redis", "kafka", "spark")


def _services(args: argparse.Namespace, settings: Settings) -> int:
    from stock_platform.runtime.errors import ServiceError
    from stock_platform.runtime.services import services_down, services_env, services_status, services_up

    only = set(args.only) if args.only else None
    try:
        if args.action == "up":
            services_up(settings, only)
            for name, state in services_status(settings).items():
                print(f"{name}: {state}")
            if settings.spark_workers > 0 and (not only or "spark" in only):
                print(f"spark master {settings.spark_master} (UI http://127.0.0.1:{settings.spark_master_ui_port})")
        elif args.action == "down":
            stopped = services_down(settings, only)
            print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        elif args.action == "status":
            states = services_status(settings)
            for name, state in states.items():
                print(f"{name}: {state}")
            return 0 if all(s == "healthy" for s in states.values()) else 3
        else:
            for key, value in services_env(settings).items():
                print(f"{key}={value}")
    except ServiceError as e:
        print(f"stock-platform services {args.action}: {e}", file=sys.stderr)
        return 1
    return 0


def _platform(args: argparse.Namespace, settings: Settings) -> int:
    from stock_platform.config_passfile import with_local_passfile
    from stock_platform.runtime.apps import apps_down, apps_status, apps_up
    from stock_platform.runtime.errors import ServiceError
    from stock_platform.runtime.services import services_down, services_status, services_up
    from stock_platform.runtime.supervised_status import supervised_status
    from stock_platform.storage.migrations import MigrationError, apply_migrations

    try:
        if args.action == "up":
            services_up(settings)
            apply_migrations(with_local_passfile(settings))
            urls = apps_up(settings, supervise_with_dagster=not args.direct)
            print("stock-platform is up:")
            print(f"  dashboard      {urls['dashboard']}")
            print(f"  dagster        {urls['dagster-webserver']}")
            print(f"  logs           {settings.data_dir / 'logs'}")
            print(f"  market data    {'simulated market (no FINNHUB_API_KEY)' if settings.use_simulator else 'Finnhub'}")
        elif args.action == "down":
            stopped = apps_down(settings) + services_down(settings)
            print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        else:
            # The producer and the stream are Dagster runs, not our pid files, unless started with --direct.
            states = {**apps_status(settings), **supervised_status(settings), **services_status(settings)}
            for name, state in states.items():
                print(f"{name}: {state}")
    except (ServiceError, MigrationError) as e:
        print(f"stock-platform platform {args.action}: {e}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `services` and `platform` commands."""
    platform = subparsers.add_parser("platform", help="the whole platform: services, Dagster, producer, stream job, dashboard")
    platform.add_argument("action", choices=("up", "down", "status"))
    platform.add_argument(
        "--direct", action="store_true", help="start producer and stream job directly instead of through Dagster's sensors"
    )
    platform.set_defaults(handler=_platform)
    parser = subparsers.add_parser(
        "services", help="start, stop or inspect the local PostgreSQL, Redis, Kafka and (SPARK_WORKERS > 0) Spark cluster"
    )
    parser.add_argument("action", choices=("up", "down", "status", "env"))
    parser.add_argument("--only", nargs="+", choices=_NAMES, help="act on these services only")
    parser.set_defaults(handler=_services)
