"""Record any feed to a gzip-compressed JSON-lines tape, and read a tape back for replay.

A tape line is exactly a record as it went to Kafka (`Quote.to_json()`), so a
tape doubles as a fixture: any record on it can be checked with the contract.
Replayed records keep their symbol, prices, volumes and event times (optionally
shifted so the tape ends now) and are re-stamped by the producer with source
`replay`, its own producer id and sequence numbers.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from stock_platform.ingestion.producer import encode_quote
from stock_platform.ingestion.stats import FeedStats
from stock_platform.quotes import Quote, QuoteError, quote_from_fields

__all__ = ["TapeWriter", "read_tape", "read_tape_parallel", "tape_span_ms"]

_CHUNK = 5_000

logger = logging.getLogger(__name__)


class TapeWriter:
    """Append records to a tape; use as a context manager so the gzip trailer is written."""

    def __init__(self, path: Path | str, compresslevel: int = 3) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Open for the writer's lifetime; its own __exit__ closes it and writes the gzip trailer.
        self._file: gzip.GzipFile = gzip.open(self.path, "ab", compresslevel=compresslevel)  # noqa: SIM115
        self.count = 0

    def write(self, record: Quote | bytes) -> None:
        """Write one record (a `Quote`, or its wire bytes as returned by `QuoteProducer.send`)."""
        line = encode_quote(record, record.producer_id, record.seq) if isinstance(record, Quote) else record
        self._file.write(line + b"\n")
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
                fields = json.loads(line.decode())  # str skips json's encoding sniffing
                if isinstance(fields, dict):
                    if shift_ms and isinstance(fields.get("event_time_ms"), int):
                        fields["event_time_ms"] += shift_ms
                    if source is not None:
                        fields["source"] = source
                quote = quote_from_fields(fields)
            except (ValueError, TypeError, QuoteError) as e:
                logger.warning("tape %s line %d skipped: %s", path, number, e)
                if stats is not None:
                    stats.skip("invalid")
                continue
            yield quote


def tape_span_ms(path: Path | str) -> tuple[int, int]:
    """The first and last valid event time on a tape (reads it once), to shift a replay to now."""
    first = last = 0
    for quote in read_tape(path, source=None):
        first = first or quote.event_time_ms
        last = quote.event_time_ms
    return first, last


def _frames(stream: IO[bytes]) -> Iterator[object]:
    while header := stream.read(4):
        size = int.from_bytes(header, "big")
        yield pickle.loads(stream.read(size))  # noqa: S301 - our own child process, over a pipe


def _emit(path: str, shift_ms: int, source: str | None, out: IO[bytes]) -> None:
    """The helper process: validate the tape and write frames of Quote field tuples, then the invalid count."""
    stats = FeedStats()
    chunk: list[tuple] = []

    def frame(obj: object) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(len(data).to_bytes(4, "big") + data)

    for q in read_tape(path, stats=stats, shift_ms=shift_ms, source=source):
        chunk.append((q.symbol, q.price, q.event_time_ms, q.source, q.producer_id, q.seq, q.volume,
                      q.day_high, q.day_low, q.open_price, q.prev_close, q.v))  # fmt: skip
        if len(chunk) >= _CHUNK:
            frame(chunk)
            chunk = []
    if chunk:
        frame(chunk)
    frame(stats.skipped["invalid"])
    out.flush()


def read_tape_parallel(
    path: Path | str, *, stats: FeedStats | None = None, shift_ms: int = 0, source: str | None = "replay"
) -> Iterator[Quote]:
    """`read_tape` with decoding and validation in a helper process, for replays as fast as possible.

    On two cores this splits the work: the helper (`python -m
    stock_platform.ingestion.tape`) parses and checks every line against the
    contract while this process publishes.
    """
    argv = [sys.executable, "-m", "stock_platform.ingestion.tape", str(path), str(shift_ms), source or ""]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE)  # noqa: S603 - our own module, no user text
    assert child.stdout is not None  # noqa: S101 - stdout=PIPE
    try:
        for payload in _frames(child.stdout):
            if isinstance(payload, int):
                if stats is not None and payload:
                    stats.skip("invalid", payload)
                break
            for fields in payload:  # type: ignore[attr-defined]
                yield Quote(*fields)
    finally:
        child.stdout.close()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    try:
        _emit(sys.argv[1], int(sys.argv[2]), sys.argv[3] or None, sys.stdout.buffer)
    except BrokenPipeError:
        # The reader stopped early (a record limit, SIGTERM): not an error. Point stdout
        # at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
