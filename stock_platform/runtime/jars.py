"""Fetching Java jars once from Maven Central into the local cache.

The Apache Kafka broker and Spark's official Kafka connector are not on PyPI
or in Debian; Maven resolves them (with their dependencies) exactly once, and
every later start runs offline from the cache.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.progress import MavenProgress, run_with_progress
from stock_platform.runtime.system_packages import ensure_commands
from stock_platform.spark_jars import (
    COMPLETE_MARKER,
    SPARK_KAFKA_ARTIFACTS,
    cached_jars,
    jar_folder,
    pyspark_scala_binary,
    spark_kafka_coordinates,
    spark_kafka_dir,
)

__all__ = [
    "KAFKA_VERSION",
    "POSTGRES_JDBC_VERSION",
    "kafka_broker_jars",
    "postgres_jdbc_jars",
    "spark_kafka_jars",
]

logger = logging.getLogger(__name__)

KAFKA_VERSION = "3.9.1"
# The Kafka broker's own Scala build; the Spark connector follows the installed PySpark (spark_jars.py).
SCALA_BINARY = "2.13"
POSTGRES_JDBC_VERSION = "42.7.4"


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>stock-platform</groupId><artifactId>jar-fetch</artifactId><version>1</version>
  <dependencies>{deps}</dependencies>
</project>
"""
_DEP = "<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"


def _fetch(target: Path, coordinates: list[tuple[str, str, str]], include: tuple[str, ...] = ()) -> list[Path]:
    """Resolve `coordinates` with Maven and copy the runtime jars into `target`, once."""
    if found := cached_jars(target):
        return found
    ensure_commands([("java", "openjdk-17-jre-headless"), ("mvn", "maven")])
    target.mkdir(parents=True, exist_ok=True)
    deps = "".join(_DEP.format(g=g, a=a, v=v) for g, a, v in coordinates)
    with tempfile.TemporaryDirectory() as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_POM.format(deps=deps))
        # Not -q: in batch mode Maven names each file it downloads, one line each, which MavenProgress reports.
        argv = [
            "mvn", "-B", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={target}", "-DincludeScope=runtime",
        ]  # fmt: skip
        if include:
            argv.append(f"-DincludeArtifactIds={','.join(include)}")
        logger.info(
            "fetching %s and its dependencies from Maven Central into %s (first run only)",
            ", ".join(a for _, a, _ in coordinates), target,
        )  # fmt: skip
        progress, started = MavenProgress(logger), time.monotonic()
        returncode, output = run_with_progress(argv, progress.feed)
    if returncode != 0:
        errors = [line for line in output if "ERROR" in line][:3]
        log = target.parent / f"{target.name}.maven.log"
        log.write_text(f"$ {' '.join(argv)}\n" + "\n".join(output) + "\n")
        raise ServiceError(
            "maven", f"could not fetch {coordinates}: {' '.join(errors)[:600]}", log,
            hint="check that Maven Central is reachable (mvn -v; ~/.m2/settings.xml)",
        )  # fmt: skip
    (target / COMPLETE_MARKER).write_text("ok\n")
    logger.info("fetched %s in %.1f s", progress.summary(), time.monotonic() - started)
    return cached_jars(target)


def kafka_broker_jars(cache_dir: Path) -> list[Path]:
    """The Apache Kafka broker (KRaft) and its dependencies, with a log4j binding."""
    return _fetch(
        jar_folder(cache_dir, f"kafka_{SCALA_BINARY}-{KAFKA_VERSION}"),
        [("org.apache.kafka", f"kafka_{SCALA_BINARY}", KAFKA_VERSION), ("org.slf4j", "slf4j-reload4j", "1.7.36")],
    )


def spark_kafka_jars(cache_dir: Path) -> list[Path]:
    """Spark's official Kafka source/sink for the installed PySpark version, fetched once; the stream job reads the cache."""
    scala = pyspark_scala_binary()
    return _fetch(
        spark_kafka_dir(cache_dir),
        [spark_kafka_coordinates()],
        include=tuple(a.format(scala=scala) for a in SPARK_KAFKA_ARTIFACTS),
    )


def postgres_jdbc_jars(cache_dir: Path) -> list[Path]:
    """The PostgreSQL JDBC driver, for the benchmark that compares against Spark's JDBC writer."""
    return _fetch(
        jar_folder(cache_dir, f"postgresql-jdbc-{POSTGRES_JDBC_VERSION}"),
        [("org.postgresql", "postgresql", POSTGRES_JDBC_VERSION)],
    )
