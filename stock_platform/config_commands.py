"""`stock-platform config`: the effective settings, where each came from, secrets masked."""

from __future__ import annotations

import argparse

from stock_platform.config import Settings, setting_env_name

__all__ = ["register"]


def _config(args: argparse.Namespace, settings: Settings) -> int:
    from stock_platform.settings_docs import render_env_example, render_readme_table, setting_sources

    if args.env_example:
        print(render_env_example(), end="")
        return 0
    if args.markdown:
        print(render_readme_table(), end="")
        return 0
    values, sources = settings.describe(), setting_sources()
    rows = [(setting_env_name(name), value, sources[name]) for name, value in values.items()]
    width = max(len(variable) for variable, _, _ in rows)
    value_width = min(48, max(len(value) for _, value, _ in rows))
    for variable, value, source in rows:
        print(f"{variable:<{width}}  {value:<{value_width}}  {source}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `config` command."""
    parser = subparsers.add_parser("config", help="print the effective settings and where each came from (secrets masked)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--env-example", action="store_true", help="print the settings block of .env.example instead")
    shown.add_argument("--markdown", action="store_true", help="print the README's settings table instead")
    parser.set_defaults(handler=_config)
