"""Installing the Debian packages the local services need, when they are missing."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable

from stock_platform.runtime.errors import ServiceError

__all__ = ["ensure_commands"]

logger = logging.getLogger(__name__)
_apt_updated = False


def ensure_commands(needs: Iterable[tuple[str, str]]) -> None:
    """Make sure each (command or absolute path, Debian package) is there, installing with apt-get if not.

    Only root can install; anyone else gets a message naming the packages to install.
    """
    global _apt_updated
    missing = sorted({pkg for cmd, pkg in needs if not (os.path.exists(cmd) if cmd.startswith("/") else shutil.which(cmd))})
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError("packages", f"missing {', '.join(missing)}", hint=f"sudo apt-get install -y {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    logger.info("installing Debian packages: %s", " ".join(missing))
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, capture_output=True)  # noqa: S607
        _apt_updated = True
    result = subprocess.run(  # noqa: S603
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],  # noqa: S607
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise ServiceError(
            "packages",
            f"apt-get install {' '.join(missing)} failed: {result.stderr.strip()[-400:]}",
            hint=f"run `apt-get update && apt-get install -y {' '.join(missing)}` as root, then retry",
        )
