"""The Dagster command lines of docs/orchestration.md, run as CI would, against this session's database."""

import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from stock_platform.config import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def _env(settings: Settings, home: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {**os.environ, **settings.to_env(), "DAGSTER_HOME": str(home)}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([DAGSTER, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"dagster {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _seed(dsn: str, day: date) -> None:
    minute = datetime(day.year, day.month, day.day, 15, 0)
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO stock_prices (symbol, price, event_time) VALUES ('CLI', 10, %s), ('CLI', 12, %s)",
            (minute, minute + timedelta(seconds=5)),
        )
        cur.execute(
            "INSERT INTO stock_candles_1m VALUES ('CLI', %s, 10, 12, 10, 12, 0, 2, %s, %s)",
            (minute, minute, minute + timedelta(seconds=5)),
        )
    conn.close()


def _bar(dsn: str, day: date) -> tuple[object, ...] | None:
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT open, high, low, close, trade_count, verified FROM stock_daily_bars WHERE symbol = 'CLI' AND day = %s", (day,)
        )
        row = cur.fetchone()
    conn.close()
    return row


def test_definitions_validate_from_the_workspace(platform_settings: Settings, tmp_path: Path) -> None:
    done = _run(["definitions", "validate", "-w", "workspace.yaml"], _env(platform_settings, tmp_path / "home"))
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_asset_materialize_and_job_execute_compact_a_partition(
    platform_settings: Settings, clean_tables: str, tmp_path: Path
) -> None:
    env = _env(platform_settings, tmp_path / "home")
    first, second = date(2025, 5, 5), date(2025, 5, 6)
    _seed(clean_tables, first)

    _run(
        [
            "asset",
            "materialize",
            "-m",
            "stock_platform.definitions",
            "--select",
            "stock_daily_bars",
            "--partition",
            first.isoformat(),
        ],
        env,
    )
    assert _bar(clean_tables, first) is not None and _bar(clean_tables, first)[-1] is True
    assert _bar(clean_tables, second) is None

    # (Seeded only now: compacting a day also sweeps every other expired day that still holds ticks.)
    _seed(clean_tables, second)

    _run(
        ["job", "execute", "-m", "stock_platform.definitions", "-j", "compaction_job",
         "--tags", f'{{"dagster/partition": "{second.isoformat()}"}}'],
        env,
    )  # fmt: skip
    assert _bar(clean_tables, second) is not None

    _run(
        ["asset", "materialize", "-m", "stock_platform.definitions", "--select", "stock_prices,stock_candles_1m,dead_letters"],
        env,
    )
