"""Chaos: while simulated quotes (1 % invalid, some hostile) flow, SIGKILL each part of a platform in turn; every record
ends in exactly its one place, and nothing is lost or doubled.

A whole platform (`stock-platform platform up` on free ports, its own data
dir) runs with Dagster supervising the producer and the Spark job. The test
sends a known set of quotes phase by phase; in each phase after the baseline
it SIGKILLs one part mid-flow: the Spark stream job, the producer (both brought
back by Dagster's supervisor sensors), the Kafka broker, PostgreSQL, Redis
(`stock-platform services up`) and the Dagster daemon (`platform up`). Every
phase also publishes hostile records (`hostile`), most of them after its part
was killed. Then the test stops the producers, waits until the stream has
committed the topic's end offsets, and closes the books (see `ledger`): each
record in its one place (a row, a copy of a row, a dead letter of the right
kind), the killed producer's unsent records listed as excused sequence gaps.

Size: CHAOS_QUOTES (default 5,000: the short form `make test` runs; `make chaos`
sets 100,000), CHAOS_FAULTS (comma-separated, default all six), CHAOS_RATE
(records/s while a phase sends), CHAOS_OUTAGE_S (how long a killed service stays
down), CHAOS_RECOVERY_TIMEOUT_S. Every run prints the summary; a run of
100,000 or more also writes it to bench/results/chaos.json.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from stock_platform.config import Settings
from stock_platform.runtime.processes import stop_pid
from stock_platform_tests.chaos.faults import PARTS, part_pids
from stock_platform_tests.chaos.faults_run import FaultResult, batches_since, inject, wait_for
from stock_platform_tests.chaos.hostile import add_rogue_rule
from stock_platform_tests.chaos.injector import Injector, Phase, plan_phases
from stock_platform_tests.chaos.ledger import close_books
from stock_platform_tests.chaos.report import render_table, write_chaos_results
from stock_platform_tests.chaos.topic import caught_up, end_offsets, read_topic
from stock_platform_tests.private_platform import PrivatePlatform

QUOTES = int(os.environ.get("CHAOS_QUOTES") or 5000)
FAULTS = tuple(f.strip() for f in (os.environ.get("CHAOS_FAULTS") or ",".join(PARTS)).split(",") if f.strip())
RATE = float(os.environ.get("CHAOS_RATE") or max(100.0, QUOTES / 250))
OUTAGE_S = float(os.environ.get("CHAOS_OUTAGE_S") or 5)
RECOVERY_TIMEOUT_S = float(os.environ.get("CHAOS_RECOVERY_TIMEOUT_S") or 300)
FULL_RUN = QUOTES >= 100_000

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]


def _run_phases(
    platform: PrivatePlatform, phases: list[Phase], injector: Injector
) -> tuple[dict[int, FaultResult], dict[str, int]]:
    """Each phase sends its records; a fault phase kills its part once ~30 % are out and waits for recovery.

    Returns the faults' results and, for each platform producer killed, its producer id -> the kill's ms.
    """
    results: dict[int, FaultResult] = {}
    killed_producers: dict[str, int] = {}
    for phase in phases:
        injector.go(phase.index)
        if phase.fault:
            wait_for(lambda p=phase: p.sent >= 0.3 * len(p.records) or p.done.is_set(), 300, 0.2, "phase under way")
            result = inject(platform, phase.fault, OUTAGE_S, RECOVERY_TIMEOUT_S)
            results[phase.index] = result
            print(
                f"[chaos] {phase.name}: killed {result.killed}, recovered in {result.recovery_s} s ({result.notes})", flush=True
            )
            if phase.fault == "producer":
                killed_producers |= {f"{os.uname().nodename}-{pid}": result.killed_at_ms for pid in result.killed}
        wait_for(lambda p=phase: p.done.is_set() or injector.error is not None, 900, what=f"phase {phase.name} acknowledged")
        if injector.error is not None:
            injector.join(1)
    return results, killed_producers


def _quiesce(platform: PrivatePlatform) -> None:
    """Stop the daemon (so no supervisor relaunches anything), then every producer with SIGTERM (it flushes first)."""
    settings = platform.settings
    for pid in part_pids(settings, "dagster-daemon"):
        stop_pid(pid, timeout=60, group=False)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 20:  # a run the daemon dequeued just before stopping may still start one
        for pid in part_pids(settings, "producer"):
            stop_pid(pid, timeout=90, group=False)
            quiet_since = time.monotonic()
        time.sleep(1)


def _drained(platform: PrivatePlatform) -> dict[int, int]:
    """Wait until the stream has committed the topic's end offsets, and they did not move meanwhile; return them."""
    settings = platform.settings
    while True:
        ends = end_offsets(settings.kafka_bootstrap_servers, settings.kafka_topic)
        wait_for(lambda e=ends: caught_up(platform, e), 900, 2, f"the stream to commit the topic's end offsets {ends}")
        if end_offsets(settings.kafka_bootstrap_servers, settings.kafka_topic) == ends:
            return ends


@pytest.mark.timeout(int(1800 + QUOTES / RATE * 2 + 400 * len(FAULTS)))
def test_every_fault_heals_and_the_tables_hold_exactly_what_was_produced(tmp_path: Path, base_settings: Settings) -> None:
    platform = PrivatePlatform(tmp_path / "data", base_settings.cache_dir, {"SIMULATOR_QUOTES_PER_SECOND": "20"})
    phases = plan_phases(QUOTES, FAULTS)
    injector = Injector(platform.settings, phases, RATE)
    settings = platform.settings
    try:
        platform.up()
        add_rogue_rule(platform)
        wait_for(lambda: batches_since(platform, datetime(1970, 1, 1)) > 0, 420, 2, "the first stream batch")
        injector.start()
        results, killed_producers = _run_phases(platform, phases, injector)
        injector.join(120)
        _quiesce(platform)
        ends = _drained(platform)
        books = close_books(
            platform, phases, read_topic(settings.kafka_bootstrap_servers, settings.kafka_topic, ends), killed_producers
        )
    except BaseException:
        print(platform.log_tails())
        raise
    finally:
        injector.stop()
        platform.down()

    hostile = books.totals["hostile published"]
    print(f"\nchaos: {QUOTES:,} injected records (+{hostile} hostile) at {RATE:.0f}/s, faults: {', '.join(FAULTS)}")
    print(render_table(phases, results, books), flush=True)
    if FULL_RUN:
        path = write_chaos_results(phases, results, books, f"CHAOS_QUOTES={QUOTES} pytest -m chaos stock_platform_tests/chaos")
        print(f"written {path}")
    assert not books.failures, books.failures
    assert {p.name: books.phases[p.index].lost for p in phases} == {p.name: 0 for p in phases}
    assert {p.name: books.phases[p.index].duplicated for p in phases} == {p.name: 0 for p in phases}
    assert {p.name: books.phases[p.index].kafka_dups for p in phases} == {p.name: 0 for p in phases}
    assert {p.name: books.phases[p.index].misplaced for p in phases} == {p.name: 0 for p in phases}
    ended = {name: dict(tally.ended) for name, tally in books.hostile.items()}
    assert ended == {name: {tally.expected: tally.published} for name, tally in books.hostile.items()}
    assert all(g.excused for g in books.gaps)  # a gap the kill does not excuse is also counted as lost above
    assert books.totals["injected valid"] + books.totals["injected invalid"] == QUOTES
    assert set(results) == {p.index for p in phases if p.fault}
