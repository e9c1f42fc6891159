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
# Dependencies get their own layer, so a code change rebuilds in seconds: the package is installed
# first from its bare __init__ files, then again, without dependencies, from the code. A plain
# install from /src, which goes again: the migrations ship inside the package (setup.py maps sql/
# to stock_platform.sql), and no source copy in the working directory shadows the installed one.
COPY setup.py constraints.txt /src/
COPY stock_platform/__init__.py /src/stock_platform/
COPY sql/__init__.py /src/sql/
# constraints.txt pins every dependency to the versions the tests passed with (`make constraints`).
RUN pip install -c /src/constraints.txt /src

# The repository's instance configuration (runs, events and schedules in PostgreSQL via
# DAGSTER_POSTGRES_URL), baked into the image rather than kept on the volume, so an upgraded
# image brings its configuration with it.
COPY dagster.yaml "$DAGSTER_HOME/dagster.yaml"
COPY stock_platform/ /src/stock_platform/
COPY sql/ /src/sql/
RUN pip install --no-deps -c /src/constraints.txt /src && rm -rf /src
# The Dagster commands (here and in docker-compose.yml) load the code location with `-w workspace.yaml`.
COPY workspace.yaml ./

USER 10001:10001
EXPOSE 3000
CMD ["dagster-webserver", "-w", "workspace.yaml", "-h", "0.0.0.0", "-p", "3000"]
