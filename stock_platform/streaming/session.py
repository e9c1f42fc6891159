"""Building the SparkSession with the official Kafka connector from the local jar cache."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from stock_platform.config import Settings
from stock_platform.spark_jars import cached_spark_kafka_jars, spark_kafka_dir, spark_kafka_package
from stock_platform.streaming.shipping import code_archive, executor_environment, ships_to_executors

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["build_spark_session", "parse_spark_conf"]

logger = logging.getLogger(__name__)


def parse_spark_conf(text: str) -> dict[str, str]:
    """`SPARK_CONF`'s "key=value;key=value" pairs; a clear error for a pair without "=" or key."""
    conf: dict[str, str] = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"setting SPARK_CONF must be key=value pairs separated by ';', got {item.strip()!r}")
        conf[key.strip()] = value.strip()
    return conf


def build_spark_session(
    settings: Settings, app_name: str = "stock-platform", extra_jars: list[str] | None = None
) -> SparkSession:
    """A SparkSession for `settings.spark_master` with spark-sql-kafka on the classpath.

    The connector comes from the cache that `stock-platform services up` (or the
    spark image's build) fills once from Maven Central, so Spark starts offline;
    only without that cache does Spark resolve it itself (`spark.jars.packages`). `SPARK_CONF` comes
    last, so a user can change any of these without touching code (Spark's
    own `$SPARK_CONF_DIR/spark-defaults.conf` works too, below all of them).
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    shipped = False
    # Under spark-submit (which hands PySpark its gateway port) the master, jars and archives are
    # spark-submit's to decide (`--master`, `--jars`, `--archives`); setting them here would override it.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        connector = [str(p) for p in cached_spark_kafka_jars(settings.cache_dir)]
        if not connector:
            logger.warning(
                "Spark's Kafka connector is not in %s; Spark fetches %s from Maven Central itself "
                "(`stock-platform services up` caches it once, for offline starts)",
                spark_kafka_dir(settings.cache_dir), spark_kafka_package(),
            )  # fmt: skip
            builder = builder.config("spark.jars.packages", spark_kafka_package())
        jars = connector + list(extra_jars or [])
        builder = builder.master(settings.spark_master)
        if jars:
            builder = builder.config("spark.jars", ",".join(jars))
        shipped = settings.spark_ship_environment and ships_to_executors(settings.spark_master)
        if settings.spark_workers:
            # The local standalone cluster lives on loopback; executors must reach the driver there.
            builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        if shipped:
            # Spark's documented way: executors unpack the archive as ./environment and run its Python.
            builder = builder.config("spark.archives", f"{executor_environment(settings.cache_dir)}#environment")
            os.environ["PYSPARK_PYTHON"] = "./environment/bin/python"
        else:
            # Local mode: Python workers run the same interpreter (the venv) as the driver.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        builder.config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.sql.warehouse.dir", str(settings.data_dir / "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={settings.data_dir / 'derby'}")
    )
    for key, value in parse_spark_conf(settings.spark_conf).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if shipped:
        session.sparkContext.addPyFile(str(code_archive(settings.cache_dir)))
    return session
