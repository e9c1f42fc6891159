"""`stock-platform stream`: run the Spark Structured Streaming job (Kafka -> PostgreSQL + Redis)."""

from __future__ import annotations

import argparse
import sys

from stock_platform.config import Settings
from stock_platform.streaming.job import add_stream_arguments

__all__ = ["register"]


def _stream(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg2

    from stock_platform.storage.migrations import MigrationError
    from stock_platform.streaming.job import options_from_args, run_stream

    if args.print_jars:
        from stock_platform.streaming.job import print_submit_jars

        return print_submit_jars(settings)
    try:
        return run_stream(settings, options_from_args(args, settings))
    except (MigrationError, psycopg2.OperationalError) as e:
        print(f"stock-platform stream: {e}", file=sys.stderr)
        return 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `stream` command."""
    parser = subparsers.add_parser("stream", help="run the stream job until SIGTERM (or drain the topic with --available-now)")
    add_stream_arguments(parser)
    parser.set_defaults(handler=_stream)
