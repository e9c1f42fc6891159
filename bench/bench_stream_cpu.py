"""Where the stream's CPU goes: CPU time per component and per quote, at one fixed rate, in three job shapes.

The pipeline runs on one machine, so every part shares its cores: the
producer, Kafka, the Spark JVM, the Python workers (or the driver's Python on
the driver path), PostgreSQL and Redis. With the producer held at RATE
quotes/s for 30 s (after a warm-up), the CPU seconds of each part's processes
are summed from /proc (psutil) and divided by the quotes ingested:

- executors, default trigger (the job as shipped);
- executors, 5-s trigger (the former default: fewer, bigger batches);
- driver path, default trigger (`bench.driver_path`, the baseline).

Run: `python -m bench.bench_stream_cpu [--quick] [--rate N]` (services up first).
"""

from __future__ import annotations

import argparse
import sys
import time

import psutil
import psycopg2

from bench.bench_end_to_end import _start, _stop, _stream_ready
from bench.e2e_probes import sandbox
from bench.results_io import figure, write_results
from stock_platform.config import Settings, load_settings
from stock_platform.runtime.services import services_up

_PARTS = (
    ("producer", ("stock_platform.cli produce",)),
    ("python workers", ("pyspark.daemon", "pyspark.worker")),
    ("kafka broker", ("kafka.Kafka",)),
    ("spark JVM", ("org.apache.spark.deploy.SparkSubmit", "pyspark-shell")),
    ("driver python", ("stock_platform.cli stream", "bench.driver_path")),
    ("postgres", ("postgres:",)),
    ("redis", ("redis-server",)),
)


def _part(process: psutil.Process) -> str | None:
    try:
        line = " ".join(process.cmdline())
    except psutil.Error:
        return None
    for name, marks in _PARTS:
        if any(mark in line for mark in marks):
            return name
    return None


def _cpu_seconds() -> dict[tuple[int, str], float]:
    out = {}
    for process in psutil.process_iter():
        name = _part(process)
        if name is None:
            continue
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        out[(process.pid, name)] = times.user + times.system
    return out


def _ingested(conn: psycopg2.extensions.connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(inserted), 0) FROM stream_batches")
        return int(cur.fetchone()[0])


def profile(base: Settings, job: str, rate: int, seconds: float) -> tuple[float, dict[str, float]]:
    """(quotes/s ingested, CPU microseconds per quote by part) while the producer sends `rate` quotes/s."""
    with sandbox(base, "cpu") as settings:
        stream = _stream_ready(settings, None, job)
        conn = psycopg2.connect(settings.postgres_dsn)
        conn.autocommit = True
        producer = _start(settings, "produce", "--rate", str(rate), "--duration", str(seconds + 15), "--symbols-count", "100")
        time.sleep(8)
        before, rows0, t0 = _cpu_seconds(), _ingested(conn), time.monotonic()
        time.sleep(seconds)
        after, rows1, elapsed = _cpu_seconds(), _ingested(conn), time.monotonic() - t0
        producer.wait(seconds + 120)
        _stop(stream)
        conn.close()
    rows = max(rows1 - rows0, 1)
    per_part: dict[str, float] = {}
    for key, value in after.items():
        per_part[key[1]] = per_part.get(key[1], 0.0) + value - before.get(key, 0.0)
    return rows / elapsed, {name: cpu / rows * 1e6 for name, cpu in per_part.items()}


def main(argv: list[str] | None = None) -> int:
    """Profile the three shapes, print and write bench/results/stream_cpu.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_stream_cpu")
    parser.add_argument("--quick", action="store_true", help="15-s windows instead of 30-s ones")
    parser.add_argument("--rate", type=int, default=15_000, help="quotes/s the producer sends (default 15,000)")
    args = parser.parse_args(argv)
    seconds = 15.0 if args.quick else 30.0
    base = load_settings()
    services_up(base)
    shapes = {
        f"executors, trigger {base.spark_trigger_seconds:g} s (default)": (base, "executors"),
        "executors, trigger 5 s": (base.replace(spark_trigger_seconds=5.0), "executors"),
        f"driver path, trigger {base.spark_trigger_seconds:g} s": (base, "driver path"),
    }
    results = {label: profile(settings, job, args.rate, seconds) for label, (settings, job) in shapes.items()}
    baseline_label = next(iter(shapes))
    figures = []
    for label, (ingested, parts) in results.items():
        total = sum(parts.values())
        base_total = sum(results[baseline_label][1].values()) if label != baseline_label else None
        figures.append(figure(f"{label}: CPU per quote, all parts", total, "µs", base_total))
        figures.append(figure(f"{label}: ingested", ingested, "quotes/s"))
        for name, _marks in _PARTS:
            figures.append(figure(f"{label}: {name}", parts.get(name, 0.0), "µs/quote"))
    for f in figures:
        print(f"{f['figure']:70} {f['value']:>10,.1f} {f['unit']}")
    versions = {"psutil": psutil.__version__, "rate": str(args.rate), "window_s": str(seconds)}
    path = write_results("stream_cpu", figures, versions, "python -m bench.bench_stream_cpu" + (" --quick" if args.quick else ""))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
