# syntax=docker/dockerfile:1
# The producer image: `stock-platform produce` (Finnhub, or the simulated market, -> Kafka).
# The one-shot `migrate` service runs this image too: the migrations are installed with the package.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STOCK_DATA_DIR=/data

# One unprivileged user with the same uid in every app image, so they can share the /data volume.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin stock \
    && install -d -o stock -g stock /data

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
COPY stock_platform/ /src/stock_platform/
COPY sql/ /src/sql/
RUN pip install --no-deps -c /src/constraints.txt /src && rm -rf /src

USER 10001:10001
CMD ["stock-platform", "produce"]
