"""A private Kafka broker stopped and restarted while producing: every record is in the topic exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from stock_platform.config import Settings
from stock_platform.ingestion.run import ProduceOptions, run_produce
from stock_platform.ingestion.simulator import synthetic_symbols
from stock_platform.ingestion.stats import FeedStats
from stock_platform.runtime.kafka_broker import KafkaBroker
from stock_platform.runtime.processes import read_pid, wait_until
from stock_platform_tests.ingestion.conftest import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kill", ["sigterm", "sigkill"])
def test_broker_restart_loses_nothing_and_duplicates_nothing(services: Settings, tmp_path: Path, kill: str) -> None:
    port = _free_port()
    settings = services.replace(data_dir=tmp_path, kafka_port=port, kafka_controller_port=_free_port(),
        kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_topic="restart-test",
        redis_key_prefix=f"test:{uuid.uuid4().hex[:8]}:", producer_id=f"restart-{kill}",
    )  # fmt: skip
    broker = KafkaBroker(settings)
    broker.start()
    try:
        stats, stop = FeedStats(), threading.Event()
        options = ProduceOptions(source="simulator", symbols=synthetic_symbols(20), rate=400.0)
        result: list[int] = []
        producing = threading.Thread(target=lambda: result.append(run_produce(settings, options, stop, stats)), daemon=True)
        producing.start()
        assert wait_until(lambda: stats.published >= 400, 60, interval=0.1)
        if kill == "sigkill":
            os.killpg(read_pid(broker.pid_file), signal.SIGKILL)
            wait_until(lambda: not broker.running(), 30)
        else:
            broker.stop()
        at_stop = stats.published
        time.sleep(3)  # keep producing into the buffer while the broker is away
        assert stats.published == at_stop  # nothing could be acknowledged meanwhile
        broker.start()
        assert wait_until(lambda: stats.published >= at_stop + 2000, 180, interval=0.2)
        stop.set()
        producing.join(120)
        assert result == [0] and stats.failed == 0
        seqs = [json.loads(r.value)["seq"] for r in read_topic(settings, expected=stats.published)]
        assert len(seqs) == len(set(seqs)) == stats.published  # once each
        assert sorted(seqs) == list(range(1, stats.published + 1))  # and no gap: nothing lost
    finally:
        broker.stop()
