"""The chaos suite's books: what was produced (the injected set, and the topic itself) against what the tables hold.

"Produced" means: every record the injector sent (it knows each one, and every
one was acknowledged), plus every record the supervised producer got into the
topic (read back from Kafka at the end; its own (producer_id, seq) numbering
shows whether the topic itself lost or duplicated any). The tables must then
hold exactly the unique valid quotes of the topic in `stock_prices` (by
(symbol, event_time)) and exactly its invalid records in `dead_letters` (by
partition and offset), and every injected record must be there once.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition

from stock_platform.quotes import Quote
from stock_platform.streaming.parse import DeadLetter, KafkaRecord, parse_record
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL
from stock_platform_tests.chaos.injector import Phase
from stock_platform_tests.private_platform import PrivatePlatform

__all__ = ["Books", "PhaseCount", "caught_up", "close_books", "end_offsets", "read_topic"]

# A SIGKILLed producer loses what it had not yet had acknowledged: gaps in its last
# this-many sequence numbers (10 s at the simulator's 20/s) are its unacknowledged tail.
UNACKED_TAIL = 200


@dataclass
class PhaseCount:
    """Per phase: records lost, stored twice, and copied twice in Kafka (absorbed by the idempotent sink)."""

    lost: int = 0
    duplicated: int = 0
    kafka_dups: int = 0
    unacked_at_kill: int = 0
    details: list[str] = field(default_factory=list)


@dataclass
class Books:
    """The closing balance: per-phase counts and the whole-table checks that failed."""

    phases: dict[int, PhaseCount]
    failures: list[str]
    totals: dict[str, int]


def _consumer(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=30_000,
                         max_partition_fetch_bytes=8 * 1024 * 1024)  # fmt: skip


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The next offset of every partition of `topic`."""
    consumer = _consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: int(o) for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, until: dict[int, int]) -> list[KafkaRecord]:
    """Every record of `topic` from the first offset up to `until` (partition -> end offset), as the stream job sees them."""
    consumer = _consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(until)]
        ends = {tp: until[tp.partition] for tp in tps}
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[KafkaRecord] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for tp, messages in consumer.poll(timeout_ms=2000, max_records=20_000).items():
                out.extend(
                    KafkaRecord(
                        value=m.value,
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=m.offset,
                        timestamp_ms=m.timestamp,
                        key=m.key,
                    )
                    for m in messages
                    if m.offset < ends[tp]
                )
        return out
    finally:
        consumer.close()


def caught_up(platform: PrivatePlatform, ends: dict[int, int]) -> bool:
    """True when the stream has committed every partition up to `ends` (its `stream_batches` log says so)."""
    topic = platform.settings.kafka_topic
    done: dict[int, int] = defaultdict(int)
    for (offsets,) in platform.query("SELECT end_offsets FROM stream_batches WHERE topic = %s", (topic,)):
        for partition, offset in (offsets if isinstance(offsets, dict) else json.loads(offsets)).get(topic, {}).items():
            done[int(partition)] = max(done[int(partition)], int(offset))
    return all(done[p] >= end for p, end in ends.items() if end > 0)


def _phase_of(phases: list[Phase], ts_ms: int | None) -> int:
    """The phase running when Kafka stamped a record (the first phase for anything earlier)."""
    starts = [p.started_ms for p in phases]
    return max(0, bisect.bisect_right(starts, ts_ms or 0) - 1)


def _check_tables(platform: PrivatePlatform, topic_valid: dict, topic_dead: dict, failures: list[str]) -> tuple[dict, Counter]:
    prices = {
        (s, t): (pid, seq, price)
        for s, t, pid, seq, price in platform.query(
            "SELECT symbol, (EXTRACT(EPOCH FROM event_time) * 1000)::bigint, producer_id, seq, price::float8 FROM stock_prices"
        )
    }
    dead = platform.query("SELECT kafka_partition, kafka_offset, message_key, reason FROM dead_letters")
    dead_coords = Counter((p, o) for p, o, _k, _r in dead)
    if set(prices) != set(topic_valid):
        failures.append(f"stock_prices keys differ from the topic's valid quotes: {len(set(topic_valid) - set(prices))} missing, "
                        f"{len(set(prices) - set(topic_valid))} never produced")  # fmt: skip
    if set(dead_coords) != set(topic_dead) or max(dead_coords.values(), default=1) > 1:
        failures.append(f"dead_letters differ from the topic's invalid records: {len(set(topic_dead) - set(dead_coords))} missing, "
                        f"{len(set(dead_coords) - set(topic_dead))} extra, {sum(dead_coords.values()) - len(dead_coords)} repeated")  # fmt: skip
    candles = platform.query("SELECT * FROM stock_candles_1m ORDER BY symbol, minute")
    recomputed = platform.query(CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2")
    if candles != recomputed:
        wrong = len(set(candles) ^ set(recomputed))
        failures.append(f"stock_candles_1m differs from its recomputation from stock_prices ({wrong} rows differ)")
    trades = platform.query("SELECT coalesce(sum(trade_count), 0) FROM stock_candles_1m")[0][0]
    if trades != len(prices):
        failures.append(f"candles count {trades} ticks but stock_prices holds {len(prices)}")
    by_key = Counter(k for _p, _o, k, _r in dead if k)
    reasons = {k: r for _p, _o, k, r in dead if k}
    return {"prices": prices, "reasons": reasons, "dead_rows": len(dead)}, by_key


def _injected(phases: list[Phase], tables: dict, dead_keys: Counter, seen: Counter, counts: dict[int, PhaseCount]) -> None:
    prices, reasons = tables["prices"], tables["reasons"]
    for phase in phases:
        count = counts[phase.index]
        for q in phase.quotes:
            copies = seen[(q.producer_id, q.seq)]
            count.kafka_dups += max(0, copies - 1)
            row = prices.get((q.symbol, q.event_time_ms))
            if row is None or row[:2] != (q.producer_id, q.seq) or abs(row[2] - round(q.price, 2)) > 0.005:
                count.lost += 1
                if len(count.details) < 5:
                    count.details.append(
                        f"{q.producer_id} seq {q.seq} {q.symbol}@{q.event_time_ms}: in topic {copies}x, row {row}"
                    )
        for bad in phase.bad:
            key = bad.key.decode()
            stored = dead_keys[key]
            count.lost += stored == 0
            count.duplicated += max(0, stored - 1)
            if stored and bad.reason not in reasons[key]:
                count.details.append(f"{key}: reason {reasons[key]!r} lacks {bad.reason!r}")
                count.lost += 1
        count.lost += phase.stats.failed + phase.bad_failed


def _supervised(phases: list[Phase], by_producer: dict, killed_ids: set[str], counts: dict[int, PhaseCount]) -> None:
    """The platform's own producer(s): duplicate and missing sequence numbers in the topic."""
    for producer_id, seqs in by_producer.items():
        numbers = Counter(seq for seq, _ts in seqs)
        stamp = dict(seqs)
        for seq, copies in numbers.items():
            if copies > 1:
                counts[_phase_of(phases, stamp[seq])].kafka_dups += copies - 1
        present = sorted(numbers)
        top = present[-1]
        for seq in range(1, top + 1):
            if seq in numbers:
                continue
            before = present[bisect.bisect_left(present, seq) - 1] if present[0] < seq else None
            count = counts[_phase_of(phases, stamp.get(before))]
            if producer_id in killed_ids and seq > top - UNACKED_TAIL:
                count.unacked_at_kill += 1
            else:
                count.lost += 1
                if len(count.details) < 5:
                    count.details.append(f"{producer_id} seq {seq} missing from the topic")


def close_books(platform: PrivatePlatform, phases: list[Phase], records: list[KafkaRecord], killed_ids: set[str]) -> Books:
    """Compare everything produced with the tables; per-phase lost/duplicated counts plus whole-table failures."""
    counts = {p.index: PhaseCount() for p in phases}
    injected_ids = {p.producer_id for p in phases}
    topic_valid: dict[tuple[str, int], list[KafkaRecord]] = defaultdict(list)
    topic_dead: dict[tuple[int, int], KafkaRecord] = {}
    seen: Counter = Counter()
    by_producer: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for record in records:
        result = parse_record(record)
        if isinstance(result, DeadLetter):
            topic_dead[(record.partition, record.offset)] = record
            continue
        assert isinstance(result, Quote)
        topic_valid[(result.symbol, result.event_time_ms)].append(record)
        seen[(result.producer_id, result.seq)] += 1
        if result.producer_id not in injected_ids:
            by_producer[result.producer_id].append((result.seq, record.timestamp_ms))
    failures: list[str] = []
    tables, dead_keys = _check_tables(platform, topic_valid, topic_dead, failures)
    for key in set(topic_valid) - set(tables["prices"]):
        first = topic_valid[key][0]
        if parse_record(first).producer_id not in injected_ids:  # injected ones are counted by _injected
            counts[_phase_of(phases, first.timestamp_ms)].lost += 1
    _injected(phases, tables, dead_keys, seen, counts)
    _supervised(phases, by_producer, killed_ids, counts)
    totals = {
        "topic records": len(records),
        "topic valid unique": len(topic_valid),
        "topic invalid": len(topic_dead),
        "stock_prices rows": len(tables["prices"]),
        "dead_letters rows": tables["dead_rows"],
        "injected valid": sum(len(p.quotes) for p in phases),
        "injected invalid": sum(len(p.bad) for p in phases),
        "supervised producer records": sum(len(v) for v in by_producer.values()),
        "supervised producer ids": len(by_producer),
    }
    return Books(counts, failures, totals)
