"""Record any feed to a gzip-compressed JSON-lines tape, and read a tape back for replay.

A tape line is exactly a record as it went to Kafka (`Quote.to_json()`), so a
tape doubles as a fixture: any record on it can be checked with the contract.
Replayed records keep their symbol, prices, volumes and event times (optionally
shifted so the tape ends now) and are re-stamped by the producer with source
`replay`, its own producer id and sequence numbers.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from stock_platform.ingestion.stats import FeedStats
from stock_platform.quotes import Quote, QuoteError, quote_from_fields

__all__ = ["TapeWriter", "read_tape", "tape_span_ms"]

logger = logging.getLogger(__name__)


class TapeWriter:
    """Append records to a tape; use as a context manager so the gzip trailer is written."""

    def __init__(self, path: Path | str, compresslevel: int = 3) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = gzip.open(self.path, "ab", compresslevel=compresslevel)
        self.count = 0

    def write(self, record: Quote | bytes) -> None:
        """Write one record (a `Quote`, or its wire bytes as returned by `QuoteProducer.send`)."""
        self._file.write((record.to_json() if isinstance(record, Quote) else record) + b"\n")
        self.count += 1

    def close(self) -> None:
        """Finish the gzip stream."""
        self._file.close()

    def __enter__(self) -> TapeWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def read_tape(
    path: Path | str, *, stats: FeedStats | None = None, shift_ms: int = 0, source: str | None = "replay"
) -> Iterator[Quote]:
    """The quotes on a tape in order; lines that break the contract are counted (`invalid`) and skipped.

    `shift_ms` moves every event time (e.g. so the tape ends now); `source`
    replaces the recorded source (None keeps it).
    """
    with gzip.open(Path(path), "rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
                if shift_ms and isinstance(fields, dict) and isinstance(fields.get("event_time_ms"), int):
                    fields["event_time_ms"] += shift_ms
                quote = quote_from_fields(fields)
            except (ValueError, TypeError, QuoteError) as e:
                logger.warning("tape %s line %d skipped: %s", path, number, e)
                if stats is not None:
                    stats.skip("invalid")
                continue
            yield quote if source is None else dataclasses.replace(quote, source=source)


def tape_span_ms(path: Path | str) -> tuple[int, int]:
    """The first and last valid event time on a tape (reads it once), to shift a replay to now."""
    first = last = 0
    for quote in read_tape(path, source=None):
        first = first or quote.event_time_ms
        last = quote.event_time_ms
    return first, last
