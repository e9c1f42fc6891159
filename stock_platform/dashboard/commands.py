"""`stock-platform dashboard [--port P]`: run the Streamlit dashboard in the foreground.

Streamlit replaces this process with the dashboard's own environment
(`runtime.app_env.dashboard_env`), the same one `platform up` gives it: started
by hand from a shell holding the Finnhub key or a writer's password, the
dashboard still receives neither.
"""

from __future__ import annotations

import argparse
import os
import sys

from stock_platform.config import Settings

__all__ = ["register", "streamlit_argv"]


def streamlit_argv(port: int, address: str = "127.0.0.1") -> list[str]:
    """The command line that serves the dashboard on `port` (used here and by the browser test)."""
    app = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.py")
    return [
        sys.executable, "-m", "streamlit", "run", app,
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip


def _dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from stock_platform.runtime.app_env import dashboard_env

    argv = streamlit_argv(args.port or settings.dashboard_port, args.address)
    env = dashboard_env(settings, os.environ)
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)  # noqa: S606 - replaces this process with Streamlit; argv is ours


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `dashboard` command."""
    parser = subparsers.add_parser("dashboard", help="serve the Streamlit dashboard (DASHBOARD_PORT, default 8501)")
    parser.add_argument("--port", type=int, default=0, help="port to serve on (default: DASHBOARD_PORT)")
    parser.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    parser.set_defaults(handler=_dashboard)
