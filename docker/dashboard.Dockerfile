# syntax=docker/dockerfile:1
# The dashboard image: `stock-platform dashboard` (Streamlit, reading PostgreSQL and Redis).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STOCK_DATA_DIR=/data

RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin stock \
    && install -d -o stock -g stock /data

WORKDIR /app
COPY setup.py constraints.txt ./
COPY stock_platform/__init__.py stock_platform/
# constraints.txt pins every dependency to the versions the tests passed with (`make constraints`).
RUN pip install -c constraints.txt -e .
COPY . .

USER 10001:10001
EXPOSE 8501
# Every interface of the container: Docker decides what the host publishes.
CMD ["stock-platform", "dashboard", "--port", "8501", "--address", "0.0.0.0"]
