# syntax=docker/dockerfile:1
# The producer image: `stock-platform produce` (Finnhub, or the simulated market, -> Kafka).
# The one-shot `migrate` service runs this image too: it carries the repository's sql/ folder.
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
# Dependencies get their own layer, so a code change rebuilds in seconds. The install is
# editable because the migrations runner and Dagster read sql/ and workspace.yaml from the source tree.
COPY setup.py constraints.txt ./
COPY stock_platform/__init__.py stock_platform/
# constraints.txt pins every dependency to the versions the tests passed with (`make constraints`).
RUN pip install -c constraints.txt -e .
COPY . .

USER 10001:10001
CMD ["stock-platform", "produce"]
