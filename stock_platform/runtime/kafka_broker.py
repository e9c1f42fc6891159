"""A single Apache Kafka broker in KRaft mode (no ZooKeeper), run from Maven Central's jars."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid

from kafka import KafkaAdminClient
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

from stock_platform.config import Settings
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.jars import KAFKA_VERSION, kafka_broker_jars
from stock_platform.runtime.processes import pid_alive, port_open, read_pid, start_detached, stop_pid, wait_until

__all__ = ["KafkaBroker", "delete_topic", "ensure_topic"]

logger = logging.getLogger(__name__)

_LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage=WARN
"""


def _admin_client(bootstrap: str, timeout_s: float) -> KafkaAdminClient:
    """An admin client whose requests, and whose wait for an unreachable broker, are bounded by `timeout_s`."""
    timeout_ms = int(timeout_s * 1000)
    # kafka-python 3 waits `bootstrap_timeout_ms` (default 30 s) for an unreachable broker; 2.x has no such key.
    bounded = {"bootstrap_timeout_ms": timeout_ms} if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG else {}
    return KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="stock-platform-admin", request_timeout_ms=timeout_ms, **bounded
    )


def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 30.0) -> None:
    """Create `topic` with `partitions` partitions if missing (idempotent), or grow it to that count."""
    admin = _admin_client(bootstrap, timeout_s)
    try:
        try:
            admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
            logger.info("created topic %s with %d partitions", topic, partitions)
        except TopicAlreadyExistsError:
            described = admin.describe_topics([topic])
            current = len(described[0]["partitions"]) if described else partitions
            if current < partitions:
                admin.create_partitions({topic: NewPartitions(total_count=partitions)})
                logger.info("grew topic %s from %d to %d partitions", topic, current, partitions)
    finally:
        admin.close()


def delete_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> bool:
    """Delete `topic` if it exists; True when it is gone. Never raises: used to clean up after tests and benchmarks.

    Scratch topics left behind would pile up in the user's own broker (disk, and a slower start: every
    partition is recovered after a crash).
    """
    try:
        admin = _admin_client(bootstrap, timeout_s)
    except (KafkaError, OSError, ValueError) as exc:
        logger.warning("could not delete topic %s: %s", topic, exc)
        return False
    try:
        admin.delete_topics([topic])
        logger.info("deleted topic %s", topic)
        return True
    except UnknownTopicOrPartitionError:
        return True
    except (KafkaError, OSError, ValueError) as exc:
        logger.warning("could not delete topic %s: %s", topic, exc)
        return False
    finally:
        admin.close()


class KafkaBroker:
    """Start, check and stop the project's own single-node KRaft broker."""

    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.data_dir / "kafka"
        self.log_dirs = self.root / "data"
        self.pid_file = self.root / "kafka.pid"
        self.log_file = settings.data_dir / "logs" / "kafka.log"
        self.port = settings.kafka_port

    def _write_config(self) -> None:
        port, controller = self.port, self.settings.kafka_controller_port
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": str(self.settings.kafka_partitions),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "168",
            "message.max.bytes": "10485760",
            # After a crash the restarted broker can't register until the controller lets the dead one's
            # session lapse (default 9 s); one node on one host needs no such patience. Measured here:
            # `services up` after SIGKILL spent ~10 s in DUPLICATE_BROKER_REGISTRATION retries.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "1000",
        }
        (self.root / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        (self.root / "log4j.properties").write_text(_LOG4J)

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        classpath = str(kafka_broker_jars(self.settings.cache_dir)[0].parent / "*")
        return [
            "java", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}", "-cp", classpath, main, *args,
        ]  # fmt: skip

    def _format_storage(self) -> None:
        if (self.log_dirs / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(  # noqa: S603
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.root / "server.properties")),
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(
                self.name,
                f"formatting KRaft storage failed: {result.stdout[-400:]} {result.stderr[-400:]}",
                hint=f"check that {self.log_dirs} is writable and has free space; an empty directory is formatted afresh",
            )

    def running(self) -> bool:
        """True when the broker we started is alive."""
        return pid_alive(read_pid(self.pid_file))

    def healthy(self) -> bool:
        """True when the broker answers a metadata request."""
        if not port_open(self.port):  # spares kafka-python's connection-refused errors while the broker boots
            return False
        try:
            admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{self.port}", request_timeout_ms=3000)
            try:
                admin.list_topics()
            finally:
                admin.close()
            return True
        except (KafkaError, OSError, ValueError):
            return False

    def start(self) -> None:
        """Fetch the jars once, format storage once, start the broker, wait, create the topic."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_dirs.mkdir(parents=True, exist_ok=True)
        if not self.running():
            for port in (self.port, self.settings.kafka_controller_port):
                if port_open(port):
                    raise ServiceError(
                        self.name,
                        f"port {port} is taken by another program",
                        hint="set KAFKA_PORT (and KAFKA_CONTROLLER_PORT) to free ports",
                    )
            self._write_config()
            self._format_storage()
            argv = self._java("kafka.Kafka", str(self.root / "server.properties"), heap="768m")
            start_detached(argv, self.log_file, self.pid_file)
        if not wait_until(lambda: self.running() and self.healthy(), 90, interval=0.5):
            state = "exited" if not self.running() else "not answering"
            raise ServiceError(
                self.name,
                f"Kafka {KAFKA_VERSION} {state} on 127.0.0.1:{self.port} after 90 s",
                self.log_file,
                hint="read the end of the log (`java` missing, memory, a corrupt data dir); `stock-platform services down` "
                "then `up`",
            )
        try:
            ensure_topic(f"127.0.0.1:{self.port}", self.settings.kafka_topic, self.settings.kafka_partitions)
        except KafkaError as exc:
            raise ServiceError(
                self.name,
                f"could not create topic {self.settings.kafka_topic!r} ({type(exc).__name__}: {exc})",
                self.log_file,
                hint="the broker answers but refused or timed out; run `stock-platform services up` again",
            ) from exc

    def stop(self) -> bool:
        """Stop the broker we started (controlled shutdown on SIGTERM)."""
        return stop_pid(read_pid(self.pid_file), timeout=30)

    def env(self) -> dict[str, str]:
        """The variables that point a client at this broker."""
        return {"KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers, "KAFKA_TOPIC": self.settings.kafka_topic}
