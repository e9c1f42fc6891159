"""Checks across settings that `load_settings` runs: combinations no single variable's parser can see.

Derived values (broker i's port, worker i's UI port, the replica counts) can
clash with each other or with a setting given explicitly; each check names the
setting to change. The Kafka security combinations are checked where their
options are built (`stock_platform.kafka_options`), and never quote the password.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stock_platform.kafka_options import check_kafka_security

if TYPE_CHECKING:
    from stock_platform.config import Settings

__all__ = ["check_cluster"]


def _check_local_ports(s: Settings) -> None:
    """Refuse two local services on one port: derived ports (broker i, worker i) can land on another's."""
    ports = {"POSTGRES_PORT": s.postgres_port, "REDIS_PORT": s.redis_port}
    ports |= {"DAGSTER_PORT": s.dagster_port, "DASHBOARD_PORT": s.dashboard_port}
    for i, (client, controller) in enumerate(s.kafka_node_ports):
        suffix = f"+{2 * i} (Kafka node {i + 1})" if i else ""
        ports |= {f"KAFKA_PORT{suffix}": client, f"KAFKA_CONTROLLER_PORT{suffix}": controller}
    if s.spark_workers:
        ports |= {"SPARK_MASTER_PORT": s.spark_master_port, "SPARK_MASTER_UI_PORT": s.spark_master_ui_port}
        ports |= {f"SPARK_MASTER_UI_PORT+{i} (Spark worker {i})": p for i, p in enumerate(s.spark_worker_ui_ports, 1)}
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise ValueError(f"setting {name} and {seen[port]} both use port {port}; move one of them")
        seen[port] = name


def check_cluster(s: Settings) -> None:
    """Refuse Kafka and Spark cluster settings that cannot work together, naming the setting (single values are checked by their declaration)."""
    if s.kafka_min_insync_replicas > s.kafka_replication_factor:
        raise ValueError(
            f"setting KAFKA_MIN_INSYNC_REPLICAS ({s.kafka_min_insync_replicas}) must not exceed KAFKA_REPLICATION_FACTOR "
            f"({s.kafka_replication_factor}): the topic would refuse every write"
        )
    if not re.fullmatch(r"[1-9][0-9]*[mMgG]", s.spark_worker_memory):
        raise ValueError(f"setting SPARK_WORKER_MEMORY must be a size such as 1g or 512m, got {s.spark_worker_memory!r}")
    password = s.kafka_sasl_password.get_secret_value()
    check_kafka_security(s.kafka_security_protocol, s.kafka_sasl_mechanism, s.kafka_sasl_username, password)
    _check_local_ports(s)
