"""The chaos run's table (fault | recovery s | lost | duplicated) on stdout, and in `bench/results/chaos.json`."""

from __future__ import annotations

import platform
from importlib.metadata import version
from pathlib import Path

from bench.results_io import figure, write_results
from stock_platform.runtime.jars import KAFKA_VERSION
from stock_platform_tests.chaos.faults_run import FaultResult
from stock_platform_tests.chaos.injector import Phase
from stock_platform_tests.chaos.ledger import Books

__all__ = ["render_table", "write_chaos_results"]


def render_table(phases: list[Phase], results: dict[int, FaultResult], books: Books) -> str:
    """The per-fault table, the totals and any whole-table failure, as plain text."""
    head = f"{'fault':<16}{'recovery s':>11}{'lost':>7}{'duplicated':>12}{'kafka dups':>12}{'unacked':>9}  recovered by"
    lines = [head, "-" * len(head)]
    for phase in phases:
        count = books.phases[phase.index]
        result = results.get(phase.index)
        recovery = f"{result.recovery_s:.1f}" if result else "-"
        how = f"{result.recovered_by}; {', '.join(result.notes)}" if result else "(no fault)"
        lines.append(
            f"{phase.name:<16}{recovery:>11}{count.lost:>7}{count.duplicated:>12}{count.kafka_dups:>12}{count.unacked_at_kill:>9}  {how}"
        )
        lines += [f"    {d}" for d in count.details]
    lines.append("")
    lines += [f"{name}: {value:,}" for name, value in books.totals.items()]
    lines += [f"FAILED CHECK: {f}" for f in books.failures] or ["stock_prices, dead_letters and candles match what was produced"]
    return "\n".join(lines)


def write_chaos_results(
    phases: list[Phase], results: dict[int, FaultResult], books: Books, command: str, name: str = "chaos"
) -> Path:
    """`bench/results/<name>.json`: recovery seconds, lost and duplicated per fault, in the bench results format."""
    figures = []
    for phase in phases:
        count, result = books.phases[phase.index], results.get(phase.index)
        if result is not None:
            figures.append(figure(f"{phase.name}: recovery ({result.recovered_by})", result.recovery_s, "s"))
        figures.append(figure(f"{phase.name}: lost", count.lost, "quotes", target="0"))
        figures.append(figure(f"{phase.name}: duplicated", count.duplicated, "quotes", target="0"))
    figures += [figure(key, value, "records") for key, value in books.totals.items()]
    figures.append(figure("whole-table checks failed", len(books.failures), "checks", target="0"))
    versions = {
        "python": platform.python_version(),
        "pyspark": version("pyspark"),
        "dagster": version("dagster"),
        "kafka-python": version("kafka-python"),
        "kafka": KAFKA_VERSION,
    }
    return write_results(name, figures, versions, command)
