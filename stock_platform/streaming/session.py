"""Building the SparkSession with the official Kafka connector from the local jar cache."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from stock_platform.config import Settings
from stock_platform.runtime.jars import spark_kafka_jars

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["build_spark_session"]


def build_spark_session(
    settings: Settings, app_name: str = "stock-platform", extra_jars: list[str] | None = None
) -> SparkSession:
    """A SparkSession for `settings.spark_master` with spark-sql-kafka on the classpath.

    The connector comes from the cache filled once from Maven Central, never
    from `spark.jars.packages`, so Spark starts offline.
    """
    from pyspark.sql import SparkSession

    jars = [str(p) for p in spark_kafka_jars(settings.cache_dir)] + list(extra_jars or [])
    # Python workers must run the same interpreter (the venv) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.sql.warehouse.dir", str(settings.data_dir / "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={settings.data_dir / 'derby'}")
    )
    return builder.getOrCreate()
