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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `services` command."""
    parser = subparsers.add_parser("services", help="start, stop or inspect the local PostgreSQL, Redis and Kafka")
    parser.add_argument("action", choices=("up", "down", "status", "env"))
    parser.add_argument("--only", nargs="+", choices=_NAMES, help="act on these services only")
    parser.set_defaults(handler=_services)
