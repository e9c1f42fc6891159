"""`stock-platform produce`: pick a source, publish it to Kafka, beat in Redis, stop cleanly.

Runs until SIGTERM/SIGINT, `max_records` or `duration`, then gives Kafka the
flush timeout (`PRODUCER_FLUSH_TIMEOUT_SECONDS`, 10 s) to acknowledge what is
buffered, so a stop is honoured even while the broker is down. Exit codes: 0
when Kafka acknowledged every record, 2 with one clear line when Finnhub
refuses the key (or a setting is wrong), 1 when Kafka cannot be reached or any
record was lost (failed, dropped or unsent), with one line saying how many and
which seqs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from stock_platform.config import Settings
from stock_platform.ingestion.finnhub_rest import FinnhubAuthError
from stock_platform.ingestion.limits import ProducerLimits
from stock_platform.ingestion.redact import install_log_redaction
from stock_platform.ingestion.stats import FeedStats

__all__ = ["ProduceOptions", "run_produce"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProduceOptions:
    """What to produce: `source` is simulator, finnhub or replay; None limits mean no limit."""

    source: str
    symbols: tuple[str, ...]
    rate: float | None = None  # simulator quotes/s; None = as fast as possible
    max_records: int | None = None
    duration: float | None = None
    tape: Path | None = None  # replay input
    speed: float | None = 1.0  # replay speed; None = as fast as possible
    rebase: bool = False  # replay: shift event times so the tape ends now
    record: Path | None = None  # record what is published to this tape
    limits: ProducerLimits = ProducerLimits()  # buffer bounds and the flush timeout at stop


def _install_signals(stop: threading.Event) -> dict[int, object]:
    """Make SIGTERM/SIGINT set `stop`; returns the previous handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handle(signum: int, _frame: object) -> None:
        logger.info("received %s: flushing and stopping", signal.Signals(signum).name)
        stop.set()

    return {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}


def _fail(message: str, code: int) -> int:
    logger.error("%s", message)
    print(f"stock-platform produce: {message}", file=sys.stderr)
    return code


def run_produce(
    settings: Settings, options: ProduceOptions, stop: threading.Event | None = None, stats: FeedStats | None = None
) -> int:
    """Produce until stopped; returns the process exit code (see the module docstring)."""
    install_log_redaction(settings.finnhub_api_key.get_secret_value())
    stop = stop or threading.Event()
    stats = stats or FeedStats()
    previous_handlers = _install_signals(stop)
    try:
        return _produce(settings, options, stop, stats)
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _produce(settings: Settings, options: ProduceOptions, stop: threading.Event, stats: FeedStats) -> int:
    from stock_platform.ingestion.heartbeat import Heartbeat
    from stock_platform.ingestion.producer import ProducerError, QuoteProducer
    from stock_platform.ingestion.sources import finnhub_quotes, parse_feeds, replay_quotes, simulated_quotes
    from stock_platform.ingestion.tape import TapeWriter

    if options.source == "finnhub":
        if not settings.finnhub_api_key.get_secret_value():
            return _fail("the finnhub source needs a key: set FINNHUB_API_KEY (or use --source simulator)", 2)
        try:
            feeds = parse_feeds(settings.finnhub_feeds)
        except ValueError as e:
            return _fail(str(e), 2)
        if options.symbols:
            settings = settings.replace(symbols=options.symbols)
        quotes = finnhub_quotes(settings, feeds, stats, stop, inbox_max=options.limits.inbox_max)
        label = f"finnhub:{','.join(sorted(feeds))}"
    elif options.source == "replay":
        if options.tape is None or not options.tape.is_file():
            return _fail(f"replay needs an existing tape file, got {options.tape}", 2)
        quotes = replay_quotes(options.tape, options.speed, stop, stats, rebase=options.rebase)
        label = f"replay:{options.tape.name}"
    else:
        quotes = simulated_quotes(options.symbols, settings.simulator_seed, options.rate, stop, options.max_records)
        label = "simulator"
    try:
        producer = QuoteProducer(settings, stats, limits=options.limits, stop=stop)
    except ProducerError as e:
        return _fail(str(e), 1)
    heartbeat = Heartbeat(settings, stats, label)
    heartbeat.start()
    timer = threading.Timer(options.duration, stop.set) if options.duration else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    logger.info("producing %s to %s as %s", label, settings.kafka_topic, settings.producer_id)
    code, state, sent = 0, "stopped", 0
    with ExitStack() as stack:
        tape = stack.enter_context(TapeWriter(options.record)) if options.record else None
        try:
            for quote in quotes:
                value = producer.send(quote)
                if tape is not None and value is not None:  # None: dropped or unsent, never published
                    tape.write(value)
                sent += 1
                if options.max_records and sent >= options.max_records:
                    break
        except FinnhubAuthError as e:
            code, state = _fail(str(e), 2), "auth_failed"
        except ProducerError as e:
            code, state = _fail(str(e), 1), "failed"
        finally:
            stop.set()
            closer = getattr(quotes, "close", None)
            if closer is not None:
                closer()  # a generator of feed threads joins them here
            if timer is not None:
                timer.cancel()
            producer.close()
    if stats.lost:
        logger.error("producer %s %s", producer.producer_id, stats.lost_summary())
        if code == 0:
            code, state = 1, "failed"
    heartbeat.stop(state)
    snapshot = stats.snapshot()
    logger.info(
        "stopped: sent %d, published %d, skipped %d, failed %d, dropped %d, unsent %d",
        sent, snapshot["published"], snapshot["skipped"], snapshot["failed"], snapshot["dropped"], snapshot["unsent"],
    )  # fmt: skip
    return code
