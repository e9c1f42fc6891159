"""Small process helpers: detached starts with pid files, waiting, stopping a group."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from stock_platform.liveness import pid_alive

__all__ = [
    "live_pid",
    "pid_alive",
    "pids_with_env",
    "port_open",
    "read_pid",
    "start_detached",
    "stop_pid",
    "stop_pids",
    "wait_until",
]

logger = logging.getLogger(__name__)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_pid(pid_file: Path) -> int | None:
    """The pid written in a pid file, or None when the file is missing or not a number."""
    try:
        text = pid_file.read_text().split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


def live_pid(pid_file: Path) -> int | None:
    """The pid in `pid_file` when that process is alive, else None (how a service finds the process it started)."""
    pid = read_pid(pid_file)
    return pid if pid_alive(pid) else None


def pids_with_env(name: str, value: str) -> list[int]:
    """Live processes (other than this one) whose environment holds `name=value`: how a marked family is found.

    A process started with a marker passes it to everything it starts (a Spark worker to its
    executors), so the family can be stopped even when a parent died without cleaning up.
    """
    wanted = f"{name}={value}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def start_detached(
    argv: Sequence[str], log_file: Path, pid_file: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start a command in its own session (so it outlives us and stops as a group), logging to a file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - argv is built by the platform, never from user text
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env, cwd=cwd,
        )  # fmt: skip
    pid_file.write_text(f"{proc.pid}\n")
    logger.info("started %s pid=%s log=%s", argv[0], proc.pid, log_file)
    return proc.pid


def stop_pid(pid: int | None, timeout: float = 20.0, group: bool = True) -> bool:
    """Stop a process (and its group) with SIGTERM, then SIGKILL after `timeout`. True if it was running."""
    if not pid_alive(pid):
        return False
    assert pid is not None  # noqa: S101 - pid_alive(None) is False
    send = os.killpg if group else os.kill
    try:
        send(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not wait_until(lambda: not pid_alive(pid), timeout):
        logger.warning("pid %s ignored SIGTERM for %.0fs; sending SIGKILL", pid, timeout)
        try:
            send(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_until(lambda: not pid_alive(pid), 5)
    return True


def stop_pids(pids: Sequence[int | None], timeout: float = 20.0, group: bool = True) -> int:
    """Stop several processes (and their groups) at once; returns how many were running.

    All get SIGTERM together, then SIGKILL after `timeout`: members of one cluster stopped one by one
    would each wait on peers that are already gone (a KRaft broker's controlled shutdown needs a quorum).
    """
    live = [pid for pid in pids if pid is not None and pid_alive(pid)]
    send = os.killpg if group else os.kill
    for pid in live:
        try:
            send(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    if not wait_until(lambda: not any(pid_alive(p) for p in live), timeout):
        for pid in [p for p in live if pid_alive(p)]:
            logger.warning("pid %s ignored SIGTERM for %.0fs; sending SIGKILL", pid, timeout)
            try:
                send(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not any(pid_alive(p) for p in live), 5)
    return len(live)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; returns the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001, S110 - a probe that raises just means "not yet"
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
