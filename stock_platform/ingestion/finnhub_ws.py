"""Finnhub's WebSocket trade stream: subscribe, keep the connection alive, reconnect, turn trades into quotes.

Trades arrive batched as `{"type":"trade","data":[{"p","s","t","v","c"}]}`.
Protocol-level pings are answered by the websockets library; Finnhub's JSON
`{"type":"ping"}` counts as a sign of life. A connection silent for
`idle_timeout` seconds, dropped, or refused is reopened after an exponential
backoff with jitter, and every symbol is subscribed again. A 401/403 at the
handshake ends the stream with `FinnhubAuthError`. Trades of one symbol within
one millisecond are merged (volumes summed, last price kept) and event times
are nudged to stay strictly increasing per symbol, because the table keeps one
row per (symbol, millisecond). A message that is not JSON, and a trade whose
`p`, `v` or `t` is not a finite number in range (`Infinity`, `NaN`, a string,
a 20-digit or negative `t`), is skipped as malformed and logged once per kind;
the stream goes on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from stock_platform.config import Settings
from stock_platform.ingestion.auth import auth_failure_message
from stock_platform.ingestion.day_volume import DayVolume
from stock_platform.ingestion.finnhub_rest import FinnhubAuthError
from stock_platform.ingestion.finnhub_values import MalformedAnswer, epoch, finite_number
from stock_platform.ingestion.ratelimit import Backoff
from stock_platform.ingestion.redact import redact
from stock_platform.ingestion.stats import FeedStats
from stock_platform.quotes import Quote, QuoteError, quote_from_fields

__all__ = ["TradeStream"]

logger = logging.getLogger(__name__)

# Finnhub's trade volume is a share count (fractional for some markets); more than a BIGINT is no trade.
_MAX_VOLUME = float(2**63 - 1)


def _trade(trade: Any) -> tuple[str, int, float, float]:
    """(symbol, t in ms, price, volume) of one trade; `MalformedAnswer` if any of them is not usable."""
    if not isinstance(trade, dict):
        raise MalformedAnswer(f"a trade is not a JSON object: {trade!r:.40}", "a trade is not a JSON object")
    symbol = trade.get("s")
    if not isinstance(symbol, str):
        raise MalformedAnswer(f"field 's' is not a string: {symbol!r:.40}", "field 's' is not a string")
    if "p" not in trade or "t" not in trade:
        raise MalformedAnswer("a trade without 'p' or 't'", "a trade without 'p' or 't'")
    t = epoch(trade["t"], "t", per_second=1000)
    price = finite_number(trade["p"], "p")
    volume = trade.get("v")
    volume = 0.0 if volume is None else finite_number(volume, "v", low=0, high=_MAX_VOLUME)
    return symbol, t, price, volume


class TradeStream:
    """Streams trades of `settings.symbols` from Finnhub's WebSocket and hands them to `emit` as quotes."""

    def __init__(
        self,
        settings: Settings,
        emit: Callable[[Quote], None],
        stats: FeedStats,
        stop: threading.Event,
        *,
        day_volume: DayVolume | None = None,
        idle_timeout: float = 60.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self.symbols = settings.symbols
        self._key = settings.finnhub_api_key.get_secret_value()
        separator = "&" if "?" in settings.finnhub_ws_url else "?"
        self._url = f"{settings.finnhub_ws_url}{separator}token={self._key}"
        self.emit = emit
        self.stats = stats
        self.stop = stop
        self.day_volume = day_volume or DayVolume()
        self.idle_timeout = idle_timeout
        self.backoff = Backoff(backoff_base, backoff_cap)
        self.connections = 0
        self._last_ms: dict[str, int] = {}

    def run(self) -> None:
        """Stream until `stop` is set; raises `FinnhubAuthError` with the message to show on 401/403."""
        while not self.stop.is_set():
            try:
                with connect(self._url, open_timeout=10, close_timeout=2, ping_interval=20, ping_timeout=20) as ws:
                    self.connections += 1
                    self.stats.event("ws_connect")
                    logger.info("connected to the Finnhub trade stream; subscribing %d symbols", len(self.symbols))
                    for symbol in self.symbols:
                        ws.send(json.dumps({"type": "subscribe", "symbol": symbol}))
                    self._receive(ws)
            except InvalidStatus as e:
                status = e.response.status_code
                if status in (401, 403):
                    detail = redact(f"{status} {e.response.body[:120].decode(errors='replace').strip()}", self._key)
                    raise FinnhubAuthError(auth_failure_message(status, detail), status) from None
                logger.warning("the trade stream refused the connection with HTTP %s", status)
            except (ConnectionClosed, InvalidHandshake, InvalidURI, OSError, TimeoutError) as e:
                logger.warning("trade stream connection lost: %s", redact(f"{type(e).__name__}: {e}", self._key))
            if self.stop.is_set():
                break
            self.stats.event("ws_reconnect")
            delay = self.backoff.next_delay()
            logger.info("reconnecting to the trade stream in %.2f s", delay)
            self.stop.wait(delay)

    def _receive(self, ws: ClientConnection) -> None:
        last_message = time.monotonic()
        while not self.stop.is_set():
            try:
                raw = ws.recv(timeout=0.5)
            except TimeoutError:
                if time.monotonic() - last_message > self.idle_timeout:
                    self.stats.event("ws_idle")
                    logger.warning("no message from the trade stream for %.0f s; reconnecting", self.idle_timeout)
                    return
                continue
            last_message = time.monotonic()
            self._handle(raw)
        for symbol in self.symbols:
            try:
                ws.send(json.dumps({"type": "unsubscribe", "symbol": symbol}))
            except ConnectionClosed:
                break

    def _malformed(self, kind: str, detail: str) -> None:
        """Count a malformed message or trade; log the first of its kind (the rest only at DEBUG)."""
        self.stats.skip("malformed")
        level = logging.WARNING if self.stats.first_time(f"ws:{kind}") else logging.DEBUG
        logger.log(level, "skipped a malformed trade-stream message: %s (more like it are only counted)", detail)

    def _handle(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            kind = message.get("type")
        except (ValueError, AttributeError, RecursionError):
            self._malformed("not a JSON object", repr(redact(raw, self._key)[:120]))
            return
        if kind == "ping":
            self.stats.event("ws_ping")
        elif kind == "error":
            self.stats.event("ws_error")
            logger.warning("the trade stream reported an error: %s", redact(message.get("msg"), self._key))
        elif kind == "trade":
            self.backoff.reset()
            self._trades(message.get("data"))
        else:
            self.stats.event("ws_other")

    def _trades(self, data: Any) -> None:
        if not isinstance(data, list):
            self._malformed("'data' is not a list", f"'data' is not a list: {redact(repr(data), self._key)[:80]}")
            return
        merged: dict[tuple[str, int], tuple[float, float]] = {}
        for trade in data:
            try:
                symbol, t, price, volume = _trade(trade)
            except MalformedAnswer as e:
                self._malformed(e.kind, redact(str(e), self._key))
                continue
            key = (symbol, t)
            previous = merged.pop(key, (price, 0.0))
            merged[key] = (price, previous[1] + volume)  # re-inserted last: order follows the latest trade
        for (symbol, t), (price, volume) in merged.items():
            t = max(t, self._last_ms.get(symbol, 0) + 1)
            shares = max(0, round(volume))
            try:
                quote = quote_from_fields({
                    "v": 1, "symbol": symbol, "price": price, "event_time_ms": t, "source": "finnhub-ws",
                    "producer_id": "finnhub-ws", "seq": 0, "volume": shares,
                })  # fmt: skip
            except QuoteError as e:
                self.stats.skip("invalid")
                logger.warning("skipped a trade that breaks the contract: %s", e)
                continue
            self._last_ms[symbol] = t
            self.emit(quote)  # before counting it, so no REST quote queued ahead of it includes its volume
            self.day_volume.add(symbol, t, shares)
