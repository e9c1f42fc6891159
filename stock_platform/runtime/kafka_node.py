"""One node of the local Kafka: a KRaft process that is broker and controller in one JVM.

Its files live under the node's root (server.properties, log4j.properties,
data/, kafka.pid) and its output in `<data dir>/logs/<name>.log`; see
`stock_platform.runtime.kafka_broker` for how nodes make up the cluster.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from pathlib import Path

from kafka.errors import KafkaError

from stock_platform.config import Settings
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.jars import kafka_broker_jars
from stock_platform.runtime.kafka_topics import admin_client
from stock_platform.runtime.processes import live_pid, port_open, start_detached

__all__ = ["KafkaNode", "cluster_root", "new_cluster_id", "registered_ids"]

logger = logging.getLogger(__name__)

_LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage=WARN
"""
_HEAP = "768m"  # per node; three nodes fit beside Spark and PostgreSQL on a laptop


def new_cluster_id() -> str:
    """A random KRaft cluster id. Like Kafka's own `Uuid.randomUuid`, never one starting with "-", which
    kafka-storage would read as an option (`-t -x...`: "expected one argument")."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def registered_ids(bootstrap: str, timeout_s: float = 3.0) -> set[int]:
    """Node ids of the brokers the cluster lists as registered and not fenced, asked through `bootstrap`."""
    admin = admin_client(bootstrap, timeout_s)  # the local nodes speak PLAINTEXT on loopback (see KafkaBroker.start)
    try:
        # kafka-python 3 names the id "broker_id", 2.x "node_id"
        return {int(b.get("broker_id", b.get("node_id", -1))) for b in admin.describe_cluster()["brokers"]}
    finally:
        admin.close()


class KafkaNode:
    """One local KRaft process, broker and controller in one JVM: its ports, files and process."""

    def __init__(self, settings: Settings, node_id: int) -> None:
        self.settings, self.node_id = settings, node_id
        alone = settings.kafka_brokers == 1
        # One node keeps the layout of the single broker this project always ran, so its data survives.
        self.root = settings.data_dir / "kafka" if alone else cluster_root(settings) / f"node-{node_id}"
        self.name = "kafka" if alone else f"kafka-{node_id}"
        self.log_dirs = self.root / "data"
        self.pid_file = self.root / "kafka.pid"
        self.log_file = settings.data_dir / "logs" / f"{self.name}.log"
        self.port, self.controller_port = settings.kafka_node_ports[node_id - 1]

    def write_config(self) -> None:
        """Write server.properties and log4j.properties (every start: ports may have moved)."""
        s, nodes = self.settings, self.settings.kafka_brokers
        voters = ",".join(f"{i}@127.0.0.1:{controller}" for i, (_, controller) in enumerate(s.kafka_node_ports, 1))
        internal_rf = min(3, nodes)
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": str(s.kafka_partitions),
            # Kafka's own topics (consumer offsets, transactions) replicated like the data: 1 on one node.
            "offsets.topic.replication.factor": str(internal_rf),
            "transaction.state.log.replication.factor": str(internal_rf),
            "transaction.state.log.min.isr": str(2 if internal_rf >= 3 else 1),
            "default.replication.factor": str(internal_rf),
            "min.insync.replicas": str(2 if internal_rf >= 3 else 1),
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "168",
            "message.max.bytes": "10485760",
            # After a crash the restarted broker can't register until the controller lets the dead one's
            # session lapse (default 9 s), and the others keep a dead node as partition leader as long. Measured
            # here: `services up` after SIGKILL spent ~10 s in DUPLICATE_BROKER_REGISTRATION retries.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "1000",
        }
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        (self.root / "log4j.properties").write_text(_LOG4J)

    def java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        """The `java` command line running `main` from the broker jars with this node's log4j setup."""
        classpath = str(kafka_broker_jars(self.settings.cache_dir)[0].parent / "*")
        return [
            "java", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}", "-cp", classpath, main, *args,
        ]  # fmt: skip

    def formatted_cluster_id(self) -> str | None:
        """The cluster id this node's storage was formatted with, or None when not formatted yet."""
        try:
            lines = (self.log_dirs / "meta.properties").read_text().splitlines()
        except OSError:
            return None
        return next((line.split("=", 1)[1].strip() for line in lines if line.startswith("cluster.id=")), None)

    def format_storage(self, cluster_id: str) -> None:
        """Format this node's KRaft storage once, for `cluster_id`."""
        if (self.log_dirs / "meta.properties").exists():
            return
        self.log_dirs.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(  # noqa: S603 - argv built here
            self.java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.root / "server.properties")),
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(
                self.name,
                f"formatting KRaft storage failed: {result.stdout[-400:]} {result.stderr[-400:]}",
                hint=f"check that {self.log_dirs} is writable and has free space; an empty directory is formatted afresh",
            )

    def launch(self) -> None:
        """Start this node's JVM, detached, with its pid file (the caller wrote its config and formatted it)."""
        start_detached(self.java("kafka.Kafka", str(self.root / "server.properties"), heap=_HEAP), self.log_file, self.pid_file)

    def pid(self) -> int | None:
        """The pid of this node's JVM when it is alive (a fault test or an operator kills one node with it)."""
        return live_pid(self.pid_file)

    def running(self) -> bool:
        """True when the process we started for this node is alive."""
        return self.pid() is not None

    def healthy(self) -> bool:
        """True when the node accepts clients and the cluster lists it as a live (registered, unfenced) broker."""
        if not port_open(self.port):  # spares kafka-python's connection-refused errors while the node boots
            return False
        try:
            return self.node_id in registered_ids(f"127.0.0.1:{self.port}")
        except (KafkaError, OSError, ValueError):
            return False


def cluster_root(settings: Settings) -> Path:
    """Where a cluster of `KAFKA_BROKERS` > 1 nodes keeps its nodes and its cluster id."""
    return settings.data_dir / "kafka" / f"cluster-{settings.kafka_brokers}"
