"""`stock-platform produce` and `stock-platform fake-finnhub`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stock_platform.config import Settings

__all__ = ["register"]


def _rate(text: str) -> float | None:
    """A positive number, or `max` for as fast as possible (None)."""
    if text.lower() == "max":
        return None
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive, or max")
    return value


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    from stock_platform.ingestion.limits import ProducerLimits
    from stock_platform.ingestion.run import ProduceOptions, run_produce
    from stock_platform.ingestion.simulator import synthetic_symbols

    limits = ProducerLimits.of(settings)
    source_args = args.source or [settings.source]
    source = source_args[0].lower()
    if source == "auto":
        source = "simulator" if settings.use_simulator else "finnhub"
    tape = Path(source_args[1]) if len(source_args) > 1 else (Path(args.tape) if args.tape else None)
    if source not in {"simulator", "finnhub", "replay"} or len(source_args) > 2 or (len(source_args) == 2 and source != "replay"):
        print("stock-platform produce: --source takes simulator, finnhub, or replay FILE", file=sys.stderr)
        return 2
    symbols = (
        synthetic_symbols(args.symbols_count)
        if args.symbols_count
        else tuple(s.upper() for s in args.symbols or settings.symbols)
    )
    if args.symbols or args.symbols_count:
        settings = settings.replace(symbols=symbols)
    rate = settings.simulator_quotes_per_second if args.rate is False else args.rate
    options = ProduceOptions(
        source=source, symbols=symbols, rate=rate, max_records=args.max_records, duration=args.duration,
        tape=tape, speed=args.speed, rebase=args.rebase_time, record=Path(args.record) if args.record else None,
        limits=limits,
    )  # fmt: skip
    return run_produce(settings, options)


def _fake_finnhub(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from stock_platform.ingestion.fake_finnhub import FakeFinnhub

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    limits: dict[str, Any] = {} if args.limits else {"calls_per_second": None, "calls_per_minute": None}
    with FakeFinnhub(args.api_key, port=args.port, ws_port=args.ws_port, **limits) as fake:
        print(f"FINNHUB_REST_URL={fake.rest_url}")
        print(f"FINNHUB_WS_URL={fake.ws_url}")
        print("FINNHUB_API_KEY=<the --api-key you gave>", flush=True)
        stop.wait()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `produce` and `fake-finnhub` commands."""
    p = subparsers.add_parser("produce", help="publish quotes (simulated, Finnhub or a replayed tape) to Kafka")
    p.add_argument("--source", nargs="+", metavar="SOURCE", help="simulator | finnhub | replay FILE (default STOCK_SOURCE)")
    p.add_argument("--tape", help="the tape to replay (same as --source replay FILE)")
    p.add_argument("--symbols", nargs="+", help="symbols (default STOCK_SYMBOLS)")
    p.add_argument("--symbols-count", type=int, help="simulate N synthetic symbols SYM001.. (load tests)")
    p.add_argument("--rate", type=_rate, default=False, help="simulator quotes/s, or max (default SIMULATOR_QUOTES_PER_SECOND)")
    p.add_argument("--max-records", type=int, help="stop after this many records")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--speed", type=_rate, default=1.0, help="replay speed: 1 = real time, N = N x, max = as fast as possible")
    p.add_argument("--rebase-time", action="store_true", help="replay: shift event times so the tape ends now")
    p.add_argument("--record", metavar="TAPE", help="also record every published record to this .jsonl.gz tape")
    p.set_defaults(handler=_produce)
    f = subparsers.add_parser("fake-finnhub", help="run a local fake Finnhub (REST + WebSocket) for demos")
    f.add_argument("--port", type=int, default=8765, help="REST port (default 8765)")
    f.add_argument("--ws-port", type=int, default=8766, help="WebSocket port (default 8766)")
    f.add_argument("--api-key", default="demo-key", help="the key the fake accepts (default demo-key)")
    f.add_argument("--limits", action="store_true", help="enforce the free plan's 30/s and 60/min limits")
    f.set_defaults(handler=_fake_finnhub)
