"""What a cluster's executors need to run the job's tasks, shipped the way Spark documents it.

Spark's "Python Package Management" guide: a packed virtual environment goes
out with `spark.archives` (unpacked as `./environment` beside each executor,
whose Python workers then run `./environment/bin/python`), and the project's
own code with `addPyFile`. So a worker needs only Java, Spark and the same
Python (venv-pack links the interpreter rather than copying it).

The packed environment holds only what tasks import (`EXECUTOR_PACKAGES`, at
the driver's versions so both sides agree), not the driver's whole virtualenv
with Dagster and Streamlit: a few dozen MB instead of a gigabyte, built once
into the cache directory and reused while those versions stay the same. The
code archive is rebuilt when any of the package's files change.

Local mode (`local[...]`) ships nothing: its workers already run the driver's Python.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

__all__ = ["EXECUTOR_PACKAGES", "code_archive", "executor_environment", "ships_to_executors"]

logger = logging.getLogger(__name__)

# What the tasks import beyond the standard library and pyspark (which Spark's workers bring).
EXECUTOR_PACKAGES = ("pyarrow", "pandas", "numpy", "psycopg2-binary", "redis")
_PROJECT = "stock_platform"


def ships_to_executors(master: str) -> bool:
    """True when executors run outside the driver's machine environment (any master but local mode)."""
    return not master.startswith("local")


def _requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in EXECUTOR_PACKAGES]


def executor_environment(cache_dir: Path) -> Path:
    """The packed executor environment (a .tar.gz for `spark.archives`), built on first use."""
    key = hashlib.sha256("\n".join([sys.version, *_requirements()]).encode()).hexdigest()[:12]
    archive = cache_dir / "executor-env" / f"executor-env-{key}.tar.gz"
    if archive.exists():
        return archive
    import venv_pack

    archive.parent.mkdir(parents=True, exist_ok=True)
    logger.info("building the executors' Python environment (%s) once: %s", ", ".join(_requirements()), archive)
    with tempfile.TemporaryDirectory(prefix="executor-env-") as tmp:
        env = Path(tmp) / "env"
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *_requirements()],
            check=True,
        )
        partial = archive.with_suffix(".partial")
        venv_pack.pack(prefix=str(env), output=str(partial), format="tar.gz", force=True, verbose=False)
        partial.replace(archive)
    return archive


def code_archive(cache_dir: Path) -> Path:
    """The project's package as a zip for `addPyFile`, named by a hash of its files (rebuilt when they change)."""
    import stock_platform

    root = Path(stock_platform.__file__).parent
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    archive = cache_dir / "executor-code" / f"{_PROJECT}-{digest.hexdigest()[:12]}.zip"
    if archive.exists():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, Path(_PROJECT) / path.relative_to(root))
    partial.replace(archive)
    for old in archive.parent.glob(f"{_PROJECT}-*.zip"):
        if old != archive:
            old.unlink(missing_ok=True)
    return archive
