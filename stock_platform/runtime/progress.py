"""Progress lines for the slow steps of a first run: jars from Maven Central and Debian packages from apt-get.

On a fresh machine these steps take minutes, and a silent minute cannot be told from a hang. Each reader here turns
the tool's own machine-readable output into a few INFO lines (one per jar, one per ~10 % of an apt-get phase), never
a carriage return, so the same output reads well in a terminal and in a CI log.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Callable

__all__ = ["AptProgress", "MavenProgress", "format_size", "run_with_progress"]

logger = logging.getLogger(__name__)

# Maven's batch-mode (-B) transfer lines: "Downloading from central: <url>", then
# "Downloaded from central: <url> (6.1 MB at 2.3 MB/s)"; its sizes are decimal units in an English locale.
_MAVEN_START = re.compile(r"Downloading from [^:]+: (\S+)")
_MAVEN_DONE = re.compile(r"Downloaded from [^:]+: (\S+) \((\d+(?:\.\d+)?) (B|kB|MB|GB)\b")
_UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def format_size(size: int) -> str:
    """`size` bytes the way Maven prints them ("917 B", "6.1 MB", "46 MB"), so our totals read like its lines."""
    for unit in ("GB", "MB", "kB"):
        if size >= _UNITS[unit]:
            value = size / _UNITS[unit]
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size} B"


class MavenProgress:
    """Reads Maven's output and logs one line per jar fetched; the many small POM and metadata files in between get
    a line at most every `quiet` seconds, enough to show that resolution is moving."""

    def __init__(self, log: logging.Logger = logger, clock: Callable[[], float] = time.monotonic, quiet: float = 10.0) -> None:
        self._log, self._clock, self._quiet = log, clock, quiet
        self._started: dict[str, float] = {}
        self._last_line = clock()
        self.jars = 0
        self.other_files = 0
        self.total_bytes = 0

    def feed(self, line: str) -> None:
        """Take one line of Maven's output."""
        if started := _MAVEN_START.search(line):
            self._started[started[1]] = self._clock()
            return
        done = _MAVEN_DONE.search(line)
        if done is None:
            return
        url, size = done[1], int(float(done[2]) * _UNITS[done[3]])
        now = self._clock()
        took = now - self._started.pop(url, now)
        self.total_bytes += size
        name = url.rsplit("/", 1)[-1]
        if name.endswith(".jar"):
            self.jars += 1
            self._log.info(
                "fetched %s (%s) in %.1f s [jar %d, %s so far]",
                name, format_size(size), took, self.jars, format_size(self.total_bytes),
            )  # fmt: skip
        else:
            self.other_files += 1
            if now - self._last_line < self._quiet:
                return
            self._log.info("resolving dependencies: %d POM and metadata files fetched so far", self.other_files)
        self._last_line = now

    def summary(self) -> str:
        """What was downloaded in all, for the closing line ("12 jars and 80 other files, 46 MB")."""
        return f"{self.jars} jars and {self.other_files} other files, {format_size(self.total_bytes)}"


class AptProgress:
    """Reads apt-get's status lines (`-o APT::Status-Fd=N`: "dlstatus:<item>:<percent>:<text>" while downloading,
    "pmstatus:<package>:<percent>:<text>" while installing) and logs each phase every `step` percent."""

    _PHASES = {"dlstatus": "downloading", "pmstatus": "installing"}

    def __init__(self, log: logging.Logger = logger, step: int = 10) -> None:
        self._log, self._step = log, step
        self._reported: dict[str, int] = {}

    def feed(self, line: str) -> bool:
        """Take one line; True when it was a status line (so it is no use in an error message)."""
        kind, _, rest = line.partition(":")
        phase = self._PHASES.get(kind)
        if phase is None:
            return False
        try:
            _item, percent, text = rest.split(":", 2)
            reached = int(float(percent)) // self._step * self._step
        except ValueError:
            return True
        if reached > self._reported.get(kind, -1):
            self._reported[kind] = reached
            self._log.info("apt-get %s: %d %% (%s)", phase, reached, text.strip())
        return True


def run_with_progress(
    argv: list[str], feed: Callable[[str], bool | None], *, env: dict[str, str] | None = None, stderr_only: bool = False
) -> tuple[int, list[str]]:
    """Run `argv`, handing each output line to `feed` as it arrives; return the exit code and the lines `feed` did
    not claim (returned True for). Output is stdout and stderr together, or only stderr with `stderr_only`."""
    stdout, stderr = (subprocess.DEVNULL, subprocess.PIPE) if stderr_only else (subprocess.PIPE, subprocess.STDOUT)
    kept: list[str] = []
    with subprocess.Popen(  # noqa: S603 - argv is ours (apt-get or mvn and their arguments)
        argv, env=env, text=True, encoding="utf-8", errors="replace", stdout=stdout, stderr=stderr
    ) as proc:
        for raw in (proc.stderr if stderr_only else proc.stdout) or ():
            line = raw.rstrip("\n")
            if not feed(line):
                kept.append(line)
    return proc.returncode, kept
