# syntax=docker/dockerfile:1
# The Dagster image: the webserver (`dagster-webserver`) and the daemon (`dagster-daemon`) both run it,
# and the daemon starts runs (compaction, asset materialisations) in it. No JRE: in the container
# deployment the stream job runs in the spark image, supervised by Docker, not as a Dagster run.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STOCK_DATA_DIR=/data \
    DAGSTER_HOME=/opt/dagster/home

# The instance's storage folder (compute logs, artifacts) exists, owned by `stock`, so the
# volume mounted there is writable.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin stock \
    && install -d -o stock -g stock /data "$DAGSTER_HOME" "$DAGSTER_HOME/storage"

WORKDIR /app
COPY setup.py constraints.txt ./
COPY stock_platform/__init__.py stock_platform/
# constraints.txt pins every dependency to the versions the tests passed with (`make constraints`).
RUN pip install -c constraints.txt -e .

# The repository's instance configuration (runs, events and schedules in PostgreSQL via
# DAGSTER_POSTGRES_URL), baked into the image rather than kept on the volume, so an upgraded
# image brings its configuration with it.
COPY dagster.yaml "$DAGSTER_HOME/dagster.yaml"
COPY . .

USER 10001:10001
EXPOSE 3000
CMD ["dagster-webserver", "-w", "workspace.yaml", "-h", "0.0.0.0", "-p", "3000"]
