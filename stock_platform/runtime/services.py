"""The local services as one unit: `stock-platform services up|down|status|env`."""

from __future__ import annotations

import logging
from typing import Protocol

from stock_platform.config import Settings
from stock_platform.runtime.jars import spark_kafka_jars
from stock_platform.runtime.kafka_broker import KafkaBroker
from stock_platform.runtime.postgres import PostgresServer
from stock_platform.runtime.redis_server import RedisServer
from stock_platform.runtime.spark_cluster import SparkCluster

__all__ = ["Member", "Service", "all_services", "services_down", "services_env", "services_status", "services_up"]

logger = logging.getLogger(__name__)


class Service(Protocol):
    """What each local service offers the runtime."""

    name: str

    def start(self) -> None: ...
    def stop(self) -> bool: ...
    def running(self) -> bool: ...
    def healthy(self) -> bool: ...
    def env(self) -> dict[str, str]: ...


class Member(Protocol):
    """One process of a service made of several (a Kafka node, a Spark worker), as `services status` reports it."""

    name: str

    def running(self) -> bool: ...
    def healthy(self) -> bool: ...


def _members(service: Service) -> list[Member]:
    """A service's processes, each with its own status line (`members()`), or the service itself when it is one."""
    members = getattr(service, "members", None)
    return list(members()) if callable(members) else [service]


def all_services(settings: Settings) -> list[Service]:
    """The services in start order: Kafka after the quick ones (it is the slowest), the Spark cluster only when asked for."""
    services: list[Service] = [PostgresServer(settings), RedisServer(settings), KafkaBroker(settings)]
    if settings.spark_workers > 0:
        services.append(SparkCluster(settings))
    return services


def services_up(settings: Settings, only: set[str] | None = None) -> None:
    """Start every service (or those in `only`), idempotently; also fetch Spark's Kafka connector once."""
    for service in all_services(settings):
        if only and service.name not in only:
            continue
        logger.info("starting %s", service.name)
        service.start()
    if not only or "spark" in only:
        spark_kafka_jars(settings.cache_dir)


def services_down(settings: Settings, only: set[str] | None = None) -> list[str]:
    """Stop the services we started, in reverse order; returns the names that were running."""
    services = all_services(settings)
    if settings.spark_workers == 0:
        services.append(SparkCluster(settings))  # one started earlier with SPARK_WORKERS > 0 is stopped too
    stopped = []
    for service in reversed(services):
        if only and service.name not in only:
            continue
        if service.stop():
            stopped.append(service.name)
    return stopped


def services_status(settings: Settings) -> dict[str, str]:
    """Each service's (or each of its processes') state: healthy, running but not answering, or stopped."""
    out = {}
    for service in all_services(settings):
        for member in _members(service):
            if member.running():
                out[member.name] = "healthy" if member.healthy() else "running, not answering"
            else:
                out[member.name] = "stopped"
    return out


def services_env(settings: Settings) -> dict[str, str]:
    """KEY=value pairs that point a shell or another tool at the running services."""
    env = {"STOCK_DATA_DIR": str(settings.data_dir)}
    for service in all_services(settings):
        env.update(service.env())
    return env
