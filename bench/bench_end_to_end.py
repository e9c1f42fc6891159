"""End-to-end benchmark on the real services: simulated quotes -> Kafka -> Spark -> PostgreSQL + Redis.

Figures (each beside a baseline measured in the same run):
- sustained throughput: the producer flat out for D s gives the pipeline's max ingest rate; then the producer
  is held at 90 % of it, and the figure is the rate ingested with the slope of the Kafka lag over the last
  30 s (flat means the pipeline keeps up). Measured for the stream job (work on the executors), for the same
  job with the old driver path (`bench.driver_path`: the batch collected and written on the driver), named
  `sustained vs driver path`, for the job with the former 5-s trigger (the default must not cost throughput),
  and for the job on a local Spark standalone cluster (a master and 2 one-core
  workers started from PySpark's own `spark-class`) against local mode. The naive pipeline (one-at-a-time
  producer, per-row INSERT consumer) stays as the floor.
- latency at a fixed 1,000 quotes/s, from the producer's event time to the row visible in PostgreSQL and the
  tick visible in Redis, with the default trigger against the former 5-s default.

Run: `python -m bench.bench_end_to_end [--quick] [--no-cluster]` (services up first: `stock-platform services up`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version

import psycopg2
from kafka import KafkaConsumer, KafkaProducer

from bench.e2e_probes import LatencyProbe, kafka_lag, percentile, sandbox
from bench.results_io import figure, write_results
from stock_platform.config import Settings, load_settings
from stock_platform.quotes import QuoteError, parse_quote
from stock_platform.runtime.processes import wait_until
from stock_platform.runtime.services import services_down, services_up
from stock_platform.runtime.spark_cluster import SparkCluster

CLI = [sys.executable, "-m", "stock_platform.cli"]
# The stream job's two shapes: the real one, and the driver-path baseline.
JOBS = {"executors": [*CLI, "stream"], "driver path": [sys.executable, "-m", "bench.driver_path"]}
_CLUSTER_WORKERS = 2


def _start(settings: Settings, *args: str, argv: list[str] | None = None) -> subprocess.Popen:
    env = {**os.environ, **settings.to_env(), "LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [*(argv or CLI), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _rows(conn: psycopg2.extensions.connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(inserted), 0) FROM stream_batches")
        return int(cur.fetchone()[0])


def _stream_ready(settings: Settings, trigger: float | None, job: str = "executors") -> subprocess.Popen:
    """Start the stream job and wait until a warm-up burst is in PostgreSQL (Spark and Kafka are warm)."""
    trigger_args = [] if trigger is None else ["--trigger-seconds", str(trigger)]
    stream = _start(settings, *trigger_args, argv=JOBS[job])
    warm = _start(settings, "produce", "--rate", "max", "--max-records", "200", "--symbols", *settings.symbols)
    warm.wait(120)
    conn = psycopg2.connect(settings.postgres_dsn)
    conn.autocommit = True
    if not wait_until(lambda: _rows(conn) >= 150, 240, interval=1):
        _stop(stream)
        raise RuntimeError("the stream job did not ingest the warm-up burst within 240 s")
    conn.close()
    return stream


def throughput(base: Settings, duration: float, rate: float | None = None, job: str = "executors") -> tuple[float, float, float]:
    """(quotes/s produced, quotes/s ingested, lag slope over the last 30 s in records/s); rate None = max."""
    with sandbox(base, "e2e_tput") as settings:
        stream = _stream_ready(settings, None, job)
        conn = psycopg2.connect(settings.postgres_dsn)
        conn.autocommit = True
        rows0, t0 = _rows(conn), time.monotonic()
        rate_arg = "max" if rate is None else str(int(rate))
        producer = _start(settings, "produce", "--rate", rate_arg, "--duration", str(duration), "--symbols-count", "100")
        samples: list[tuple[float, int, int]] = []
        while producer.poll() is None:
            total, lag = kafka_lag(settings, conn)
            samples.append((time.monotonic() - t0, total, lag))
            time.sleep(2)
        elapsed = time.monotonic() - t0
        ingested = _rows(conn) - rows0
        _stop(stream)
        conn.close()
    produced = samples[-1][1] - 200 if samples else 0
    tail = [(t, lag) for t, _, lag in samples if t >= elapsed - 30]
    slope = 0.0
    if len(tail) >= 2:
        mean_t = sum(t for t, _ in tail) / len(tail)
        mean_l = sum(lag for _, lag in tail) / len(tail)
        var = sum((t - mean_t) ** 2 for t, _ in tail) or 1.0
        slope = sum((t - mean_t) * (lag - mean_l) for t, lag in tail) / var
    return produced / elapsed, ingested / elapsed, slope


def sustained(base: Settings, duration: float, job: str = "executors") -> dict[str, float]:
    """Max ingest (producer flat out), then the rate ingested and the lag slope with the producer at 90 % of it."""
    produced, ingested, slope = throughput(base, duration, job=job)
    _, held, held_slope = throughput(base, duration, rate=0.9 * ingested, job=job)
    print(
        f"{job:>12} on {base.spark_master}: max {ingested:,.0f}/s, sustained {held:,.0f}/s (slope {held_slope:+,.0f})", flush=True
    )
    return {"produced": produced, "max": ingested, "max_slope": slope, "sustained": held, "slope": held_slope}


def on_local_cluster(base: Settings) -> Settings:
    """The settings with a local standalone cluster (started now) as the job's master."""
    cluster = base.replace(spark_workers=_CLUSTER_WORKERS)
    services_up(cluster, only={"spark"})
    return base.replace(spark_master=SparkCluster(cluster).master_url)


def naive_baseline(base: Settings, duration: float) -> float:
    """Quotes/s of a one-at-a-time producer feeding a consumer that INSERTs and commits row by row."""
    from stock_platform.ingestion.simulator import SimulatedMarket

    with sandbox(base, "e2e_naive") as settings:
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
        market = iter(SimulatedMarket(settings.symbols, seed=1, rate=1000, producer_id="naive"))
        sent, deadline = 0, time.monotonic() + duration / 2
        while time.monotonic() < deadline:
            quote = next(market)
            producer.send(settings.kafka_topic, key=quote.key, value=quote.to_json()).get(timeout=30)
            sent += 1
        producer.close()
        produce_rate = sent / (duration / 2)
        consumer = KafkaConsumer(settings.kafka_topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                 auto_offset_reset="earliest", consumer_timeout_ms=5000)  # fmt: skip
        conn = psycopg2.connect(settings.postgres_dsn)
        inserted, started = 0, time.monotonic()
        with conn.cursor() as cur:
            for message in consumer:
                try:
                    q = parse_quote(message.value)
                except QuoteError:
                    continue
                cur.execute(
                    "INSERT INTO stock_prices (symbol, price, volume, event_time) VALUES (%s, %s, %s, "
                    "to_timestamp(%s / 1000.0) AT TIME ZONE 'UTC') ON CONFLICT DO NOTHING",
                    (q.symbol, q.price, q.volume, q.event_time_ms),
                )
                conn.commit()
                inserted += 1
                if time.monotonic() - started > duration / 2:
                    break
        insert_rate = inserted / (time.monotonic() - started)
        consumer.close()
        conn.close()
    return min(produce_rate, insert_rate)


def latency(base: Settings, trigger: float | None, duration: float) -> dict[str, float]:
    """p50/p95/p99 ms from event time to PostgreSQL and to Redis at 1,000 quotes/s (trigger None: the default)."""
    with sandbox(base, "e2e_lat") as settings:
        stream = _stream_ready(settings, trigger)
        start_ms = time.time() * 1000 + 2000
        with LatencyProbe(settings, settings.symbols) as probe:
            producer = _start(settings, "produce", "--rate", "1000", "--duration", str(duration), "--symbols", *settings.symbols)
            producer.wait(duration + 120)
            time.sleep((settings.spark_trigger_seconds if trigger is None else trigger) * 2 + 5)
        _stop(stream)
    warm_ms = start_ms + min(10_000, duration * 250)  # skip the first seconds: the producer ramps up
    pg = [lat for t, lat in probe.postgres_ms if t >= warm_ms]
    rd = [lat for t, lat in probe.redis_ms if t >= warm_ms]
    return {f"{sink}_p{q}": percentile(vals, q) for sink, vals in (("postgres", pg), ("redis", rd)) for q in (50, 95, 99)}


def main(argv: list[str] | None = None) -> int:
    """Run every figure, print the table, write bench/results/end_to_end.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_end_to_end")
    parser.add_argument("--quick", action="store_true", help="20-s runs instead of 60-s ones")
    parser.add_argument("--no-cluster", action="store_true", help="skip the local standalone cluster figure")
    args = parser.parse_args(argv)
    duration = 20.0 if args.quick else 60.0
    base = load_settings()
    services_up(base)
    ours = sustained(base, duration)
    driver = sustained(base, duration, job="driver path")
    slow_trigger = sustained(base.replace(spark_trigger_seconds=5.0), duration)
    cluster = None
    if not args.no_cluster:
        cluster_settings = on_local_cluster(base)
        try:
            cluster = sustained(cluster_settings, duration)
        finally:
            services_down(base.replace(spark_workers=_CLUSTER_WORKERS), only={"spark"})
    naive = naive_baseline(base, duration)
    default_trigger = f"{base.spark_trigger_seconds:g} s (default)"
    runs = {default_trigger: latency(base, None, duration), "5 s (former default)": latency(base, 5.0, duration)}
    figures = [
        figure("sustained vs driver path", ours["sustained"], "quotes/s", driver["sustained"], ">= 1.7x"),
        figure("Kafka lag slope at that rate, last 30 s", ours["slope"], "records/s", None, "flat: |slope| << throughput"),
        figure("driver path: its lag slope at its sustained rate", driver["slope"], "records/s"),
        figure(
            f"sustained, trigger {base.spark_trigger_seconds:g} s (default) vs 5 s",
            ours["sustained"],
            "quotes/s",
            slow_trigger["sustained"],
            ">= 1x: the default costs no throughput",
        ),  # fmt: skip
        figure("sustained vs the naive pipeline", ours["sustained"], "quotes/s", naive),
        figure("max ingest, producer flat out, vs driver path", ours["max"], "quotes/s", driver["max"]),
        figure("producer rate when flat out", ours["produced"], "quotes/s"),
        figure("Kafka lag slope when flat out, last 30 s", ours["max_slope"], "records/s"),
    ]
    if cluster is not None:
        figures += [
            figure(
                f"sustained on a local cluster ({_CLUSTER_WORKERS} workers) vs local mode",
                cluster["sustained"],
                "quotes/s",
                ours["sustained"],
                ">= 0.8x",
            ),  # fmt: skip
            figure("local cluster: its lag slope at its sustained rate", cluster["slope"], "records/s"),
        ]
    for trigger, lat in runs.items():
        for sink in ("postgres", "redis"):
            for q in (50, 95, 99):
                target = "<= 1,500 ms" if (q == 95 and sink == "postgres" and trigger == default_trigger) else None
                base_ms = runs["5 s (former default)"][f"{sink}_p{q}"] if trigger == default_trigger else None
                figures.append(figure(f"latency {sink} p{q}, trigger {trigger}", lat[f"{sink}_p{q}"], "ms", base_ms, target))
    versions = {p: version(p) for p in ("pyspark", "kafka-python", "psycopg2-binary", "redis")}
    versions["spark_master"] = base.spark_master
    versions["trigger_seconds"] = str(base.spark_trigger_seconds)
    path = write_results("end_to_end", figures, versions, "python -m bench.bench_end_to_end" + (" --quick" if args.quick else ""))
    print(f"{'figure':58} {'value':>12} {'unit':10} {'baseline':>12} {'ratio':>8}")
    for f in figures:
        print(f"{f['figure']:58} {f['value']:>12,.1f} {f['unit']:10} {f['baseline'] or 0:>12,.1f} {f['ratio'] or 0:>8.2f}")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
