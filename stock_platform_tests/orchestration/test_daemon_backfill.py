"""A compaction backfill over several days, launched from the CLI and run by the daemon with the repo's dagster.yaml."""

import subprocess
from collections.abc import Callable
from datetime import date, datetime

import dagster as dg
import psycopg2
import pytest

from stock_platform.runtime.processes import wait_until
from stock_platform_tests.orchestration.conftest import dagster_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAYS = [date(2025, 7, 1), date(2025, 7, 2), date(2025, 7, 3)]


def _seed(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        for n, day in enumerate(DAYS):
            minute = datetime(day.year, day.month, day.day, 15, 0)
            cur.execute("INSERT INTO stock_prices (symbol, price, event_time) VALUES ('BF', %s, %s)", (10 + n, minute))
            cur.execute(
                "INSERT INTO stock_candles_1m VALUES ('BF', %s, %s, %s, %s, %s, 0, 1, %s, %s)",
                (minute, 10 + n, 10 + n, 10 + n, 10 + n, minute, minute),
            )
    conn.close()


def _bar_days(dsn: str) -> list[date]:
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT day FROM stock_daily_bars WHERE symbol = 'BF' AND verified ORDER BY day")
        days = [r[0] for r in cur.fetchall()]
    conn.close()
    return days


def test_backfill_compacts_each_day_in_its_own_run(
    clean_tables: str, daemon_env: dict[str, str], start_daemon: Callable[..., subprocess.Popen]
) -> None:
    _seed(clean_tables)
    start_daemon(stop_sensors=["producer_supervisor", "streaming_supervisor"])
    dagster_cli(
        ["job", "backfill", "-w", "workspace.yaml", "-j", "compaction_job",
         "--from", DAYS[0].isoformat(), "--to", DAYS[-1].isoformat(), "--noprompt"],
        daemon_env,
    )  # fmt: skip
    instance = dg.DagsterInstance.get()

    def runs_by_partition() -> dict[str, dg.DagsterRunStatus]:
        runs = instance.get_runs(dg.RunsFilter(job_name="compaction_job"))
        return {r.tags.get("dagster/partition", "?"): r.status for r in runs if "dagster/backfill" in r.tags}

    done = wait_until(
        lambda: [s for s in runs_by_partition().values() if s == dg.DagsterRunStatus.SUCCESS].__len__() == len(DAYS),
        300,
        interval=2,
    )
    assert done, f"backfill runs: {runs_by_partition()}"
    assert set(runs_by_partition()) == {d.isoformat() for d in DAYS}
    assert _bar_days(clean_tables) == DAYS
    # The ticks of those old days were verified, so retention removed them.
    conn = psycopg2.connect(clean_tables)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM stock_prices WHERE symbol = 'BF'")
        assert cur.fetchone()[0] == 0
    conn.close()
