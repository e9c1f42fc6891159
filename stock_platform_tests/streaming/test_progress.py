"""Per-batch progress: one grep-able line with every counter; logging only when not under Dagster Pipes."""

from __future__ import annotations

import logging

import pytest

from stock_platform.streaming.progress import PIPES_ENV, BatchProgress, ProgressReporter


def _progress(batch_id: int, inserted: int) -> BatchProgress:
    return BatchProgress(
        query_id="q", batch_id=batch_id, rows_in=10, valid=9, inserted=inserted, duplicates=9 - inserted, dead_letters=1,
        candles=2, duration_ms=15, lag_event_ms=1200, lag_kafka_ms=800, lag_kafka_max_ms=None, redis_ok=True,
        replayed=False, committed_ms=1,
    )  # fmt: skip


def test_log_line_has_every_field_as_key_value(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIPES_ENV, raising=False)
    reporter = ProgressReporter()
    assert not reporter.pipes_active
    with caplog.at_level(logging.INFO, logger="stock_platform.streaming.progress"):
        reporter.report(_progress(3, 7))
        reporter.report(_progress(4, 9))
    reporter.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stream_batch ")]
    assert len(lines) == 2
    fields = dict(part.split("=", 1) for part in lines[0].split()[1:])
    assert fields["batch_id"] == "3" and fields["inserted"] == "7" and fields["duplicates"] == "2"
    assert fields["dead_letters"] == "1" and fields["lag_event_ms"] == "1200" and fields["lag_kafka_max_ms"] == ""
    assert {"rows_in", "duration_ms", "lag_kafka_ms", "redis_ok", "replayed"} <= set(fields)
    assert reporter.totals == {"batches": 2, "rows_in": 20, "inserted": 16, "duplicates": 2, "dead_letters": 2}
