"""`platform status` lines for the producer and the stream: Dagster's runs (a stand-in webserver) and real Redis beats.

The whole platform, with the real webserver and daemon, is in test_platform_up_down.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from stock_platform.config import Settings
from stock_platform.runtime.supervised_status import heartbeat_text, supervised_status
from stock_platform.storage.heartbeats import STALE_AFTER_SECONDS, queue_producer_beat, queue_stream_beat, supervised_producer_id
from stock_platform.storage.redis_client import redis_client
from stock_platform.storage.redis_keys import RedisKeys

PRODUCER_RUN = "0d4e1f5a-1b2c-4d3e-8f9a-0b1c2d3e4f5a"
STREAM_RUN = "9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"


def test_heartbeat_text_follows_the_shared_stale_rule() -> None:
    now = 1_750_000_000.0
    assert heartbeat_text(None, now) == "no heartbeat"
    assert heartbeat_text({"updated_ms": str(int((now - 3) * 1000))}, now) == "heartbeat 3 s ago"
    late = {"updated_ms": str(int((now - STALE_AFTER_SECONDS - 35) * 1000))}
    assert heartbeat_text(late, now) == "heartbeat stale (95 s ago)"


class _Dagster(BaseHTTPRequestHandler):
    """Answers the runs query as Dagster's GraphQL API does: the producer's run started, the stream's queued."""

    runs = {
        "producer_job": [{"runId": PRODUCER_RUN, "jobName": "producer_job", "status": "STARTED"}],
        "streaming_job": [{"runId": STREAM_RUN, "jobName": "streaming_job", "status": "QUEUED"}],
        "recent": [],
    }

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"data": {k: {"__typename": "Runs", "results": v} for k, v in self.runs.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dagster_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Dagster)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _beats(settings: Settings, producers: dict[str, float], stream_age_s: float) -> None:
    """Producer beats written that many seconds ago, by id, and the stream's."""
    keys, client, now = RedisKeys(settings.redis_key_prefix), redis_client(settings.redis_url), time.time()
    with client.pipeline() as pipe:
        for producer_id, age in producers.items():
            at = int((now - age) * 1000)
            queue_producer_beat(pipe, keys, producer_id, {"pid": 7, "updated_ms": at}, at)
        queue_stream_beat(pipe, keys, {"pid": 8, "updated_ms": int((now - stream_age_s) * 1000)})
        pipe.execute()
    client.close()


@pytest.mark.integration
def test_status_names_each_supervised_run_and_its_own_heartbeat(
    platform_settings: Settings, dagster_url: str, tmp_path: Path
) -> None:
    settings = platform_settings.replace(data_dir=tmp_path, dagster_url=dagster_url)
    # Another producer beats too; only the run's own producer (by its run id) counts for the run.
    _beats(settings, {"by-hand": 1, supervised_producer_id(PRODUCER_RUN): 2}, stream_age_s=STALE_AFTER_SECONDS + 30)
    lines = supervised_status(settings)
    assert re.fullmatch(rf"running \(Dagster run {PRODUCER_RUN}, heartbeat [23] s ago\)", lines["producer"]), lines["producer"]
    assert lines["stream"] == f"queued (Dagster run {STREAM_RUN}, heartbeat stale (90 s ago))"

    client = redis_client(settings.redis_url)
    client.delete(RedisKeys(settings.redis_key_prefix).producer_heartbeat(supervised_producer_id(PRODUCER_RUN)))
    client.close()
    assert supervised_status(settings)["producer"] == f"running (Dagster run {PRODUCER_RUN}, no heartbeat)"


@pytest.mark.integration
def test_status_without_dagster_says_stopped(platform_settings: Settings, tmp_path: Path) -> None:
    settings = platform_settings.replace(data_dir=tmp_path, dagster_url="http://127.0.0.1:9")
    assert supervised_status(settings, timeout_s=1) == {
        "producer": "stopped (Dagster is not running)",
        "stream": "stopped (Dagster is not running)",
    }
