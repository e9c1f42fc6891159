"""Publish quotes to the `stock-quotes` topic: keyed by symbol, acknowledged by all replicas, nothing lost.

Built on confluent-kafka (librdkafka): batching, gzip compression, retries and
delivery reports run in C threads outside the GIL, so the Python process spends
its time parsing and encoding quotes (bench/bench_producer.py compares it with
kafka-python configured the same way). The producer is
idempotent (`enable.idempotence`): the broker drops the duplicates that retries
after a broker restart would otherwise create, and keeps each partition in send
order. While the broker is down records wait in librdkafka's queue and are
retried for `delivery_timeout_ms`. Keys are partitioned with murmur2, exactly
like the Java client and kafka-python, so every producer agrees on a symbol's
partition.

Each record is stamped here with the producer id and a sequence number counting
from 1, strictly increasing over the producer's life, so consumers can check
that every (producer_id, seq) arrived exactly once and spot gaps.

Nothing is lost without a count and a log line (`ProducerLimits` sets the
bounds): a record that finds librdkafka's bounded queue full waits for room,
then is dropped (`dropped_queue_full`); at `close()` Kafka gets the flush
timeout to acknowledge what is queued, and the rest is purged and counted as
`unsent` with its seq, so the caller can exit non-zero naming the range.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from stock_platform.config import Settings
from stock_platform.ingestion.drops import DropRun
from stock_platform.ingestion.limits import ProducerLimits
from stock_platform.ingestion.stats import FeedStats
from stock_platform.kafka_options import librdkafka_options
from stock_platform.quotes import SCHEMA_VERSION, Quote

__all__ = ["ProducerError", "QuoteProducer", "encode_quote"]

logger = logging.getLogger(__name__)

_ENCODER = json.JSONEncoder(separators=(",", ":"))
# Delivery reports of records purged at close: not failures of Kafka's, records we stopped waiting for.
# librdkafka's local error codes carry a leading underscore in confluent-kafka's public API (documented there).
_PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})  # noqa: SLF001


class ProducerError(RuntimeError):
    """The Kafka producer could not start (broker unreachable, topic missing)."""


def _num(value: float | int | None) -> str:
    # json.dumps writes finite floats with repr() and ints with str(): the same text, without the encoder.
    return "null" if value is None else repr(value)


def encode_quote(quote: Quote, producer_id: str, seq: int) -> bytes:
    """`quote` with this producer id and seq as wire JSON: the same bytes as `Quote.to_json()`, faster.

    Strings go through the JSON encoder; numbers are formatted as `json.dumps` does.
    """
    return (
        f'{{"symbol":{_ENCODER.encode(quote.symbol)},"price":{quote.price!r},"event_time_ms":{quote.event_time_ms},'
        f'"source":{_ENCODER.encode(quote.source)},"producer_id":{_ENCODER.encode(producer_id)},"seq":{seq},'
        f'"volume":{_num(quote.volume)},"day_high":{_num(quote.day_high)},"day_low":{_num(quote.day_low)},'
        f'"open_price":{_num(quote.open_price)},"prev_close":{_num(quote.prev_close)},"v":{SCHEMA_VERSION}}}'
    ).encode()


class QuoteProducer:
    """The platform's Kafka producer for quotes: `send(quote)`, `flush()`, `close()`.

    `stats` (shared with the feeds) counts acknowledged, failed, dropped and
    unsent records; a background thread serves delivery reports so the counts
    stay current even when quotes arrive every 30 s. Setting `stop` ends any
    wait: for Kafka at start, and for room in the queue.
    """

    def __init__(
        self,
        settings: Settings,
        stats: FeedStats | None = None,
        *,
        limits: ProducerLimits | None = None,
        stop: threading.Event | None = None,
        linger_ms: int = 20,
        delivery_timeout_ms: int = 600_000,
        startup_timeout_s: float = 30.0,
        **overrides: Any,
    ) -> None:
        self.topic = settings.kafka_topic
        self.producer_id = settings.producer_id or "stock-producer"
        self.stats = stats or FeedStats()
        self.limits = limits or ProducerLimits()
        self._stop = stop or threading.Event()
        self._seq = 0
        self._handed = 0  # records librdkafka accepted (a dropped record has a seq but was never handed over)
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._undelivered = 0  # records with an error delivery report: failed, or purged at close
        self._acknowledged = 0
        self._drops = DropRun(self.stats, "queue_full", "records")
        config: dict[str, Any] = {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "client.id": f"stock-producer-{self.producer_id}",
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "gzip",  # every consumer here (Spark, kafka-python) reads gzip without extras
            "linger.ms": linger_ms,
            "batch.size": 1_000_000,
            "message.timeout.ms": delivery_timeout_ms,
            "queue.buffering.max.messages": self.limits.queue_max_messages,
            "queue.buffering.max.kbytes": self.limits.queue_max_kbytes,
            "partitioner": "murmur2_random",  # the Java client's and kafka-python's choice for keyed records
            "reconnect.backoff.max.ms": 2_000,
            # Report failures only: successes are counted from the queue length, saving a Python
            # callback per record (see `_count_acknowledged`).
            "delivery.report.only.error": True,
            "logger": logging.getLogger("stock_platform.ingestion.librdkafka"),
            **librdkafka_options(settings),  # log in to a secured cluster; nothing with PLAINTEXT
        }
        config.update(overrides)
        self._producer = self._connect(config, settings.kafka_bootstrap_servers, startup_timeout_s)
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._serve_reports, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    def _connect(self, config: dict[str, Any], bootstrap: str, timeout_s: float) -> Producer:
        """The librdkafka producer, once Kafka has shown it knows the topic.

        Asked in one-second slices, so a stop request (SIGTERM while the broker is
        unreachable) is honoured within a second instead of after `timeout_s`.
        """
        try:
            producer = Producer(config)
        except KafkaException as e:
            raise ProducerError(f"cannot configure the Kafka producer for {bootstrap}: {e}") from e
        logger.info("waiting up to %g s for Kafka at %s to know topic %s", timeout_s, bootstrap, self.topic)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                topics = producer.list_topics(self.topic, timeout=max(0.1, min(1.0, deadline - time.monotonic()))).topics
                break
            except KafkaException as e:
                if self._stop.is_set():
                    raise ProducerError(f"stopped while waiting for Kafka at {bootstrap}; nothing was sent") from e
                if time.monotonic() >= deadline:
                    raise ProducerError(f"cannot reach Kafka at {bootstrap}: {e}") from e
        found = topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            raise ProducerError(f"topic {self.topic!r} does not exist on {bootstrap}")
        return producer

    @property
    def last_seq(self) -> int:
        """The sequence number of the last record numbered, delivered or not (0 before the first)."""
        return self._seq

    @property
    def queued(self) -> int:
        """Records (and delivery reports) librdkafka holds: never more than `limits.queue_max_messages` records."""
        return len(self._producer)

    def _serve_reports(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.2)
            self._count_acknowledged()

    def _count_acknowledged(self) -> None:
        """Add to `stats.published` the records acknowledged since the last count.

        With only failures reported, a record has been acknowledged once it has
        left librdkafka's queue (`len(producer)`) without an error report.
        """
        with self._lock:  # no send in between: every record counted is in the queue or already out of it
            handed, queued = self._handed, len(self._producer)
        with self._count_lock:
            acknowledged = handed - queued - self._undelivered
            if acknowledged > self._acknowledged:
                self.stats.add_published(acknowledged - self._acknowledged)
                self._acknowledged = acknowledged

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        with self._count_lock:
            self._undelivered += 1
        seq = _seq_of(message)
        if error.code() in _PURGED:
            self.stats.add_unsent(seq=seq)  # close() reports these in one line
            return
        self.stats.add_failed(seq=seq)
        # A broker away for longer than the delivery timeout fails every record: the first of each kind of
        # error is logged, the rest are counted (and summed up when the producer stops).
        if self.stats.first_time(f"delivery:{error.name()}"):
            logger.error("record seq %s was not delivered to %s: %s (more like it are only counted)", seq, self.topic, error)

    def send(self, quote: Quote) -> bytes | None:
        """Stamp `quote` with this producer's id and next seq, queue it for Kafka, return the wire bytes.

        When the queue is full, waits (up to `limits.queue_full_timeout_s`) for
        room, so a fast source is slowed to what the broker takes; then the record
        is dropped and counted, and None is returned. A stop request ends the
        wait at once: the record is counted as unsent.
        """
        with self._lock:
            self._seq += 1
            seq = self._seq
            value = encode_quote(quote, self.producer_id, seq)
            try:
                self._producer.produce(self.topic, value=value, key=quote.key, on_delivery=self._on_delivery)
            except BufferError:
                outcome = self._wait_for_room(value, quote.key)
                if outcome == "stopped":
                    self.stats.add_unsent(seq=seq)
                    return None
                if outcome == "dropped":
                    waited = self.limits.queue_full_timeout_s
                    self._drops.drop(f"Kafka's queue is full ({self.queued} records) and had no room for {waited:g} s", seq)
                    return None
            self._handed += 1
            if self._drops.active:
                self._drops.end()
        return value

    def _wait_for_room(self, value: bytes, key: bytes) -> str:
        """Retry `produce` until the queue has room ("sent"), the timeout runs out ("dropped") or a stop ("stopped")."""
        deadline = time.monotonic() + self.limits.queue_full_timeout_s
        while not self._stop.is_set():
            self._producer.poll(0.05)
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
                return "sent"
            except BufferError:
                if time.monotonic() >= deadline:
                    return "dropped"
        return "stopped"

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is acknowledged (or failed); False if `timeout` ran out first."""
        remaining = self._producer.flush(-1 if timeout is None else timeout)
        self._count_acknowledged()
        if remaining:
            logger.warning("%d records still unacknowledged after %s s", remaining, timeout)
        return remaining == 0

    def close(self, timeout: float | None = None) -> int:
        """Flush for up to `timeout` s (default `limits.flush_timeout_s`), then give up on the rest; returns how many.

        What Kafka has not acknowledged by then is purged, so each record's
        report (with its seq) counts it as `unsent` instead of the process hanging
        or exiting as if it had been delivered.
        """
        timeout = self.limits.flush_timeout_s if timeout is None else timeout
        self._drops.end()
        remaining = self._producer.flush(timeout)
        self._closed.set()
        self._poller.join(timeout=5)
        if remaining:
            # INFO, not a warning: the caller owns the one line that reports the loss (run.py's "lost ...").
            logger.info("%d records unacknowledged after the %g s flush timeout: purging them as unsent", remaining, timeout)
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            deadline = time.monotonic() + 5.0
            while len(self._producer) and time.monotonic() < deadline:
                self._producer.poll(0.1)  # serves the purged records' reports, each counted with its seq
            leftover = len(self._producer)
            if leftover:
                self.stats.add_unsent(leftover)  # reports that never came: still counted, without a seq
        self._count_acknowledged()
        return remaining


def _seq_of(message: Message) -> int | None:
    """The seq stamped in a record's value, for the loss report (read only for records that were not delivered)."""
    try:
        seq = json.loads(message.value() or b"null")["seq"]
    except (ValueError, TypeError, KeyError):
        return None
    return seq if isinstance(seq, int) else None
