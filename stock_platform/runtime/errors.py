"""The one exception the runtime raises: which part failed, where to look, what to try."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ServiceError"]


class ServiceError(RuntimeError):
    """A local service could not be installed, started or reached."""

    def __init__(self, part: str, problem: str, log_file: Path | None = None, hint: str = "") -> None:
        self.part = part
        message = f"{part}: {problem}"
        if log_file is not None:
            message += f" (log: {log_file})"
        if hint:
            message += f"; try: {hint}"
        super().__init__(message)
