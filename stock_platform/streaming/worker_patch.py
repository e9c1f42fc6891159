"""Make PySpark's per-task `importlib.invalidate_caches()` cheap in Python workers.

PySpark's worker calls `importlib.invalidate_caches()` before every task
(`worker_util.setup_spark_files`). On Python 3.11 that makes each zip on
`sys.path` re-read its whole directory, and Spark puts its own 3.5 MB
`pyspark.zip` there: measured with py-spy under 15,000 quotes/s, 43 % of the
Python workers' time went to re-reading it, ~40 ms a task. The zips never
change while a worker lives, so this re-reads a zip's directory only when the
file's size or modification time changed, which keeps the meaning of
`invalidate_caches` (see the closing note of issue 10 and BENCHMARKS.md).
"""

from __future__ import annotations

import os
import zipimport

__all__ = ["install"]

_MARK = "_stock_platform_stamped"


def install() -> None:
    """Patch `zipimporter.invalidate_caches` once per process (idempotent)."""
    original = zipimport.zipimporter.invalidate_caches
    if getattr(original, _MARK, False):
        return
    stamps: dict[str, tuple[int, int]] = {}

    def invalidate_caches(self: zipimport.zipimporter) -> None:
        try:
            st = os.stat(self.archive)
        except OSError:
            original(self)
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamps.get(self.archive) != stamp:
            original(self)
            stamps[self.archive] = stamp

    setattr(invalidate_caches, _MARK, True)
    zipimport.zipimporter.invalidate_caches = invalidate_caches  # type: ignore[method-assign]
