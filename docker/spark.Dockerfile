# syntax=docker/dockerfile:1
# The Spark processor image: `stock-platform stream` (Kafka -> Structured Streaming -> PostgreSQL + Redis).
# Bookworm, not the newer Debian behind `python:3.11-slim`, because it still ships OpenJDK 17,
# the JRE the local runtime uses too.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STOCK_DATA_DIR=/data \
    STOCK_CACHE_DIR=/opt/stock-platform/cache

# The man directory works around the JRE's post-install script on slim images; procps gives Spark `ps`.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*

# /data/checkpoints exists, owned by `stock`, so the checkpoint volume mounted there is writable.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin stock \
    && install -d -o stock -g stock /data /data/checkpoints

WORKDIR /app
# Dependencies get their own layer, so a code change rebuilds in seconds: the package is installed
# first with only what the connector fetch below needs (the launcher's runtime/ and spark_jars.py),
# then again, without dependencies, from the code. A plain install from /src, which goes again, so
# no source copy in the working directory shadows the installed package.
COPY setup.py constraints.txt /src/
COPY stock_platform/__init__.py stock_platform/spark_jars.py /src/stock_platform/
COPY stock_platform/runtime/ /src/stock_platform/runtime/
COPY sql/__init__.py /src/sql/
# constraints.txt pins every dependency to the versions the tests passed with (`make constraints`).
RUN pip install -c /src/constraints.txt /src

# Spark's Kafka connector for the installed PySpark, fetched by the project's own code at build
# time into STOCK_CACHE_DIR; Maven leaves again in the same layer. The container starts offline.
RUN apt-get update \
    && apt-get install -y --no-install-recommends maven \
    && python -c "from pathlib import Path; from stock_platform.runtime.jars import spark_kafka_jars; \
print(*spark_kafka_jars(Path('$STOCK_CACHE_DIR')), sep='\n')" \
    && apt-get purge -y --auto-remove maven \
    && rm -rf /root/.m2 /var/lib/apt/lists/*

COPY stock_platform/ /src/stock_platform/
COPY sql/ /src/sql/
RUN pip install --no-deps -c /src/constraints.txt /src && rm -rf /src

USER 10001:10001
CMD ["stock-platform", "stream"]
