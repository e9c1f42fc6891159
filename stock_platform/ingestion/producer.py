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
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from stock_platform.config import Settings
from stock_platform.ingestion.stats import FeedStats
from stock_platform.kafka_options import librdkafka_options
from stock_platform.quotes import SCHEMA_VERSION, Quote

__all__ = ["ProducerError", "QuoteProducer", "encode_quote"]

logger = logging.getLogger(__name__)

_ENCODER = json.JSONEncoder(separators=(",", ":"))


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

    `stats` (shared with the feeds) counts acknowledged and failed records; a
    background thread serves delivery reports so the counts stay current even
    when quotes arrive every 30 s.
    """

    def __init__(
        self,
        settings: Settings,
        stats: FeedStats | None = None,
        *,
        linger_ms: int = 20,
        delivery_timeout_ms: int = 600_000,
        startup_timeout_s: float = 30.0,
        **overrides: Any,
    ) -> None:
        self.topic = settings.kafka_topic
        self.producer_id = settings.producer_id or "stock-producer"
        self.stats = stats or FeedStats()
        self._seq = 0
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._failed = 0
        self._acknowledged = 0
        config: dict[str, Any] = {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "client.id": f"stock-producer-{self.producer_id}",
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "gzip",  # every consumer here (Spark, kafka-python) reads gzip without extras
            "linger.ms": linger_ms,
            "batch.size": 1_000_000,
            "message.timeout.ms": delivery_timeout_ms,
            "queue.buffering.max.messages": 1_000_000,
            "partitioner": "murmur2_random",  # the Java client's and kafka-python's choice for keyed records
            "reconnect.backoff.max.ms": 2_000,
            # Report failures only: successes are counted from the queue length, saving a Python
            # callback per record (see `_count_acknowledged`).
            "delivery.report.only.error": True,
            "logger": logging.getLogger("stock_platform.ingestion.librdkafka"),
            **librdkafka_options(settings),  # log in to a secured cluster; nothing with PLAINTEXT
        }
        config.update(overrides)
        try:
            self._producer = Producer(config)
            topics = self._producer.list_topics(self.topic, timeout=startup_timeout_s).topics
        except KafkaException as e:
            raise ProducerError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {e}") from e
        found = topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            raise ProducerError(f"topic {self.topic!r} does not exist on {settings.kafka_bootstrap_servers}")
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._serve_reports, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    @property
    def last_seq(self) -> int:
        """The sequence number of the last record handed to Kafka (0 before the first)."""
        return self._seq

    def _serve_reports(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.2)
            self._count_acknowledged()

    def _count_acknowledged(self) -> None:
        """Add to `stats.published` the records acknowledged since the last count.

        With only failures reported, a record has been acknowledged once it has
        left librdkafka's queue (`len(producer)`) without failing.
        """
        with self._lock:  # no send in between: every seq counted is in the queue or already out of it
            sent, queued = self._seq, len(self._producer)
        with self._count_lock:
            acknowledged = sent - queued - self._failed
            if acknowledged > self._acknowledged:
                self.stats.add_published(acknowledged - self._acknowledged)
                self._acknowledged = acknowledged

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            with self._count_lock:
                self._failed += 1
            self.stats.add_failed()
            logger.error("a record was not delivered to %s: %s", self.topic, error)

    def send(self, quote: Quote) -> bytes:
        """Stamp `quote` with this producer's id and next seq, queue it for Kafka, return the wire bytes.

        Blocks (briefly, repeatedly) while librdkafka's queue is full, so a
        fast source is slowed to what the broker takes instead of failing.
        """
        with self._lock:
            self._seq += 1
            value = encode_quote(quote, self.producer_id, self._seq)
            while True:
                try:
                    self._producer.produce(self.topic, value=value, key=quote.key, on_delivery=self._on_delivery)
                    break
                except BufferError:
                    self._producer.poll(0.05)
        return value

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is acknowledged (or failed); False if `timeout` ran out first."""
        remaining = self._producer.flush(-1 if timeout is None else timeout)
        self._count_acknowledged()
        if remaining:
            logger.warning("%d records still unacknowledged after %s s", remaining, timeout)
        return remaining == 0

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then stop serving delivery reports."""
        self.flush(timeout)
        self._closed.set()
        self._poller.join(timeout=5)
