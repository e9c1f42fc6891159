"""The `stock-platform` command: each stage package registers its own sub-commands.

Registration modules import nothing heavy, so `stock-platform --help` is quick
and a sub-command pays only for what it uses. They are imported by name here:
a missing one is an import error, not a command that silently disappears.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

from stock_platform import config_commands
from stock_platform.config import load_settings
from stock_platform.dashboard import commands as dashboard_commands
from stock_platform.ingestion import commands as ingestion_commands
from stock_platform.runtime import commands as runtime_commands
from stock_platform.storage import commands as storage_commands
from stock_platform.streaming import commands as streaming_commands

__all__ = ["main"]

# Each module has `register(subparsers)` adding parsers whose `handler(args, settings) -> int` runs the command.
_COMMAND_MODULES: tuple[ModuleType, ...] = (
    config_commands,
    runtime_commands,
    storage_commands,
    ingestion_commands,
    streaming_commands,
    dashboard_commands,
)


def _version() -> str:
    """The installed distribution's version (what `pip install` recorded), or a note when running uninstalled."""
    try:
        return version("stock-platform")
    except PackageNotFoundError:
        return "unknown (not installed; run make install)"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every stage's sub-commands."""
    parser = argparse.ArgumentParser(prog="stock-platform", description="Real-time stock market data platform.")
    parser.add_argument("--log-level", help="logging level (default: the LOG_LEVEL setting, INFO)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in _COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, configure logging, run the chosen command, return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValueError as e:
        print(f"stock-platform: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=(args.log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # kafka-python narrates every connection at INFO; its warnings are what matter.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))
    return int(args.handler(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
