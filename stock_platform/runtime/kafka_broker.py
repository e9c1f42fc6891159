"""The local Apache Kafka in KRaft mode (no ZooKeeper), run from Maven Central's jars: one node or a small cluster.

`KAFKA_BROKERS=1` (the default) runs one combined broker+controller with its
data in `<data dir>/kafka/data`. `KAFKA_BROKERS=N` runs N combined nodes that
form one cluster (every node a controller voter, so a quorum survives losing a
minority), under `<data dir>/kafka/cluster-N/node-i/`: a different broker
count is a different cluster, never a half-reused one. Node i (from 1) listens
for clients on KAFKA_PORT+2(i-1) and for its quorum on KAFKA_CONTROLLER_PORT+2(i-1)
(`Settings.kafka_node_ports`). Each node has its own pid file and log, so one
can be killed and `services up` brings back just that one.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from kafka.errors import KafkaError

from stock_platform.config import Settings
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.jars import KAFKA_VERSION
from stock_platform.runtime.kafka_node import KafkaNode, cluster_root, new_cluster_id, registered_ids
from stock_platform.runtime.kafka_topics import admin_client, delete_topic, ensure_topic
from stock_platform.runtime.processes import live_pid, port_open, read_pid, stop_pids, wait_until

__all__ = ["KafkaBroker", "KafkaNode", "delete_topic", "ensure_topic"]

logger = logging.getLogger(__name__)


class KafkaBroker:
    """Start, check and stop the project's own Kafka: `KAFKA_BROKERS` KRaft nodes forming one cluster."""

    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nodes = [KafkaNode(settings, i) for i in range(1, settings.kafka_brokers + 1)]
        # The local nodes' own addresses: KAFKA_BOOTSTRAP_SERVERS may name them as another host sees them.
        self.bootstrap = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        first = self.nodes[0]
        # Node 1's files: what code written for the single broker (fault injection, tests) looks at.
        self.root, self.pid_file, self.log_file, self.port = first.root, first.pid_file, first.log_file, first.port

    def members(self) -> list[KafkaNode]:
        """The nodes, each reported on its own by `services status` (one entry named "kafka" for a single node)."""
        return self.nodes

    def running(self) -> bool:
        """True when any node we started is alive."""
        return any(node.running() for node in self.nodes)

    def healthy(self) -> bool:
        """True when every node accepts clients and the cluster lists all of them as live brokers."""
        if not all(port_open(node.port) for node in self.nodes):
            return False
        try:
            return registered_ids(self.bootstrap) >= {n.node_id for n in self.nodes}
        except (KafkaError, OSError, ValueError):
            return False

    def _check_can_start(self) -> None:
        s = self.settings
        if s.kafka_security_protocol != "PLAINTEXT":
            raise ServiceError(
                self.name,
                f"the local brokers speak PLAINTEXT on 127.0.0.1, but KAFKA_SECURITY_PROTOCOL={s.kafka_security_protocol}",
                hint="point KAFKA_BOOTSTRAP_SERVERS at your secured cluster and start the rest with "
                "`stock-platform services up --only postgres redis spark`, or unset KAFKA_SECURITY_PROTOCOL",
            )
        if s.kafka_replication_factor > s.kafka_brokers:
            raise ServiceError(
                self.name,
                f"KAFKA_REPLICATION_FACTOR={s.kafka_replication_factor} needs as many brokers, KAFKA_BROKERS={s.kafka_brokers}",
                hint="raise KAFKA_BROKERS or lower KAFKA_REPLICATION_FACTOR",
            )
        others = [p for p in self._all_pid_files() if p not in {n.pid_file for n in self.nodes} and live_pid(p)]
        if others:
            raise ServiceError(
                self.name,
                f"a Kafka started with another KAFKA_BROKERS still runs from this data dir ({others[0].parent})",
                hint="`stock-platform services down --only kafka`, then `up` with the broker count you want",
            )
        for node in self.nodes:
            if node.running():
                continue
            for port in (node.port, node.controller_port):
                if port_open(port):
                    raise ServiceError(
                        node.name,
                        f"port {port} is taken by another program",
                        hint="set KAFKA_PORT (and KAFKA_CONTROLLER_PORT) to free ports; node i uses both + 2(i-1)",
                    )

    def _cluster_id(self) -> str:
        """The id every node is formatted with: the one already on disk, else a new one (kept for later nodes)."""
        found = [cid for node in self.nodes if (cid := node.formatted_cluster_id())]
        if found:
            return found[0]
        if len(self.nodes) == 1:
            return new_cluster_id()
        id_file = cluster_root(self.settings) / "cluster.id"
        if not id_file.exists():
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(new_cluster_id() + "\n")
        return id_file.read_text().strip()

    def start(self) -> None:
        """Fetch the jars once, format each node once, start the nodes that are not running, wait, create the topic."""
        self._check_can_start()
        dead = [node for node in self.nodes if not node.running()]
        if dead:
            cluster_id = self._cluster_id()
            for node in self.nodes:
                node.write_config()
            for node in dead:
                node.format_storage(cluster_id)
                node.launch()
        timeout = 60 + 30 * len(self.nodes)  # N JVMs booting on a laptop's cores
        if not wait_until(lambda: all(n.running() for n in self.nodes) and self.healthy(), timeout, interval=0.5):
            bad = next((n for n in self.nodes if not n.running() or not n.healthy()), self.nodes[0])
            state = "exited" if not bad.running() else "not answering"
            raise ServiceError(
                bad.name,
                f"Kafka {KAFKA_VERSION} {state} on 127.0.0.1:{bad.port} after {timeout} s",
                bad.log_file,
                hint="read the end of the log (`java` missing, memory, a corrupt data dir); `stock-platform services down` "
                "then `up`",
            )
        self._ensure_quote_topic()

    def _ensure_quote_topic(self, attempts: int = 3) -> None:
        """Create or grow the quote topic; retried, since a node that has just come back may not be known to all yet."""
        s = self.settings
        for attempt in range(1, attempts + 1):
            try:
                ensure_topic(
                    self.bootstrap, s.kafka_topic, s.kafka_partitions,
                    replication_factor=s.kafka_replication_factor, min_insync_replicas=s.kafka_min_insync_replicas,
                )  # fmt: skip
                if not wait_until(lambda: all(self._topic_led_on(node) for node in self.nodes), 30, interval=0.5):
                    raise KafkaError(f"partitions without a leader on some node 30 s after creating {s.kafka_topic}")
                return
            except KafkaError as exc:
                if attempt < attempts:
                    logger.info("topic %s not ready (%s); retrying", s.kafka_topic, type(exc).__name__)
                    time.sleep(2)
                    continue
                raise ServiceError(
                    self.name,
                    f"could not create topic {s.kafka_topic!r} ({type(exc).__name__}: {exc})",
                    self.log_file,
                    hint="the brokers answer but refused or timed out; run `stock-platform services up` again",
                ) from exc

    def _topic_led_on(self, node: KafkaNode) -> bool:
        """True when `node` itself knows every partition of the quote topic and its leader.

        A new topic reaches each node's metadata a moment after the create call returns; until then a
        client bootstrapped there (the producer, right after `services up`) is told it does not exist.
        """
        admin = admin_client(f"127.0.0.1:{node.port}", 3)
        try:
            described = admin.describe_topics([self.settings.kafka_topic])
        finally:
            admin.close()
        partitions = described[0]["partitions"] if described else []
        return len(partitions) >= self.settings.kafka_partitions and all(p["leader_id"] >= 0 for p in partitions)

    def _all_pid_files(self) -> list[Path]:
        """The pid file of every node this data dir ever started, whatever KAFKA_BROKERS was then."""
        root = self.settings.data_dir / "kafka"
        return [root / "kafka.pid", *sorted(root.glob("cluster-*/node-*/kafka.pid"))]

    def stop(self) -> bool:
        """Stop every node this data dir started, all at once (controlled shutdown on SIGTERM); True if any ran."""
        return stop_pids([read_pid(p) for p in self._all_pid_files()], timeout=30) > 0

    def env(self) -> dict[str, str]:
        """The variables that point a client at these brokers."""
        return {"KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers, "KAFKA_TOPIC": self.settings.kafka_topic}
