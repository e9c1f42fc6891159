"""Spark's Kafka connector: its Maven coordinates and where the local jar cache keeps it.

The connector is not on PyPI. The local launcher (`runtime/jars.py`, during
`stock-platform services up`) and the spark image fetch it once from Maven
Central; the stream job only reads the cache. Both take the coordinates and
the folder from here, so the job needs nothing of the launcher and the two
cannot disagree about what was fetched where.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = [
    "COMPLETE_MARKER",
    "SPARK_KAFKA_ARTIFACTS",
    "cached_jars",
    "cached_spark_kafka_jars",
    "jar_folder",
    "pyspark_scala_binary",
    "spark_kafka_coordinates",
    "spark_kafka_dir",
    "spark_kafka_package",
]

logger = logging.getLogger(__name__)

# Spark 4 is built for Scala 2.13 only; also the build whose cache folder keeps its original, unsuffixed name.
_SPARK_SCALA_BINARY = "2.13"
# Spark ships everything else the connector needs (lz4, snappy, hadoop client) in pyspark/jars;
# copying those again would put two versions on the classpath.
SPARK_KAFKA_ARTIFACTS = (
    "spark-sql-kafka-0-10_{scala}",
    "spark-token-provider-kafka-0-10_{scala}",
    "kafka-clients",
    "commons-pool2",
)
# Written last by a fetch, so a folder an interrupted fetch left half full is never taken for complete.
COMPLETE_MARKER = ".complete"


def jar_folder(cache_dir: Path, name: str) -> Path:
    """The cache folder of one fetched set of jars."""
    return cache_dir / "jars" / name


def cached_jars(folder: Path) -> list[Path]:
    """The jars in `folder` once a fetch has completed there; empty before."""
    if not (folder / COMPLETE_MARKER).exists():
        return []
    return sorted(folder.glob("*.jar"))


def pyspark_scala_binary() -> str:
    """The Scala binary version (e.g. "2.13") the installed PySpark was built with, read from its bundled scala-library jar."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    found = sorted(jars.glob("scala-library-*.jar"))
    if not found:
        return _SPARK_SCALA_BINARY  # a PySpark without bundled jars (e.g. pointed at SPARK_HOME)
    full = found[-1].name.removeprefix("scala-library-").removesuffix(".jar")  # "2.13.17"
    return ".".join(full.split(".")[:2])


def spark_kafka_coordinates() -> tuple[str, str, str]:
    """(group, artifact, version) of Spark's official Kafka source/sink for the installed PySpark."""
    import pyspark

    return ("org.apache.spark", f"spark-sql-kafka-0-10_{pyspark_scala_binary()}", pyspark.__version__)


def spark_kafka_package() -> str:
    """The connector as `spark.jars.packages` (and spark-submit's `--packages`) name it."""
    return ":".join(spark_kafka_coordinates())


def spark_kafka_dir(cache_dir: Path) -> Path:
    """Where the cache keeps the connector for the installed PySpark."""
    import pyspark

    version, scala = pyspark.__version__, pyspark_scala_binary()
    # The usual Scala build keeps the cache folder's original name, so existing caches are reused.
    folder = f"spark-sql-kafka-{version}" if scala == _SPARK_SCALA_BINARY else f"spark-sql-kafka-{version}_{scala}"
    return jar_folder(cache_dir, folder)


def cached_spark_kafka_jars(cache_dir: Path) -> list[Path]:
    """The connector's jars from the cache; empty when no fetch has filled it yet."""
    return cached_jars(spark_kafka_dir(cache_dir))
