"""The chaos suite's books: every record of the topic against the tables, and everything produced against the topic.

Three accounts must balance, and each imbalance is counted against the phase it happened in:

- every record of the topic ends in exactly the place the topic itself says it
  belongs (`places`): a row of stock_prices, a copy of a row, or a dead letter of
  the right kind; nowhere is lost, two places is duplicated, any other is misplaced;
- every record the injector sent is in the topic: its valid quotes by (producer id,
  seq), its 1 % invalid records by their unique key (with the reason they must be
  dead-lettered for), its hostile records by the partition and offset Kafka
  acknowledged (each also in the place the hostile set claims for it);
- the platform's own producers left no gap in their sequence numbers, except the
  unsent records of a producer the run SIGKILLed (`gaps`), which are excused and listed.

And the tables hold nothing else: no row or dead letter that no record explains,
and candles equal to their recomputation from stock_prices.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from stock_platform.quotes import Quote
from stock_platform.streaming.parse import KafkaRecord, parse_record
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL
from stock_platform_tests.chaos.gaps import Gap, duplicate_seqs, sequence_gaps
from stock_platform_tests.chaos.hostile import ROGUE_PRODUCER, Hostile, hostile_producer_id, refused_by_rule
from stock_platform_tests.chaos.injector import Phase
from stock_platform_tests.chaos.places import NOWHERE, STORED, TWICE, Coord, Row, actual_places, expected_places
from stock_platform_tests.private_platform import PrivatePlatform

__all__ = ["Books", "HostileTally", "PhaseCount", "close_books"]

_DETAILS = 5  # per phase: enough to start debugging, few enough to read
_ROWS = """
SELECT symbol, (EXTRACT(EPOCH FROM event_time) * 1000)::bigint, producer_id, seq,
       price, volume, day_high, day_low, open_price, prev_close
FROM stock_prices
"""
_DEAD = "SELECT kafka_partition, kafka_offset, topic, kind, reason FROM dead_letters"


@dataclass
class PhaseCount:
    """Per phase: records lost, in two places, in a wrong place; copies Kafka made; unsent records a kill excused."""

    lost: int = 0
    duplicated: int = 0
    misplaced: int = 0
    kafka_dups: int = 0
    excused: int = 0
    details: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """Keep a line about an imbalance (the first few)."""
        if len(self.details) < _DETAILS:
            self.details.append(text)


@dataclass
class HostileTally:
    """One kind of hostile record over the run: the place it must end in, how many were published, where they ended."""

    expected: str
    published: int = 0
    ended: Counter[str] = field(default_factory=Counter)


@dataclass
class Books:
    """The closing balance: per-phase counts, whole-table failures, totals, and every record's final place."""

    phases: dict[int, PhaseCount]
    failures: list[str]
    totals: dict[str, int]
    places: Counter[str]
    hostile: dict[str, HostileTally]
    gaps: list[Gap]

    @property
    def excused_gaps(self) -> list[Gap]:
        """The sequence gaps a producer's SIGKILL explains."""
        return [g for g in self.gaps if g.excused]


def _phase_of(phases: list[Phase], ts_ms: int | None) -> int:
    """The phase running when Kafka stamped a record (the first phase for anything earlier)."""
    starts = [p.started_ms for p in phases]
    return max(0, bisect.bisect_right(starts, ts_ms or 0) - 1)


def _tables(platform: PrivatePlatform) -> tuple[dict[tuple[str, int], Row], dict[Coord, tuple[str, str, str]]]:
    """stock_prices by (symbol, event time ms), and dead letters by (partition, offset): (topic, kind, reason)."""
    rows = {(s, t): (pid, seq, tuple(data)) for s, t, pid, seq, *data in platform.query(_ROWS)}
    dead = {(p, o): (topic, kind, reason) for p, o, topic, kind, reason in platform.query(_DEAD)}
    return rows, dead


def _judge(record: KafkaRecord) -> Quote | None:
    result = parse_record(record)
    return result if isinstance(result, Quote) else None


def _describe(coord: Coord, quote: Quote | None, hostile: Hostile | None) -> str:
    what = f"hostile {hostile.name!r}" if hostile else "invalid record" if quote is None else ""
    if quote is not None:
        what += f" {quote.producer_id!r} seq {quote.seq} {quote.symbol}@{quote.event_time_ms}"
    return f"partition {coord[0]} offset {coord[1]}: {what.strip()}"


@dataclass
class _Topic:
    """The topic as read back: records and their verdicts by coordinates, and which phase each belongs to."""

    phases: list[Phase]
    at: dict[Coord, KafkaRecord]
    parsed: dict[Coord, Quote | None]
    hostile_at: dict[Coord, tuple[int, Hostile]]

    def phase_of(self) -> Callable[[Coord], int]:
        """Coordinates -> phase: by the injector's producer id, bad key or acknowledgement, else by Kafka timestamp."""
        by_id = {p.producer_id: p.index for p in self.phases}
        by_key = {b.key: p.index for p in self.phases for b in p.bad}

        def find(coord: Coord) -> int:
            if coord in self.hostile_at:
                return self.hostile_at[coord][0]
            quote, record = self.parsed[coord], self.at[coord]
            if quote is not None and quote.producer_id in by_id:
                return by_id[quote.producer_id]
            if record.key in by_key:
                return by_key[record.key]
            return _phase_of(self.phases, record.timestamp_ms)

        return find


def _compare(topic: _Topic, expected: dict[Coord, str], actual: dict[Coord, str], counts: dict[int, PhaseCount]) -> None:
    phase_of = topic.phase_of()
    for coord, want in expected.items():
        got = actual[coord]
        if got == want:
            continue
        count = counts[phase_of(coord)]
        if got == NOWHERE:
            count.lost += 1
        elif got == TWICE:
            count.duplicated += 1
        else:
            count.misplaced += 1
        hostile = topic.hostile_at.get(coord, (0, None))[1]
        count.note(f"{_describe(coord, topic.parsed[coord], hostile)}: belongs in {want}, found in {got}")


def _injected(topic: _Topic, dead: dict[Coord, tuple[str, str, str]], counts: dict[int, PhaseCount]) -> None:
    """Every valid and invalid record the injector sent is in the topic once (hostile ones are `_hostile`'s)."""
    plain = [c for c in topic.at if c not in topic.hostile_at]
    seen = Counter((q.producer_id, q.seq) for c in plain if (q := topic.parsed[c]) is not None)
    by_key: dict[bytes | None, list[Coord]] = defaultdict(list)
    for coord in plain:
        by_key[topic.at[coord].key].append(coord)
    for phase in topic.phases:
        count = counts[phase.index]
        if phase.stats.lost or phase.bad_failed:  # what is missing is counted below, record by record
            count.note(f"Kafka reported {phase.stats.lost} quotes and {phase.bad_failed} other records undelivered")
        for q in phase.quotes:
            copies = seen[(q.producer_id, q.seq)]
            count.kafka_dups += max(0, copies - 1)
            if copies == 0:
                count.lost += 1
                count.note(f"{q.producer_id} seq {q.seq} {q.symbol}@{q.event_time_ms}: not in the topic")
        for bad in phase.bad:
            coords = by_key.get(bad.key, [])
            count.kafka_dups += max(0, len(coords) - 1)
            if not coords:
                count.lost += 1
                count.note(f"{bad.key.decode()}: not in the topic")
            for coord in coords:
                reason = dead.get(coord, ("", "", ""))[2]
                if coord in dead and bad.reason not in reason:
                    count.misplaced += 1
                    count.note(f"{bad.key.decode()}: reason {reason!r} lacks {bad.reason!r}")


def _hostile(
    topic: _Topic, expected: dict[Coord, str], actual: dict[Coord, str], counts: dict[int, PhaseCount]
) -> dict[str, HostileTally]:
    """Where each hostile record ended; one whose place by the topic's order is not the one claimed is misplaced."""
    tallies: dict[str, HostileTally] = {}
    for phase in topic.phases:
        count = counts[phase.index]
        for hostile, coord in phase.placed:
            tally = tallies.setdefault(hostile.name, HostileTally(hostile.place))
            tally.published += 1
            if coord is None or coord not in topic.at:
                tally.ended[NOWHERE] += 1
                count.lost += 1
                count.note(f"hostile {hostile.name!r}: not acknowledged by Kafka, or not in the topic")
                continue
            tally.ended[actual[coord]] += 1
            if expected[coord] != hostile.place:  # the sink may be right: the test's premise about the order is not
                count.misplaced += 1
                count.note(f"{_describe(coord, topic.parsed[coord], hostile)}: claimed for {hostile.place}, "
                           f"but by the topic's order it belongs in {expected[coord]}")  # fmt: skip
    return tallies


def _supervised(topic: _Topic, kills: dict[str, int], counts: dict[int, PhaseCount]) -> tuple[list[Gap], int, int]:
    """The platform's own producers: gaps (excused or lost) and copies in their sequence numbers."""
    injected = {ROGUE_PRODUCER} | {p.producer_id for p in topic.phases} | {hostile_producer_id(p.index) for p in topic.phases}
    seqs: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for coord, quote in topic.parsed.items():
        if quote is not None and quote.producer_id not in injected:
            seqs[quote.producer_id].append((quote.seq, topic.at[coord].timestamp_ms))
    gaps = sequence_gaps(seqs, kills)
    for gap in gaps:
        count = counts[_phase_of(topic.phases, gap.before_ms)]
        if gap.excused:
            count.excused += gap.count
        else:
            count.lost += gap.count
            count.note(gap.describe())
    for _producer_id, _seq, extra, stamp in duplicate_seqs(seqs):
        counts[_phase_of(topic.phases, stamp)].kafka_dups += extra
    return gaps, sum(len(v) for v in seqs.values()), len(seqs)


def _whole_tables(platform: PrivatePlatform, topic: _Topic, rows: dict, dead: dict, actual: dict[Coord, str]) -> list[str]:
    """Rows and dead letters no record explains; candles against their recomputation."""
    failures = []
    explained = {(q.symbol, q.event_time_ms) for c, q in topic.parsed.items() if q is not None and actual[c] in (STORED, TWICE)}
    if orphans := len(set(rows) - explained):
        failures.append(f"{orphans} stock_prices rows match no record of the topic")
    name = platform.settings.kafka_topic
    if extra := sum(1 for coord, (t, _k, _r) in dead.items() if t != name or coord not in topic.at):
        failures.append(f"{extra} dead_letters rows are at coordinates the topic does not have")
    candles = platform.query("SELECT * FROM stock_candles_1m ORDER BY symbol, minute")
    recomputed = platform.query(CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2")
    if candles != recomputed:
        failures.append(f"stock_candles_1m differs from its recomputation from stock_prices "
                        f"({len(set(candles) ^ set(recomputed))} rows differ)")  # fmt: skip
    trades = platform.query("SELECT coalesce(sum(trade_count), 0) FROM stock_candles_1m")[0][0]
    if trades != len(rows):
        failures.append(f"candles count {trades} ticks but stock_prices holds {len(rows)}")
    return failures


def close_books(platform: PrivatePlatform, phases: list[Phase], records: list[KafkaRecord], kills: dict[str, int]) -> Books:
    """Balance the tables against the topic and the topic against what was produced.

    `kills` maps each platform producer id the run SIGKILLed to the kill's wall-clock ms.
    """
    at = {(r.partition, r.offset): r for r in records}
    hostile_at = {coord: (p.index, h) for p in phases for h, coord in p.placed if coord is not None}
    topic = _Topic(phases, at, {c: _judge(r) for c, r in at.items()}, hostile_at)
    rows, dead = _tables(platform)
    name = platform.settings.kafka_topic
    expected = expected_places(topic.parsed, refused_by_rule)
    actual = actual_places(topic.parsed, rows, {c: kind for c, (t, kind, _r) in dead.items() if t == name})
    counts = {p.index: PhaseCount() for p in phases}
    _compare(topic, expected, actual, counts)
    _injected(topic, dead, counts)
    hostile = _hostile(topic, expected, actual, counts)
    gaps, supervised_records, supervised_ids = _supervised(topic, kills, counts)
    failures = _whole_tables(platform, topic, rows, dead, actual)
    valid = [q for q in topic.parsed.values() if q is not None]
    totals = {
        "topic records": len(records),
        "topic valid unique": len({(q.symbol, q.event_time_ms) for q in valid}),
        "topic invalid": len(records) - len(valid),
        "stock_prices rows": len(rows),
        "dead_letters rows": len(dead),
        "injected valid": sum(len(p.quotes) for p in phases),
        "injected invalid": sum(len(p.bad) for p in phases),
        "hostile published": sum(len(p.placed) for p in phases),
        "supervised producer records": supervised_records,
        "supervised producer ids": supervised_ids,
    }
    return Books(counts, failures, totals, Counter(actual.values()), hostile, gaps)
