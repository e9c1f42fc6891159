"""KAFKA_BROKERS=3 starts three KRaft nodes as one cluster that loses nothing when one node is SIGKILLed.

A private cluster on free ports in its own data dir, driven through the real
`stock-platform services` command as an operator would; the default ports,
where a developer's own services run, are never touched.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from kafka.admin import ConfigResource, ConfigResourceType

from stock_platform.config import Settings
from stock_platform.kafka_options import librdkafka_options
from stock_platform.runtime.kafka_broker import KafkaBroker
from stock_platform.runtime.kafka_topics import admin_client
from stock_platform.runtime.processes import pid_alive, wait_until
from stock_platform.runtime.services import services_status
from stock_platform_tests.private_platform import PrivatePlatform, cluster_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePlatform]:
    """Three nodes started with `stock-platform services up --only kafka`; stopped (and checked gone) at the end."""
    platform = PrivatePlatform(tmp_path_factory.mktemp("kafka-cluster"), base_settings.cache_dir, cluster_env(kafka_brokers=3))
    done = platform.cli("services", "up", "--only", "kafka")
    try:
        assert done.returncode == 0, done.stderr[-3000:] + platform.log_tails()
        yield platform
    finally:
        platform.cli("services", "down", "--only", "kafka", timeout=120)


def _describe(settings: Settings) -> tuple[dict, dict]:
    admin = admin_client(settings.kafka_bootstrap_servers, 10)
    try:
        topic = admin.describe_topics([settings.kafka_topic])[0]
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.kafka_topic)])
        return topic, configs
    finally:
        admin.close()


def test_three_nodes_form_one_cluster_on_the_documented_ports(cluster: PrivatePlatform) -> None:
    settings = cluster.settings
    port = settings.kafka_port
    assert settings.kafka_bootstrap_servers == f"127.0.0.1:{port},127.0.0.1:{port + 2},127.0.0.1:{port + 4}"
    status = services_status(settings)
    assert {k: v for k, v in status.items() if k.startswith("kafka")} == {
        "kafka-1": "healthy", "kafka-2": "healthy", "kafka-3": "healthy",
    }  # fmt: skip
    pids = [node.pid() for node in KafkaBroker(settings).nodes]
    assert all(pids) and len(set(pids)) == 3, "each node is its own process with its own pid file"
    admin = admin_client(settings.kafka_bootstrap_servers, 10)
    try:
        assert sorted(b["broker_id"] for b in admin.describe_cluster()["brokers"]) == [1, 2, 3]
    finally:
        admin.close()


def test_quote_topic_is_replicated_three_times_with_two_in_sync(cluster: PrivatePlatform) -> None:
    topic, configs = _describe(cluster.settings)
    assert len(topic["partitions"]) == 3
    assert all(len(p["replica_nodes"]) == 3 for p in topic["partitions"])
    assert {p["leader_id"] for p in topic["partitions"]} == {1, 2, 3}, "leadership is spread over the nodes"
    assert configs["topic"][cluster.settings.kafka_topic]["min.insync.replicas"]["value"] == "2"


def _produce(producer: Producer, topic: str, values: range) -> list[str]:
    """Send `values` and wait for every acknowledgement; returns the delivery errors."""
    errors: list[str] = []
    for i in values:
        producer.produce(topic, key=f"k{i % 7}", value=str(i), on_delivery=lambda e, _m: errors.append(str(e)) if e else None)
        producer.poll(0)
    assert producer.flush(90) == 0, "records still unacknowledged after 90 s"
    return errors


def _read_all(settings: Settings, expected: int) -> list[int]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"check-{time.monotonic_ns()}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False, **librdkafka_options(settings)}
    )  # fmt: skip
    consumer.subscribe([settings.kafka_topic])
    values: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                values.append(int(message.value()))
    finally:
        consumer.close()
    return values


def test_acks_all_survives_a_sigkilled_node_and_up_brings_it_back(cluster: PrivatePlatform) -> None:
    settings = cluster.settings
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all", "enable.idempotence": True,
         "linger.ms": 5, "message.timeout.ms": 90_000, **librdkafka_options(settings)}
    )  # fmt: skip
    assert _produce(producer, settings.kafka_topic, range(0, 500)) == []

    victim = KafkaBroker(settings).nodes[1]
    pid = victim.pid()
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(pid), 10)
    assert services_status(settings)["kafka-2"] == "stopped"
    started = time.monotonic()
    assert _produce(producer, settings.kafka_topic, range(500, 1500)) == [], "min.insync.replicas=2 still holds"
    print(f"1,000 acks=all records with one of three nodes killed took {time.monotonic() - started:.1f} s")

    done = cluster.cli("services", "up", "--only", "kafka")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kafka-2: healthy" in done.stdout
    assert victim.pid() not in (None, pid), "a new process for the dead node"

    def back_in_sync() -> bool:
        topic, _ = _describe(settings)
        return all(len(p["isr_nodes"]) == 3 for p in topic["partitions"])

    assert wait_until(back_in_sync, 60, interval=1), "the restarted node caught up with every partition"
    assert _produce(producer, settings.kafka_topic, range(1500, 1600)) == []
    values = _read_all(settings, 1600)
    assert sorted(values) == list(range(1600)), "every record once: none lost, none duplicated"


def _processes_under(data_dir: Path) -> list[int]:
    """Live processes whose command line names a file under `data_dir` (the nodes' server.properties)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(data_dir).encode() in (proc / "cmdline").read_bytes() and pid_alive(int(proc.name)):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_down_stops_every_node_and_leaves_no_process(cluster: PrivatePlatform) -> None:
    pids = [node.pid() for node in KafkaBroker(cluster.settings).nodes]
    done = cluster.cli("services", "down", "--only", "kafka", timeout=120)
    assert done.returncode == 0 and "kafka" in done.stdout
    assert not any(pid_alive(p) for p in pids)
    assert _processes_under(cluster.settings.data_dir) == []
    assert all(v == "stopped" for k, v in services_status(cluster.settings).items() if k.startswith("kafka"))


def test_one_node_keeps_the_single_broker_layout(base_settings: Settings, tmp_path: Path) -> None:
    """KAFKA_BROKERS=1 runs exactly the broker of old, in the same files, so an existing data dir carries on."""
    single = PrivatePlatform(tmp_path, base_settings.cache_dir, cluster_env(kafka_brokers=1))
    done = single.cli("services", "up", "--only", "kafka")
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        assert "kafka: healthy" in done.stdout
        assert (tmp_path / "kafka" / "data" / "meta.properties").is_file()
        assert (tmp_path / "kafka" / "kafka.pid").is_file() and (tmp_path / "logs" / "kafka.log").is_file()
        assert not list((tmp_path / "kafka").glob("cluster-*")), "no cluster folders for one node"
        topic, configs = _describe(single.settings)
        assert all(len(p["replica_nodes"]) == 1 for p in topic["partitions"])
        assert configs["topic"][single.settings.kafka_topic]["min.insync.replicas"]["value"] == "1"

        # The same data dir asked for three nodes while the single one runs: refused, with the way out.
        three = PrivatePlatform(tmp_path, base_settings.cache_dir, cluster_env(kafka_brokers=3))
        refused = three.cli("services", "up", "--only", "kafka")
        assert refused.returncode == 1 and "another KAFKA_BROKERS still runs" in refused.stderr
        pid = KafkaBroker(single.settings).nodes[0].pid()
        assert three.cli("services", "down", "--only", "kafka").returncode == 0
        assert not pid_alive(pid), "down stops the nodes of any broker count this data dir started"
    finally:
        single.cli("services", "down", "--only", "kafka", timeout=120)
