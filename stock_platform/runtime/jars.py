"""Fetching Java jars once from Maven Central into the local cache.

The Apache Kafka broker and Spark's official Kafka connector are not on PyPI
or in Debian; Maven resolves them (with their dependencies) exactly once, and
every later start runs offline from the cache.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.system_packages import ensure_commands

__all__ = [
    "KAFKA_VERSION",
    "POSTGRES_JDBC_VERSION",
    "kafka_broker_jars",
    "postgres_jdbc_jars",
    "pyspark_scala_binary",
    "spark_kafka_jars",
]

logger = logging.getLogger(__name__)

KAFKA_VERSION = "3.9.1"
# The Kafka broker's own Scala build; the Spark connector follows the installed PySpark (see pyspark_scala_binary).
SCALA_BINARY = "2.13"
POSTGRES_JDBC_VERSION = "42.7.4"
# Spark ships everything else the connector needs (lz4, snappy, hadoop client) in pyspark/jars;
# copying those again would put two versions on the classpath.
_SPARK_KAFKA_ARTIFACTS = (
    "spark-sql-kafka-0-10_{scala}",
    "spark-token-provider-kafka-0-10_{scala}",
    "kafka-clients",
    "commons-pool2",
)


def pyspark_scala_binary() -> str:
    """The Scala binary version (e.g. "2.13") the installed PySpark was built with, read from its bundled scala-library jar."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    found = sorted(jars.glob("scala-library-*.jar"))
    if not found:
        return SCALA_BINARY  # a PySpark without bundled jars (e.g. pointed at SPARK_HOME): Spark 4 is Scala 2.13 only
    full = found[-1].name.removeprefix("scala-library-").removesuffix(".jar")  # "2.13.17"
    return ".".join(full.split(".")[:2])


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>stock-platform</groupId><artifactId>jar-fetch</artifactId><version>1</version>
  <dependencies>{deps}</dependencies>
</project>
"""
_DEP = "<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"


def _fetch(target: Path, coordinates: list[tuple[str, str, str]], include: tuple[str, ...] = ()) -> list[Path]:
    """Resolve `coordinates` with Maven and copy the runtime jars into `target`, once."""
    marker = target / ".complete"
    if marker.exists():
        return sorted(target.glob("*.jar"))
    ensure_commands([("java", "openjdk-17-jre-headless"), ("mvn", "maven")])
    target.mkdir(parents=True, exist_ok=True)
    deps = "".join(_DEP.format(g=g, a=a, v=v) for g, a, v in coordinates)
    with tempfile.TemporaryDirectory() as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_POM.format(deps=deps))
        argv = [
            "mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={target}", "-DincludeScope=runtime",
        ]  # fmt: skip
        if include:
            argv.append(f"-DincludeArtifactIds={','.join(include)}")
        logger.info("fetching %s from Maven Central into %s", ", ".join(a for _, a, _ in coordinates), target)
        result = subprocess.run(argv, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        errors = [line for line in result.stdout.splitlines() if "ERROR" in line][:3]
        log = target.parent / f"{target.name}.maven.log"
        log.write_text(f"$ {' '.join(argv)}\n{result.stdout}\n{result.stderr}")
        raise ServiceError(
            "maven", f"could not fetch {coordinates}: {' '.join(errors)[:600]}", log,
            hint="check that Maven Central is reachable (mvn -v; ~/.m2/settings.xml)",
        )  # fmt: skip
    marker.write_text("ok\n")
    return sorted(target.glob("*.jar"))


def kafka_broker_jars(cache_dir: Path) -> list[Path]:
    """The Apache Kafka broker (KRaft) and its dependencies, with a log4j binding."""
    return _fetch(
        cache_dir / "jars" / f"kafka_{SCALA_BINARY}-{KAFKA_VERSION}",
        [("org.apache.kafka", f"kafka_{SCALA_BINARY}", KAFKA_VERSION), ("org.slf4j", "slf4j-reload4j", "1.7.36")],
    )


def spark_kafka_jars(cache_dir: Path) -> list[Path]:
    """Spark's official Kafka source/sink for the installed PySpark version."""
    import pyspark

    version, scala = pyspark.__version__, pyspark_scala_binary()
    # The usual Scala build keeps the cache folder's original name, so existing caches are reused.
    folder = f"spark-sql-kafka-{version}" if scala == SCALA_BINARY else f"spark-sql-kafka-{version}_{scala}"
    return _fetch(
        cache_dir / "jars" / folder,
        [("org.apache.spark", f"spark-sql-kafka-0-10_{scala}", version)],
        include=tuple(a.format(scala=scala) for a in _SPARK_KAFKA_ARTIFACTS),
    )


def postgres_jdbc_jars(cache_dir: Path) -> list[Path]:
    """The PostgreSQL JDBC driver, for the benchmark that compares against Spark's JDBC writer."""
    return _fetch(
        cache_dir / "jars" / f"postgresql-jdbc-{POSTGRES_JDBC_VERSION}",
        [("org.postgresql", "postgresql", POSTGRES_JDBC_VERSION)],
    )
