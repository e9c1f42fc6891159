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
COPY setup.py constraints.txt ./
COPY stock_platform/__init__.py stock_platform/
COPY stock_platform/runtime/ stock_platform/runtime/
# constraints.txt pins every dependency to the versions the tests passed with (`make constraints`).
RUN pip install -c constraints.txt -e .

# Spark's Kafka connector for the installed PySpark, fetched by the project's own code at build
# time into STOCK_CACHE_DIR; Maven leaves again in the same layer. The container starts offline.
RUN apt-get update \
    && apt-get install -y --no-install-recommends maven \
    && python -c "from pathlib import Path; from stock_platform.runtime.jars import spark_kafka_jars; \
print(*spark_kafka_jars(Path('$STOCK_CACHE_DIR')), sep='\n')" \
    && apt-get purge -y --auto-remove maven \
    && rm -rf /root/.m2 /var/lib/apt/lists/*

COPY . .

USER 10001:10001
CMD ["stock-platform", "stream"]
