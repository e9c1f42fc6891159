"""Probes for the end-to-end benchmark: an isolated sandbox, and pollers that time quotes into PostgreSQL and Redis."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import redis
from kafka import KafkaConsumer, TopicPartition
from psycopg2 import sql

from stock_platform.config import Settings
from stock_platform.runtime.kafka_broker import delete_topic, ensure_topic
from stock_platform.storage.migrations import apply_migrations
from stock_platform.storage.redis_keys import RedisKeys

__all__ = ["LatencyProbe", "kafka_lag", "percentile", "sandbox"]


@contextmanager
def sandbox(settings: Settings, label: str) -> Iterator[Settings]:
    """Settings for a fresh database, 3-partition topic and Redis prefix on the running services; database and topic dropped afterwards."""
    tag = f"{label}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(host="127.0.0.1", port=settings.postgres_port, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER stock").format(sql.Identifier(tag)))
    dsn = f"postgresql://stock@127.0.0.1:{settings.postgres_port}/{tag}"
    apply_migrations(dsn)
    topic = f"bench-{tag}"
    ensure_topic(settings.kafka_bootstrap_servers, topic, 3)
    try:
        yield settings.replace(postgres_dsn=dsn, kafka_topic=topic, redis_key_prefix=f"bench:{tag}:",
            data_dir=settings.data_dir / "bench" / tag,
        )  # fmt: skip
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(tag)))
        admin.close()
        delete_topic(settings.kafka_bootstrap_servers, topic)


def kafka_lag(settings: Settings, conn: psycopg2.extensions.connection) -> tuple[int, int]:
    """(records in the topic, records not yet committed by the stream job), from the broker and `stream_batches`."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        parts = [TopicPartition(settings.kafka_topic, p) for p in range(3)]
        end = {tp.partition: off for tp, off in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()
    with conn.cursor() as cur:
        cur.execute("SELECT end_offsets FROM stream_batches ORDER BY committed_at DESC, batch_id DESC LIMIT 1")
        row = cur.fetchone()
    committed: dict[int, int] = {}
    if row:
        offsets = row[0] if isinstance(row[0], dict) else json.loads(row[0])
        for key, value in offsets.items():
            if isinstance(value, dict):  # {"topic": {"0": n, ...}}
                committed.update({int(p): int(o) for p, o in value.items()})
            else:  # {"0": n, ...}
                committed[int(key)] = int(value)
    total = sum(end.values())
    return total, sum(max(0, off - committed.get(p, 0)) for p, off in end.items())


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class LatencyProbe:
    """Polls PostgreSQL for new rows and Redis for new ticks; latency = first seen - event time."""

    def __init__(self, settings: Settings, symbols: tuple[str, ...], interval_s: float = 0.05) -> None:
        self.settings, self.symbols, self.interval_s = settings, symbols, interval_s
        self.postgres_ms: list[tuple[int, float]] = []  # (event_time_ms, latency_ms)
        self.redis_ms: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll_postgres, daemon=True),
                         threading.Thread(target=self._poll_redis, daemon=True)]  # fmt: skip

    def __enter__(self) -> LatencyProbe:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _poll_postgres(self) -> None:
        conn = psycopg2.connect(self.settings.postgres_dsn)
        conn.autocommit = True
        last_id = 0
        with conn.cursor() as cur:
            while not self._stop.is_set():
                cur.execute(
                    "SELECT id, (extract(epoch FROM event_time) * 1000)::bigint FROM stock_prices WHERE id > %s ORDER BY id",
                    (last_id,),
                )
                seen = time.time() * 1000
                for row_id, event_ms in cur.fetchall():
                    last_id = max(last_id, row_id)
                    self.postgres_ms.append((event_ms, seen - event_ms))
                time.sleep(self.interval_s)
        conn.close()

    def _poll_redis(self) -> None:
        client = redis.Redis.from_url(self.settings.redis_url)
        keys = RedisKeys(self.settings.redis_key_prefix)
        last = dict.fromkeys(self.symbols, 0.0)
        while not self._stop.is_set():
            pipe = client.pipeline(transaction=False)
            for symbol in self.symbols:
                pipe.zrangebyscore(keys.ticks(symbol), f"({last[symbol]}", "+inf", withscores=True)
            answers = pipe.execute()
            seen = time.time() * 1000
            for symbol, members in zip(self.symbols, answers, strict=True):
                for _member, score in members:
                    last[symbol] = max(last[symbol], score)
                    self.redis_ms.append((int(score), seen - score))
            time.sleep(self.interval_s)
