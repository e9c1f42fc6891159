"""The platform's own long-running programs: Dagster webserver and daemon, producer, stream job, dashboard.

`stock-platform platform up` starts the local services, applies migrations and
then these programs, each in its own process group with a pid file and a log
under the data directory. Every process started here (and everything it starts,
Dagster run workers and Spark included) carries the environment marker
`STOCK_PLATFORM_APP=<data dir>`, so `down` can find and stop all of them and
nothing else. Each gets only the secrets it uses: the writers inherit this
process's environment with PGPASSFILE naming the writers' password file (the
platform role alone, never the superuser's) and without the dashboard's
password; the dashboard, the one program open to the public, gets an
environment built from an allowlist (`app_env.dashboard_env`).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from stock_platform.config import Settings
from stock_platform.config_passfile import dsn_is_local
from stock_platform.runtime.app_env import MARKER, dashboard_env
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.processes import pid_alive, pids_with_env, read_pid, start_detached, stop_pid, wait_until
from stock_platform.runtime.services import services_env

__all__ = ["MARKER", "App", "app_env", "apps_down", "apps_status", "apps_up", "marked_pids", "platform_apps", "repo_root"]

logger = logging.getLogger(__name__)


def repo_root() -> Path:
    """The checkout holding `workspace.yaml` and `dagster.yaml`, which Dagster's commands read as files.

    They are not installed with the package (the migrations are: `stock_platform.sql`), so `platform up`
    runs from a checkout's editable install; `_checkout_files` says so when it does not.
    """
    return Path(__file__).resolve().parents[2]


def _checkout_files() -> None:
    """ServiceError unless `workspace.yaml` and `dagster.yaml` are there.

    Without `dagster.yaml` Dagster would quietly fall back to SQLite and no run limits, and two
    supervised stream jobs could then run at once.
    """
    missing = [name for name in ("workspace.yaml", "dagster.yaml") if not (repo_root() / name).is_file()]
    if missing:
        raise ServiceError(
            "dagster", f"{' and '.join(missing)} not found beside the installed package ({repo_root()})",
            hint="run `stock-platform platform up` from a checkout installed with `pip install -e .` (make up), "
            "or deploy with docker compose",
        )  # fmt: skip


@dataclass(frozen=True)
class App:
    """One long-running program: how to start it and how to tell it is up."""

    name: str
    argv: list[str]
    health_url: str | None = None

    def pid_file(self, settings: Settings) -> Path:
        """Where its pid is kept."""
        return settings.data_dir / "run" / f"{self.name}.pid"

    def log_file(self, settings: Settings) -> Path:
        """Where its output goes."""
        return settings.data_dir / "logs" / f"{self.name}.log"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stock_platform.cli", *args]


def platform_apps(settings: Settings, supervise_with_dagster: bool) -> list[App]:
    """The programs `up` starts, in order. With Dagster supervising, its sensors launch producer and stream."""
    bin_dir = Path(sys.executable).parent
    workspace = str(repo_root() / "workspace.yaml")
    apps = [
        App(
            "dagster-webserver",
            [str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(settings.dagster_port)],
            f"http://127.0.0.1:{settings.dagster_port}/server_info",
        ),
        App("dagster-daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace]),
    ]
    if not supervise_with_dagster:
        apps += [App("producer", _cli("produce")), App("stream", _cli("stream"))]
    apps.append(
        App(
            "dashboard",
            _cli("dashboard", "--port", str(settings.dashboard_port)),
            f"http://127.0.0.1:{settings.dashboard_port}/_stcore/health",
        )
    )
    return apps


def _writer_env(settings: Settings, parent: Mapping[str, str]) -> dict[str, str]:
    """`parent` plus the services' addresses and Dagster's storage; PGPASSFILE the writers' file (services_env)."""
    env = {**parent, **services_env(settings)}
    env.update({"DAGSTER_HOME": str(settings.data_dir / "dagster"), "DAGSTER_POSTGRES_URL": settings.dagster_postgres_url})
    env.pop("DASHBOARD_PASSWORD", None)
    if dsn_is_local(settings.postgres_dsn, settings.postgres_port):
        env.pop("PGPASSWORD", None)  # libpq would send it before reading the password file, and be refused
    return env


def app_env(settings: Settings, app: App, parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment `app` starts with (from `parent`, this process's environment by default), marked as ours.

    The dashboard's is `dashboard_env`: an allowlist, the read-only role and its own password file; the
    others' is `parent` with the writers' password file and without the dashboard's password.
    """
    base = {**(os.environ if parent is None else parent), MARKER: str(settings.data_dir), "PYTHONUNBUFFERED": "1"}
    return dashboard_env(settings, base) if app.name == "dashboard" else _writer_env(settings, base)


def _prepare_dagster_home(settings: Settings) -> None:
    home = settings.data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(repo_root() / "dagster.yaml", home / "dagster.yaml")


def _up(app: App, pid_file: Path) -> bool:
    """Its process lives and it answers."""
    return pid_alive(read_pid(pid_file)) and _healthy(app)


def _healthy(app: App) -> bool:
    if app.health_url is None:
        return True
    return requests.get(app.health_url, timeout=2).status_code == 200


def apps_up(settings: Settings, supervise_with_dagster: bool, timeout_s: float = 180) -> dict[str, str]:
    """Start every app that is not running, wait for each to answer; returns name -> URL or state."""
    _checkout_files()
    (settings.data_dir / "run").mkdir(parents=True, exist_ok=True)
    _prepare_dagster_home(settings)
    apps = platform_apps(settings, supervise_with_dagster)
    for app in apps:
        if pid_alive(read_pid(app.pid_file(settings))):
            continue
        env = app_env(settings, app)
        start_detached(app.argv, app.log_file(settings), app.pid_file(settings), env=env, cwd=repo_root())
    out: dict[str, str] = {}
    for app in apps:
        pid_file, log_file = app.pid_file(settings), app.log_file(settings)
        ok = wait_until(functools.partial(_up, app, pid_file), timeout_s, interval=1)
        if not ok:
            state = "exited" if not pid_alive(read_pid(pid_file)) else "not answering"
            raise ServiceError(app.name, f"{state} after start", log_file, hint="read the log; `make down` then `make up`")
        out[app.name] = (app.health_url or "running").replace("/server_info", "").replace("/_stcore/health", "")
    return out


def marked_pids(data_dir: Path) -> list[int]:
    """Processes (other than this one) carrying the marker of the platform in `data_dir`: run workers and Spark too."""
    return pids_with_env(MARKER, str(data_dir))


def apps_down(settings: Settings) -> list[str]:
    """Stop every app (reverse order), then any straggler that carries our marker; returns what was stopped."""
    stopped = []
    for app in reversed(platform_apps(settings, supervise_with_dagster=False)):
        if stop_pid(read_pid(app.pid_file(settings)), timeout=30):
            stopped.append(app.name)
        app.pid_file(settings).unlink(missing_ok=True)
    stragglers = marked_pids(settings.data_dir)
    for pid in stragglers:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    if stragglers and not wait_until(lambda: not any(pid_alive(p) for p in stragglers), 20):
        for pid in stragglers:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    if stragglers:
        stopped.append(f"{len(stragglers)} run process(es)")
    return stopped


def apps_status(settings: Settings) -> dict[str, str]:
    """Each app's state."""
    out = {}
    for app in platform_apps(settings, supervise_with_dagster=False):
        alive = pid_alive(read_pid(app.pid_file(settings)))
        out[app.name] = "running" if alive else "stopped"
    return out
