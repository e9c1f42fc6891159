"""`python -m bench [--quick] [names...]`: run every benchmark, then write BENCHMARKS.md from bench/results/*.json.

Each benchmark runs in its own process (they start Spark sessions and
servers), one after another so they never compete for the two cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def discover() -> list[str]:
    """Benchmark module names (`bench_*.py`), sorted."""
    return sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return "" if value is None else str(value)


def write_markdown(results_dir: Path = RESULTS_DIR, out: Path = BENCH_DIR.parent / "BENCHMARKS.md") -> None:
    """Render every results file as one table per benchmark."""
    lines = ["# Benchmarks", "", "Written by `make bench` (`python -m bench`) from `bench/results/*.json`.", ""]
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        lines += [f"## {data.get('benchmark', path.stem)}", ""]
        versions = ", ".join(f"{k} {v}" for k, v in sorted((data.get("versions") or {}).items()))
        lines += [f"{data.get('date', '')} · nproc {data.get('nproc', '')} · {versions}", ""]
        lines += [f"Command: `{data.get('command', '')}`", ""]
        lines += ["| figure | value | unit | baseline | ratio | target |", "|---|---|---|---|---|---|"]
        for fig in data.get("figures", []):
            cells = [fig.get(k) for k in ("figure", "value", "unit", "baseline", "ratio", "target")]
            lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
        lines.append("")
        lines += [f"- {note}" for note in data.get("notes") or []]
        if data.get("notes"):
            lines.append("")
    out.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the chosen (default: all) benchmarks; non-zero if any failed."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(discover())})")
    args = parser.parse_args(argv)
    failed = []
    for name in args.names or discover():
        print(f"== {name}", flush=True)
        cmd = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if args.quick else [])
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(name)
    write_markdown()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
