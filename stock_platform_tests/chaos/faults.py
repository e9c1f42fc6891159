"""Fault injection for one local platform: find each part's processes, SIGKILL them, and name how the platform heals.

The chaos suite uses these to kill one part at a time; they live with the
tests because nothing in the platform kills its own parts. Every lookup is scoped to one data directory: services by the
pid files under it, the Dagster-launched producer and stream job by the
`STOCK_PLATFORM_APP=<data dir>` marker their environment carries, so a
rehearsal never touches another platform on the same machine.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from stock_platform.config import Settings
from stock_platform.runtime.apps import marked_pids, platform_apps
from stock_platform.runtime.kafka_broker import KafkaBroker
from stock_platform.runtime.postgres import PostgresServer
from stock_platform.runtime.processes import pid_alive, read_pid, wait_until
from stock_platform.runtime.redis_server import RedisServer

__all__ = ["EXTRA_PARTS", "PARTS", "Proc", "kill_part", "marked_processes", "part_pids", "recovery_command"]

logger = logging.getLogger(__name__)

# Every part the chaos suite kills, in the order it kills them.
PARTS = ("stream", "producer", "kafka", "postgres", "redis", "dagster-daemon")
# Parts that can also be killed: the stream job's Spark JVM alone (its Python driver is left to notice).
EXTRA_PARTS = ("spark-jvm",)
# `stock-platform <command>` of a supervised component, as it appears in the process's argv.
_CLI_COMMANDS = {"stream": "stream", "producer": "produce"}


@dataclass(frozen=True)
class Proc:
    """One running process: pid, parent pid and argv."""

    pid: int
    ppid: int
    argv: tuple[str, ...]


def _read_proc(pid: int) -> Proc | None:
    try:
        argv = tuple(a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is already dead, only not yet reaped
        return None
    return Proc(pid, int(fields[1]), argv)


def marked_processes(settings: Settings) -> list[Proc]:
    """Live processes carrying this platform's marker: Dagster, its run workers, producer, stream and Spark."""
    return [proc for pid in marked_pids(settings.data_dir) if (proc := _read_proc(pid)) is not None]


def _is_cli(proc: Proc, command: str) -> bool:
    """True for `python -m stock_platform.cli <command> ...` (not a Dagster worker that merely mentions it)."""
    argv = proc.argv
    for i in range(len(argv) - 2):
        if argv[i] == "-m" and argv[i + 1] == "stock_platform.cli" and argv[i + 2] == command:
            return True
    return False


def _supervised_pids(settings: Settings, part: str) -> list[int]:
    """The component's CLI processes and their descendants (the stream's Spark JVM)."""
    procs = marked_processes(settings)
    roots = {p.pid for p in procs if _is_cli(p, _CLI_COMMANDS[part])}
    found, grew = set(roots), True
    while grew:
        children = {p.pid for p in procs if p.ppid in found} - found
        found |= children
        grew = bool(children)
    return sorted(found)


def part_pids(settings: Settings, part: str) -> list[int]:
    """The live processes that make up `part` of this platform (empty when it is down)."""
    if part in _CLI_COMMANDS:
        return _supervised_pids(settings, part)
    if part == "spark-jvm":
        driver = set(_supervised_pids(settings, "stream"))
        procs = {p.pid: p for p in marked_processes(settings)}
        return sorted(pid for pid in driver if pid in procs and Path(procs[pid].argv[0]).name == "java")
    if part == "kafka":
        pid = read_pid(KafkaBroker(settings).pid_file)
    elif part == "postgres":
        pid = read_pid(PostgresServer(settings).pgdata / "postmaster.pid")
    elif part == "redis":
        pid = read_pid(RedisServer(settings).pid_file)
    elif part == "dagster-daemon":
        app = next(a for a in platform_apps(settings, supervise_with_dagster=True) if a.name == "dagster-daemon")
        pid = read_pid(app.pid_file(settings))
    else:
        raise ValueError(f"unknown part {part!r}; one of {', '.join(PARTS)}")
    return [pid] if pid_alive(pid) else []


def kill_part(settings: Settings, part: str, timeout: float = 15.0, pids: list[int] | None = None) -> list[int]:
    """SIGKILL every process of `part` (only the daemon itself for Dagster: its runs outlive it); wait until gone.

    `pids` (from an earlier `part_pids`) skips the lookup, for a kill timed to the millisecond.
    """
    pids = part_pids(settings, part) if pids is None else pids
    if not pids:
        raise ProcessLookupError(f"{part} is not running under {settings.data_dir}")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    logger.warning("SIGKILL %s: pids %s", part, pids)
    if not wait_until(lambda: not any(pid_alive(p) for p in pids), timeout):
        raise TimeoutError(f"{part} pids {pids} still alive {timeout:.0f} s after SIGKILL")
    return pids


def recovery_command(part: str) -> list[str] | None:
    """The `stock-platform` arguments an operator runs to bring `part` back, or None when Dagster's supervisors do it."""
    if part in _CLI_COMMANDS or part == "spark-jvm":
        return None
    if part in {"kafka", "postgres", "redis"}:
        return ["services", "up"]
    if part == "dagster-daemon":
        return ["platform", "up"]  # idempotent: starts only the apps that are not running
    raise ValueError(f"unknown part {part!r}; one of {', '.join(PARTS)}")
