"""The producer's sources as plain iterators of `Quote`: simulator, Finnhub feeds, replay.

The Finnhub feeds (REST poller, WebSocket trades) run in their own threads and
meet in a bounded queue: they cannot be paused, so when the producer falls
behind (Kafka down) the newest quotes are dropped and counted
(`dropped_inbox_full`) instead of piling up in memory. The simulator and replay
are paced in the caller's thread, so a slow producer simply slows them down.
Every iterator returns when `stop` is set, so the producer can flush and exit.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from stock_platform.config import Settings
from stock_platform.ingestion.day_volume import DayVolume
from stock_platform.ingestion.drops import DropRun
from stock_platform.ingestion.pacing import paced
from stock_platform.ingestion.simulator import SimulatedMarket
from stock_platform.ingestion.stats import FeedStats
from stock_platform.ingestion.tape import read_tape, read_tape_parallel, tape_span_ms
from stock_platform.quotes import Quote

__all__ = ["finnhub_quotes", "parse_feeds", "replay_quotes", "simulated_quotes"]

logger = logging.getLogger(__name__)

# At full speed each symbol gets an event every 5 simulated ms at most, so event
# times stay strictly increasing per symbol without drifting ahead of the clock.
_MAX_SPEED_EVENTS_PER_SYMBOL = 200.0


def parse_feeds(text: str) -> set[str]:
    """FINNHUB_FEEDS as a set: "rest", "ws", "rest,ws" or "both"."""
    feeds = {part.strip() for part in text.lower().replace("both", "rest,ws").split(",") if part.strip()}
    if not feeds or not feeds <= {"rest", "ws"}:
        raise ValueError(f"setting FINNHUB_FEEDS must be rest, ws or rest,ws, got {text!r}")
    return feeds


def simulated_quotes(
    symbols: Sequence[str], seed: int, rate: float | None, stop: threading.Event, expected: int | None = None
) -> Iterator[Quote]:
    """The simulated market at `rate` quotes/s in real time, or as fast as possible when `rate` is None.

    At full speed simulated time starts in the past (far enough for `expected`
    records, else one hour) so no event is more than an hour ahead of now.
    """
    now_ms = int(time.time() * 1000)
    if rate:
        if rate / len(symbols) > 1000:
            logger.warning(
                "%.0f quotes/s over %d symbols is above one per symbol per millisecond: event times stay unique, "
                "so the real rate will be lower; add symbols (--symbols-count) for more", rate, len(symbols),
            )  # fmt: skip
        return paced(SimulatedMarket(symbols, seed, rate, start_ms=now_ms), 1.0, stop)
    sim_rate = _MAX_SPEED_EVENTS_PER_SYMBOL * len(symbols)
    lead_ms = int(expected / sim_rate * 1000) + 1000 if expected else 3_600_000
    return paced(SimulatedMarket(symbols, seed, sim_rate, start_ms=now_ms - lead_ms), None, stop)


def replay_quotes(
    path: Path, speed: float | None, stop: threading.Event, stats: FeedStats, *, rebase: bool = False
) -> Iterator[Quote]:
    """A tape at `speed` x real time (None: as fast as possible); `rebase` shifts it to end now."""
    shift = 0
    if rebase:
        _, last = tape_span_ms(path)
        shift = int(time.time() * 1000) - last if last else 0
    if not speed or speed <= 0:
        return paced(read_tape_parallel(path, stats=stats, shift_ms=shift), None, stop)
    return paced(read_tape(path, stats=stats, shift_ms=shift), speed, stop)


def finnhub_quotes(
    settings: Settings, feeds: set[str], stats: FeedStats, stop: threading.Event, *, inbox_max: int = 10_000
) -> Iterator[Quote]:
    """Quotes from Finnhub's REST poller and/or trade stream; re-raises a feed's fatal error after stopping.

    At most `inbox_max` quotes wait for the caller; beyond that they are dropped and counted.
    """
    from stock_platform.ingestion.finnhub_ws import TradeStream
    from stock_platform.ingestion.rest_poller import RestPoller

    inbox: queue.Queue[Quote] = queue.Queue(maxsize=inbox_max)
    drops = DropRun(stats, "inbox_full", "Finnhub quotes")

    def emit(quote: Quote) -> None:
        try:
            inbox.put_nowait(quote)
        except queue.Full:
            drops.drop(f"the producer is behind (Kafka down?) with {inbox_max} quotes waiting (PRODUCER_INBOX_MAX)")
            return
        if drops.active:
            drops.end()

    failures: list[BaseException] = []
    day_volume = DayVolume()
    workers: list[RestPoller | TradeStream] = []
    if "ws" in feeds:
        workers.append(TradeStream(settings, emit, stats, stop, day_volume=day_volume))
    if "rest" in feeds:
        workers.append(RestPoller(settings, emit, stats, stop, day_volume=day_volume))

    def run(worker: RestPoller | TradeStream) -> None:
        try:
            worker.run()
        except Exception as e:  # noqa: BLE001 - any feed failure stops the producer, reported by the caller
            failures.append(e)
            stop.set()

    threads = [threading.Thread(target=run, args=(w,), name=f"feed-{type(w).__name__}", daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        while not (stop.is_set() and inbox.empty()):
            try:
                yield inbox.get(timeout=0.25)
            except queue.Empty:
                continue
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        drops.end()
    if failures:
        raise failures[0]
