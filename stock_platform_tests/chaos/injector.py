"""The chaos suite's known record set: simulated quotes, 1 % invalid records and hostile ones, sent phase by phase.

Each phase (one per fault, plus a fault-free baseline) sends its share through
its own `QuoteProducer` (the platform's real producer code) with producer id
`chaos-<phase>-<fault>`, so every stored row says which phase produced it. The
invalid records go through a plain Kafka producer with a unique key
`chaos-bad-<phase>-<n>`, which the stream job keeps in `dead_letters.message_key`.
The hostile records (`hostile`) go through that plain producer too, spread over
the phase; each is known afterwards by the partition and offset Kafka acknowledged.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from kafka import KafkaProducer

from stock_platform.config import Settings
from stock_platform.ingestion.producer import QuoteProducer
from stock_platform.ingestion.simulator import SimulatedMarket
from stock_platform.ingestion.stats import FeedStats
from stock_platform.quotes import Quote
from stock_platform_tests.chaos.hostile import Hostile, hostile_groups
from stock_platform_tests.chaos.places import Coord

__all__ = ["BadRecord", "Injector", "Phase", "plan_phases"]

CHAOS_SYMBOLS = tuple(f"CX{i:02d}" for i in range(1, 13))
# Simulated time spanned by the whole set: about 15 one-minute candles per symbol whatever the size.
_SPAN_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class BadRecord:
    """One invalid record: its unique Kafka key, raw value, and a fragment of the reason it must be dead-lettered with."""

    key: bytes
    value: bytes | None
    reason: str


def _bad(phase: int, n: int) -> BadRecord:
    """The n-th invalid record of a phase; the kinds rotate so every phase sees each kind."""
    key = f"chaos-bad-{phase}-{n}"
    good = {"v": 1, "symbol": "CX01", "price": 10.0, "event_time_ms": int(time.time() * 1000), "source": "simulator",
            "producer_id": key, "seq": n}  # fmt: skip
    kinds: list[tuple[bytes | None, str]] = [
        (f"{key} is {{not json".encode(), "not valid JSON"),
        (json.dumps({**good, "price": -1.5}).encode(), "must be between 0.01"),
        (json.dumps({k: v for k, v in good.items() if k != "price"}).encode(), "missing field 'price'"),
        (json.dumps({**good, "event_time_ms": good["event_time_ms"] + 3 * 3_600_000}).encode(), "in the future"),
        (json.dumps({**good, "symbol": "bad symbol!"}).encode(), "field 'symbol'"),
        (json.dumps({**good, "v": 9}).encode(), "unsupported schema version"),
        (json.dumps({**good, "note": key}).encode(), "unknown field"),
        (None, "empty message"),
        (json.dumps({**good, "producer_id": key + "x" * 5000}).encode(), "exceeds the 4096-byte limit"),
        (json.dumps({**good, "day_high": 1.0, "day_low": 2.0}).encode(), "below day_low"),
    ]
    value, reason = kinds[n % len(kinds)]
    return BadRecord(key.encode(), value, reason)


@dataclass
class Phase:
    """One phase of the run: the records it sends, the fault it carries (None: baseline) and what happened."""

    index: int
    fault: str | None
    records: list[Quote | BadRecord | Hostile]
    producer_id: str
    started_ms: int = 0
    stats: FeedStats = field(default_factory=FeedStats)
    sent: int = 0
    # Records of the plain producer (invalid and hostile) Kafka reported as not delivered.
    bad_failed: int = 0
    # Each hostile record sent, with where Kafka put it (None: not acknowledged).
    placed: list[tuple[Hostile, Coord | None]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        """The fault's name, or `baseline`."""
        return self.fault or "baseline"

    @property
    def quotes(self) -> list[Quote]:
        """The valid quotes, stamped with this phase's producer id and the seq the producer gives them (1, 2, ...)."""
        valid = [r for r in self.records if isinstance(r, Quote)]
        return [dataclasses.replace(q, producer_id=self.producer_id, seq=i) for i, q in enumerate(valid, start=1)]

    @property
    def bad(self) -> list[BadRecord]:
        """The invalid records."""
        return [r for r in self.records if isinstance(r, BadRecord)]

    @property
    def hostile(self) -> list[Hostile]:
        """The hostile records, in sending order."""
        return [r for r in self.records if isinstance(r, Hostile)]

    def spread(self, groups: list[list[Hostile]]) -> None:
        """Insert `groups` evenly over the phase, each group's records back to back."""
        n = len(self.records)
        for k in reversed(range(len(groups))):  # from the back, so earlier positions stay valid
            at = (k + 1) * n // (len(groups) + 1)
            self.records[at:at] = groups[k]


def plan_phases(total: int, faults: Sequence[str], seed: int = 7) -> list[Phase]:
    """`total` records (every 100th invalid) split evenly over a baseline phase and one phase per fault, plus
    each phase's hostile records (not counted in `total`)."""
    now_ms = int(time.time() * 1000)
    rate = max(1.0, total / (_SPAN_MS / 1000))
    market = SimulatedMarket(CHAOS_SYMBOLS, seed=seed, rate=rate, start_ms=now_ms - _SPAN_MS - 60_000).events()
    names: list[str | None] = [None, *faults]
    phases = []
    for index, fault in enumerate(names):
        count = total // len(names) + (1 if index < total % len(names) else 0)
        start = sum(len(p.records) for p in phases)
        records: list[Quote | BadRecord] = []
        for i in range(start, start + count):
            records.append(_bad(index, i) if i % 100 == 50 else next(market))
        phases.append(Phase(index, fault, records, f"chaos-{index}-{fault or 'baseline'}"))
    taken = {(q.symbol, q.event_time_ms) for p in phases for q in p.quotes}
    for phase in phases:
        earlier = phases[phase.index - 1].quotes if phase.index else []
        prior = earlier[len(earlier) // 2] if earlier else None
        phase.spread(hostile_groups(phase.index, CHAOS_SYMBOLS, prior, taken))
    return phases


class Injector:
    """A thread that sends each phase's records at `rate` records/s when told to, then waits for every acknowledgement."""

    def __init__(self, settings: Settings, phases: list[Phase], rate: float) -> None:
        self.settings = settings
        self.phases = phases
        self.rate = rate
        self._go = [threading.Event() for _ in phases]
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-injector", daemon=True)

    def start(self) -> None:
        """Start the thread; it waits for `go(0)`."""
        self._thread.start()

    def go(self, index: int) -> None:
        """Let phase `index` start sending."""
        self.phases[index].started_ms = int(time.time() * 1000)
        self._go[index].set()

    def stop(self) -> None:
        """Abandon sending (the test failed); the thread exits at the next record."""
        self._stop.set()
        for event in self._go:
            event.set()

    def join(self, timeout: float) -> None:
        """Wait for the thread and re-raise its error, if any."""
        self._thread.join(timeout)
        if self.error is not None:
            raise RuntimeError(f"the injector failed: {self.error!r}") from self.error

    def _run(self) -> None:
        raw = KafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True,
            linger_ms=20, delivery_timeout_ms=600_000, request_timeout_ms=15_000, reconnect_backoff_max_ms=2_000,
        )  # fmt: skip
        try:
            for phase in self.phases:
                self._go[phase.index].wait()
                if self._stop.is_set():
                    return
                self._send_phase(phase, raw)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread by join()
            self.error = e
        finally:
            raw.close(timeout=30)

    def _send_phase(self, phase: Phase, raw: KafkaProducer) -> None:
        settings = self.settings.replace(producer_id=phase.producer_id)
        producer = QuoteProducer(settings, phase.stats)
        futures = []
        hostile = []
        t0 = time.monotonic()
        try:
            for i, record in enumerate(phase.records):
                if self._stop.is_set():
                    return
                delay = t0 + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if isinstance(record, Quote):
                    producer.send(record)
                elif isinstance(record, Hostile):
                    hostile.append((record, raw.send(self.settings.kafka_topic, key=record.key, value=record.value)))
                else:
                    futures.append(raw.send(self.settings.kafka_topic, key=record.key, value=record.value))
                phase.sent = i + 1
            producer.flush()
            raw.flush()
        finally:
            producer.close(timeout=60)
        phase.bad_failed = sum(1 for f in futures if f.failed()) + sum(1 for _h, f in hostile if f.failed())
        phase.placed = [(h, (f.value.partition, f.value.offset) if f.succeeded() else None) for h, f in hostile]
        phase.done.set()
