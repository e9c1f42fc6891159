"""Writing a benchmark's figures to `bench/results/<name>.json` in the one shape `python -m bench` renders."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "figure", "postgres_version", "write_results"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def figure(name: str, value: float, unit: str, baseline: float | None = None, target: str | None = None) -> dict[str, Any]:
    """One figure; `ratio` is value / baseline when there is a baseline."""
    ratio = round(value / baseline, 4) if baseline else None
    return {"figure": name, "value": value, "unit": unit, "baseline": baseline, "ratio": ratio, "target": target}


def write_results(
    name: str, figures: list[dict[str, Any]], versions: dict[str, str], command: str, notes: list[str] | None = None
) -> Path:
    """Write the results file of benchmark `name` (atomically: a half-written file never replaces a good one)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "versions": {"python": platform.python_version(), **versions},
        "command": command,
        "figures": figures,
        "notes": notes or [],
    }
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def postgres_version(dsn: str) -> str:
    """The server version behind `dsn`, for the results' `versions`."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            return str(cur.fetchone()[0])
    finally:
        conn.close()
