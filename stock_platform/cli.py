"""The `stock-platform` command: each stage package registers its own sub-commands.

Registration modules import nothing heavy, so `stock-platform --help` is quick
and a sub-command pays only for what it uses.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from stock_platform.config import load_settings

__all__ = ["main"]

# Each module has `register(subparsers)` adding parsers whose `handler(args, settings) -> int` runs the command.
_COMMAND_MODULES = (
    "stock_platform.runtime.commands",
    "stock_platform.storage.commands",
    "stock_platform.ingestion.commands",
    "stock_platform.streaming.commands",
    "stock_platform.dashboard.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every stage's sub-commands."""
    parser = argparse.ArgumentParser(prog="stock-platform", description="Real-time stock market data platform.")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"), help="logging level (default INFO)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, configure logging, run the chosen command, return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # kafka-python narrates every connection at INFO; its warnings are what matter.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        settings = load_settings()
    except ValueError as e:
        print(f"stock-platform: {e}", file=sys.stderr)
        return 2
    return int(args.handler(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
