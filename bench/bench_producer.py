"""Producer benchmark: replay 1,000,000 simulated quotes into Kafka as fast as possible.

`python -m bench.bench_producer [--quick] [--records N]`

A tape of N simulated quotes (100 synthetic symbols) is written first, outside
the timing. The measured run is exactly `stock-platform produce --source replay
TAPE --speed max`: read and validate every line against the contract, stamp
producer id and seq, publish keyed by symbol (acks=all, idempotent, batched,
gzip; confluent-kafka, with parsing in a helper process), then flush until every
record is acknowledged. The baseline, in the same run against the same broker,
sends the tape's records one at a time with kafka-python and flushes after each
(acks=all), measured on a sample and reported as a rate; a second comparison
replays a sample through kafka-python configured like our producer. The machine's load
average is recorded beside the figures: the broker shares the two cores.
The topic's end offsets are checked to hold exactly N records.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import confluent_kafka
import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.results_io import figure, write_results
from stock_platform.config import Settings, load_settings
from stock_platform.ingestion.producer import QuoteProducer, encode_quote
from stock_platform.ingestion.run import ProduceOptions, run_produce
from stock_platform.ingestion.simulator import SimulatedMarket, synthetic_symbols
from stock_platform.ingestion.stats import FeedStats
from stock_platform.ingestion.tape import TapeWriter, read_tape, read_tape_parallel
from stock_platform.runtime.kafka_broker import delete_topic, ensure_topic

logger = logging.getLogger("bench.bench_producer")

TARGET = 30_000.0


def _write_tape(path: Path, records: int) -> float:
    """Write `records` simulated quotes (simulated time ending now); returns seconds taken."""
    start = time.perf_counter()
    market = SimulatedMarket(
        synthetic_symbols(100), seed=42, rate=20_000, start_ms=int(time.time() * 1000) - records // 20 - 60_000
    )
    with TapeWriter(path) as tape:
        for quote in itertools.islice(market, records):
            tape.write(quote)
    return time.perf_counter() - start


def _topic_count(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        parts = [TopicPartition(settings.kafka_topic, p) for p in consumer.partitions_for_topic(settings.kafka_topic)]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def _baseline(settings: Settings, tape: Path, sample: int) -> float:
    """Quotes/s when each record is sent and flushed on its own (the naive producer)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    try:
        quotes = list(itertools.islice(read_tape(tape), sample))
        start = time.perf_counter()
        for seq, quote in enumerate(quotes, 1):
            producer.send(settings.kafka_topic, key=quote.key, value=encode_quote(quote, "baseline", seq))
            producer.flush()
        return sample / (time.perf_counter() - start)
    finally:
        producer.close()


def _kafka_python_batched(settings: Settings, tape: Path, sample: int) -> float:
    """Quotes/s of the same replay through kafka-python configured like our producer (the library we replaced)."""
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True,
        compression_type="gzip", linger_ms=20, batch_size=1_000_000, metrics_enabled=False,
    )  # fmt: skip
    try:
        start = time.perf_counter()
        for seq, quote in enumerate(itertools.islice(read_tape_parallel(tape), sample), 1):
            producer.send(settings.kafka_topic, key=quote.key, value=encode_quote(quote, "kafka-python", seq))
        producer.flush()
        return sample / (time.perf_counter() - start)
    finally:
        producer.close()


def _send_only(settings: Settings, tape: Path, sample: int) -> tuple[float, float]:
    """Quotes/s handing already-parsed quotes to the client until acknowledged: (ours, kafka-python batched)."""
    quotes = list(itertools.islice(read_tape(tape), sample))
    ours = QuoteProducer(settings)
    start = time.perf_counter()
    for quote in quotes:
        ours.send(quote)
    ours.close()
    ours_rate = sample / (time.perf_counter() - start)
    theirs = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True,
        compression_type="gzip", linger_ms=20, batch_size=1_000_000, metrics_enabled=False,
    )  # fmt: skip
    start = time.perf_counter()
    for seq, quote in enumerate(quotes, 1):
        theirs.send(settings.kafka_topic, key=quote.key, value=encode_quote(quote, "kafka-python", seq))
    theirs.flush()
    theirs.close()
    return ours_rate, sample / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print figures beside the baseline, write bench/results/bench_producer.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_producer")
    parser.add_argument("--quick", action="store_true", help="100,000 records instead of 1,000,000")
    parser.add_argument("--records", type=int, help="records to replay")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    records = args.records or (100_000 if args.quick else 1_000_000)
    base = load_settings()
    settings = base.replace(kafka_topic=f"bench-producer-{uuid.uuid4().hex[:8]}", producer_id="bench-producer",
        redis_key_prefix=f"bench:{uuid.uuid4().hex[:8]}:",
    )  # fmt: skip
    ensure_topic(settings.kafka_bootstrap_servers, settings.kafka_topic, 3)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-producer-") as tmp:
            tape = Path(tmp) / "quotes.jsonl.gz"
            tape_seconds = _write_tape(tape, records)
            print(f"tape: {records:,} quotes written in {tape_seconds:.1f} s ({tape.stat().st_size / 1e6:.1f} MB)", flush=True)
            stats = FeedStats()
            start = time.perf_counter()
            code = run_produce(
                settings, ProduceOptions(source="replay", symbols=(), tape=tape, speed=None), threading.Event(), stats
            )
            seconds = time.perf_counter() - start
            if code != 0 or stats.published != records:
                print(f"replay failed: exit {code}, published {stats.published} of {records}", file=sys.stderr)
                return 1
            in_topic = _topic_count(settings)
            rate = records / seconds
            sample = 500 if args.quick else 2_000
            baseline = _baseline(settings, tape, sample)
            kp_sample = 20_000 if args.quick else 200_000
            kafka_python = _kafka_python_batched(settings, tape, kp_sample)
            send_ours, send_kafka_python = _send_only(settings, tape, kp_sample)
    finally:
        delete_topic(settings.kafka_bootstrap_servers, settings.kafka_topic)
    if in_topic != records:
        print(f"topic holds {in_topic} records, expected {records}", file=sys.stderr)
        return 1
    print(
        f"replay --speed max: {records:,} quotes in {seconds:.1f} s = {rate:,.0f} quotes/s (all acknowledged, {in_topic:,} in topic)"
    )
    print(f"baseline (send + flush per record, {sample:,} sampled): {baseline:,.0f} quotes/s")
    print(
        f"kafka-python, batched like ours ({kp_sample:,} sampled): {kafka_python:,.0f} quotes/s; ours is {rate / kafka_python:,.1f} x"
    )
    print(
        f"client only, parsed quotes ({kp_sample:,}): ours {send_ours:,.0f} quotes/s, kafka-python batched "
        f"{send_kafka_python:,.0f} quotes/s ({send_ours / send_kafka_python:,.1f} x)"
    )
    print(f"ratio: {rate / baseline:,.1f} x   target >= {TARGET:,.0f} quotes/s: {'met' if rate >= TARGET else 'NOT met'}")
    figures = [
        figure("replay_max_speed", round(rate, 1), "quotes/s", round(baseline, 1), f">= {TARGET:,.0f} quotes/s"),
        figure("replay_max_speed_vs_kafka_python_batched", round(rate, 1), "quotes/s", round(kafka_python, 1), None),
        figure("client_send_only_vs_kafka_python_batched", round(send_ours, 1), "quotes/s", round(send_kafka_python, 1), None),
        figure("replay_seconds", round(seconds, 2), "s", None, None),
        figure("records", records, "quotes", None, None),
    ]
    command = (
        "python -m bench.bench_producer"
        + (" --quick" if args.quick else "")
        + (f" --records {args.records}" if args.records else "")
    )
    load = os.getloadavg()
    print(f"machine load average during the run (1/5 min): {load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} cores")
    versions = {"confluent-kafka": confluent_kafka.version()[0], "librdkafka": confluent_kafka.libversion()[0],
                "kafka-python (baseline)": kafka.__version__, "load_average_1m_5m": f"{load[0]:.1f}/{load[1]:.1f}"}  # fmt: skip
    path = write_results("bench_producer", figures, versions, command)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
