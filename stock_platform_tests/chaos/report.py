"""The chaos run's summary: per fault (recovery s, lost, duplicated), every record's final place, the hostile records
and the excused sequence gaps. Printed by every run; a full run also writes it to `bench/results/chaos.json`.

One function (`ledger_summary`) builds the summary, so the text and the file never disagree.
"""

from __future__ import annotations

import json
import platform
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.results_io import figure, write_results
from stock_platform.runtime.jars import KAFKA_VERSION
from stock_platform_tests.chaos.faults_run import FaultResult
from stock_platform_tests.chaos.injector import Phase
from stock_platform_tests.chaos.ledger import Books
from stock_platform_tests.chaos.places import COPY, NOWHERE, STORED, TWICE, dead

__all__ = ["ledger_summary", "render_table", "write_chaos_results"]

# Shown even when empty: a zero here is a finding (no record lost, none refused by PostgreSQL).
_PLACES = (STORED, COPY, *(dead(k) for k in ("contract", "database", "conflict", "closed_day")), NOWHERE, TWICE)


def ledger_summary(books: Books) -> dict[str, Any]:
    """Totals over the run, each record's final place, the hostile records by kind, and the excused gaps."""
    counts = books.phases.values()
    return {
        "lost": sum(c.lost for c in counts),
        "duplicated": sum(c.duplicated for c in counts),
        "misplaced": sum(c.misplaced for c in counts),
        "kafka_dups": sum(c.kafka_dups for c in counts),
        "final_places": {p: books.places.get(p, 0) for p in (*_PLACES, *sorted(set(books.places) - set(_PLACES)))},
        "hostile": {
            name: {"published": t.published, "expected": t.expected, "ended": dict(sorted(t.ended.items()))}
            for name, t in books.hostile.items()
        },
        "excused_gaps": [
            {"producer_id": g.producer_id, "first_seq": g.first, "last_seq": g.last, "count": g.count} for g in books.excused_gaps
        ],
        "failures": list(books.failures),
    }


def _phase_lines(phases: list[Phase], results: dict[int, FaultResult], books: Books) -> list[str]:
    head = (f"{'fault':<16}{'recovery s':>11}{'lost':>7}{'duplicated':>12}{'misplaced':>11}{'kafka dups':>12}"
            f"{'excused':>9}  recovered by")  # fmt: skip
    lines = [head, "-" * len(head)]
    for phase in phases:
        count = books.phases[phase.index]
        result = results.get(phase.index)
        recovery = f"{result.recovery_s:.1f}" if result else "-"
        how = f"{result.recovered_by}; {', '.join(result.notes)}" if result else "(no fault)"
        lines.append(f"{phase.name:<16}{recovery:>11}{count.lost:>7}{count.duplicated:>12}{count.misplaced:>11}"
                     f"{count.kafka_dups:>12}{count.excused:>9}  {how}")  # fmt: skip
        lines += [f"    {d}" for d in count.details]
    return lines


def render_table(phases: list[Phase], results: dict[int, FaultResult], books: Books) -> str:
    """The whole summary as plain text: the per-fault table, then `ledger_summary`, then the totals."""
    summary = ledger_summary(books)
    lines = _phase_lines(phases, results, books)
    lines += ["", "final place of every record of the topic:"]
    lines += [f"    {place:<30}{n:>9,}" for place, n in summary["final_places"].items()]
    lines += ["", "hostile records: published, must end in, ended in:"]
    for name, h in summary["hostile"].items():
        ended = ", ".join(f"{place} {n}" for place, n in h["ended"].items())
        lines.append(f"    {name:<34}{h['published']:>4}  {h['expected']:<24}{ended}")
    lines += ["", "excused sequence gaps (a SIGKILLed producer's accepted but unsent records):"]
    lines += [f"    {g.describe()}" for g in books.excused_gaps] or ["    none"]
    lines += ["", *(f"{name}: {value:,}" for name, value in books.totals.items())]
    lines.append(f"lost: {summary['lost']}, duplicated: {summary['duplicated']}, misplaced: {summary['misplaced']}")
    lines += [f"FAILED CHECK: {f}" for f in books.failures] or ["stock_prices, dead_letters and candles match what was produced"]
    return "\n".join(lines)


def _figures(phases: list[Phase], results: dict[int, FaultResult], books: Books) -> list[dict[str, Any]]:
    figures = []
    for phase in phases:
        count, result = books.phases[phase.index], results.get(phase.index)
        if result is not None:
            figures.append(figure(f"{phase.name}: recovery ({result.recovered_by})", result.recovery_s, "s"))
        figures.append(figure(f"{phase.name}: lost", count.lost, "quotes", target="0"))
        figures.append(figure(f"{phase.name}: duplicated", count.duplicated, "quotes", target="0"))
        figures.append(figure(f"{phase.name}: misplaced", count.misplaced, "records", target="0"))
        if count.excused:
            figures.append(figure(f"{phase.name}: excused (unsent at SIGKILL)", count.excused, "records"))
    figures += [figure(key, value, "records") for key, value in books.totals.items()]
    summary = ledger_summary(books)
    figures += [figure(f"final place: {place}", n, "records") for place, n in summary["final_places"].items()]
    for name, h in summary["hostile"].items():
        figures.append(figure(f"hostile {name}: published", h["published"], "records"))
        for place in sorted({h["expected"], *h["ended"]}):
            target = str(h["published"]) if place == h["expected"] else "0"
            figures.append(figure(f"hostile {name}: in {place}", h["ended"].get(place, 0), "records", target=target))
    gaps = books.excused_gaps
    figures.append(figure("excused sequence gaps", len(gaps), "gaps"))
    figures.append(figure("excused records (unsent at SIGKILL)", sum(g.count for g in gaps), "records"))
    figures.append(figure("whole-table checks failed", len(books.failures), "checks", target="0"))
    return figures


def write_chaos_results(
    phases: list[Phase], results: dict[int, FaultResult], books: Books, command: str, name: str = "chaos"
) -> Path:
    """`bench/results/<name>.json` in the bench results format (figures; notes list the excused gaps), plus a
    `ledger` key holding `ledger_summary` for programs (BENCHMARKS.md renders the figures and notes)."""
    versions = {
        "python": platform.python_version(),
        "pyspark": version("pyspark"),
        "dagster": version("dagster"),
        "kafka-python": version("kafka-python"),
        "kafka": KAFKA_VERSION,
    }
    notes = [f"excused gap: {g.describe()}" for g in books.excused_gaps]
    path = write_results(name, _figures(phases, results, books), versions, command, notes)
    data = json.loads(path.read_text())
    data["ledger"] = ledger_summary(books)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)  # atomically, like write_results
    return path
