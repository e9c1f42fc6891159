"""Installing the Debian packages the local services need, when they are missing."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable

from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.progress import AptProgress, run_with_progress

__all__ = ["ensure_commands"]

logger = logging.getLogger(__name__)
_apt_updated = False


def ensure_commands(needs: Iterable[tuple[str, str]]) -> None:
    """Make sure each (command or absolute path, Debian package) is there, installing with apt-get if not.

    Root installs directly, another user through passwordless sudo (`sudo -n`); anyone else gets a message naming
    the packages to install.
    """
    global _apt_updated
    missing = sorted({pkg for cmd, pkg in needs if not (os.path.exists(cmd) if cmd.startswith("/") else shutil.which(cmd))})
    if not missing:
        return
    as_root = _as_root()
    if as_root is None or not shutil.which("apt-get"):
        raise ServiceError("packages", f"missing {', '.join(missing)}", hint=f"sudo apt-get install -y {' '.join(missing)}")
    logger.info("installing Debian packages: %s (first run only; can take a few minutes)", " ".join(missing))
    if not _apt_updated:
        logger.info("apt-get update: refreshing the package lists")
        _apt_get(as_root, ["update"])
        _apt_updated = True
    returncode, stderr = _apt_get(as_root, ["install", "-y", "--no-install-recommends", *missing])
    if returncode != 0:
        raise ServiceError(
            "packages",
            f"apt-get install {' '.join(missing)} failed: {' '.join(stderr).strip()[-400:]}",
            hint=f"run `apt-get update && apt-get install -y {' '.join(missing)}` as root, then retry",
        )
    logger.info("installed %s", " ".join(missing))


def _as_root() -> list[str] | None:
    """The prefix that runs a command as root: none for root, `sudo -n` where sudo needs no password, else None."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:  # noqa: S607
        # sudo resets the environment, so the frontend setting goes on its command line.
        return ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]
    return None


def _apt_get(as_root: list[str], args: list[str]) -> tuple[int, list[str]]:
    """Run apt-get with its status lines on stderr, logged every ~10 %; return its exit code and its other stderr lines.

    Stderr rather than stdout because dpkg writes its chatter to stdout in blocks, which could split a status line.
    """
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = [*as_root, "apt-get", "-q", "-o", "APT::Status-Fd=2", *args]
    return run_with_progress(argv, AptProgress(logger).feed, env=env, stderr_only=True)
