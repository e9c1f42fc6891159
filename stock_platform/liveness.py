"""Whether a process is alive: one rule for the supervisors (orchestration) and the local launcher (runtime).

Kept outside both packages so the supervisor sensors, which also run on a
deployment with no local launcher, import nothing from `runtime`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["pid_alive"]


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid exists and is not a zombie (an exited child nobody reaped is dead)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
