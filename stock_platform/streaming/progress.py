"""Per-batch progress of the stream job: one structured log line, and Dagster Pipes messages when launched by Dagster.

Every committed micro-batch produces a `BatchProgress`. `ProgressReporter`
logs it as one grep-able line:

    stream_batch batch_id=12 rows_in=500 inserted=480 duplicates=12 dead_letters=8 duration_ms=140 ...

and, when the environment variable `DAGSTER_PIPES_CONTEXT` is set (the job was
started through Dagster Pipes), also sends `pipes.report_custom_message(dict)`
per batch (`{"kind": "stream_batch", **BatchProgress.as_dict()}`), the log
line to Dagster's event log at most once a minute, and, when the job stops,
one `report_asset_materialization(asset_key="stock_prices")` with the run's
totals (Pipes accepts only one materialization per asset per run).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["BatchProgress", "ProgressReporter", "PIPES_ENV"]

logger = logging.getLogger(__name__)

PIPES_ENV = "DAGSTER_PIPES_CONTEXT"
# Dagster's event log gets the batch line at most this often (every batch goes as a custom message).
SUMMARY_INTERVAL_S = 60.0


@dataclass(frozen=True)
class BatchProgress:
    """What one micro-batch did; lag figures are measured when the batch committed."""

    query_id: str
    batch_id: int
    rows_in: int
    valid: int
    inserted: int
    duplicates: int
    dead_letters: int
    candles: int
    duration_ms: int
    lag_event_ms: int | None  # commit time minus the newest event time in the batch
    lag_kafka_ms: int | None  # commit time minus the newest Kafka timestamp in the batch
    lag_kafka_max_ms: int | None  # commit time minus the oldest Kafka timestamp: how long the oldest record waited
    redis_ok: bool
    replayed: bool
    committed_ms: int

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON, the heartbeat and Dagster metadata)."""
        return asdict(self)

    def log_line(self) -> str:
        """`stream_batch key=value ...`: one line per batch, easy to grep and parse."""
        return "stream_batch " + " ".join(f"{k}={'' if v is None else v}" for k, v in self.as_dict().items())


class ProgressReporter:
    """Logs every batch and, under Dagster Pipes, reports it to Dagster too."""

    def __init__(self, use_pipes: bool | None = None) -> None:
        self._stack = contextlib.ExitStack()
        self._pipes: Any = None
        self._last_summary = 0.0
        self._last: BatchProgress | None = None
        self.totals = {"batches": 0, "rows_in": 0, "inserted": 0, "duplicates": 0, "dead_letters": 0}
        wanted = bool(os.environ.get(PIPES_ENV)) if use_pipes is None else use_pipes
        if wanted:
            self._open_pipes()

    def _open_pipes(self) -> None:
        try:
            from dagster_pipes import open_dagster_pipes

            self._pipes = self._stack.enter_context(open_dagster_pipes())
        except Exception as e:  # noqa: BLE001 - reporting must never stop the job
            logger.warning("could not open Dagster Pipes (%s: %s); logging only", type(e).__name__, e)
            self._pipes = None

    @property
    def pipes_active(self) -> bool:
        """True when messages go to Dagster."""
        return self._pipes is not None

    def report(self, progress: BatchProgress) -> None:
        """Log the batch and update the running totals; forward to Dagster when under Pipes."""
        for name in ("rows_in", "inserted", "duplicates", "dead_letters"):
            self.totals[name] += getattr(progress, name)
        self.totals["batches"] += 1
        logger.info(progress.log_line())
        if self._pipes is None:
            return
        try:
            self._pipes.report_custom_message({"kind": "stream_batch", **progress.as_dict()})
            now = time.monotonic()
            if now - self._last_summary >= SUMMARY_INTERVAL_S:
                self._last_summary = now
                self._pipes.log.info(progress.log_line())
        except Exception as e:  # noqa: BLE001 - a closed Dagster channel must not stop the stream
            logger.warning("Dagster Pipes report failed (%s: %s)", type(e).__name__, e)
        self._last = progress

    def info(self, message: str) -> None:
        """A free-text line for the log and, under Pipes, Dagster's event log."""
        logger.info(message)
        if self._pipes is not None:
            with contextlib.suppress(Exception):
                self._pipes.log.info(message)

    def close(self) -> None:
        """Report the run's one `stock_prices` materialization (totals) and close the Pipes channel."""
        if self._pipes is not None and self.totals["batches"]:
            last = self._last
            try:
                self._pipes.report_asset_materialization(
                    asset_key="stock_prices",
                    metadata={
                        **{f"total_{k}": v for k, v in self.totals.items()},
                        "last_batch_id": last.batch_id if last else -1,
                        "lag_event_ms": last.lag_event_ms if last and last.lag_event_ms is not None else -1,
                        "query_id": last.query_id if last else "",
                    },
                )
            except Exception as e:  # noqa: BLE001 - e.g. the launching step is not for stock_prices
                logger.warning("Dagster Pipes materialization failed (%s: %s)", type(e).__name__, e)
        self._stack.close()
        self._pipes = None
