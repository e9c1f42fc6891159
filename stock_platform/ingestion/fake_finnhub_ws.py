"""The fake Finnhub trade stream: token check, subscribe/unsubscribe, batched trades, pings, scripted faults."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from urllib.parse import parse_qs, urlparse

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from stock_platform.ingestion.redact import RedactingFilter

__all__ = ["FakeTradeStream"]

logger = logging.getLogger(__name__)


class FakeTradeStream:
    """A WebSocket server speaking Finnhub's trade protocol; `script_*` methods inject faults."""

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
        trade_interval: float = 0.2,
        json_ping_interval: float = 5.0,
        protocol_ping_interval: float | None = 20.0,
    ) -> None:
        self.api_key = api_key
        self.host, self.port = host, port
        self.trade_interval = trade_interval
        self.json_ping_interval = json_ping_interval
        self.protocol_ping_interval = protocol_ping_interval
        self.connections = 0
        self.refused = 0
        self.subscriptions: list[list[str]] = []  # per connection, every subscribe received, in order
        self.unsubscribed: list[str] = []  # every unsubscribe received, over all connections
        self.unknown_symbols: frozenset[str] = frozenset()
        self._rng = random.Random(seed)  # noqa: S311 - fake market data
        self._prices: dict[str, float] = {}
        self._actions: deque[tuple[str, str]] = deque()
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()

    @property
    def url(self) -> str:
        """The URL to use as FINNHUB_WS_URL."""
        assert self._server is not None, "start the fake first"  # noqa: S101 - programming error
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def script_drop(self) -> None:
        """Drop the current connection abruptly (no close frame) at the next tick."""
        self._actions.append(("drop", ""))

    def script_error(self, msg: str) -> None:
        """Send `{"type":"error","msg":msg}` at the next tick."""
        self._actions.append(("send", json.dumps({"type": "error", "msg": msg})))

    def script_raw(self, text: str) -> None:
        """Send `text` as is (e.g. malformed JSON) at the next tick."""
        self._actions.append(("send", text))

    def script_trades(self, trades: list[dict[str, object]]) -> None:
        """Send one trade batch with exactly these trades at the next tick."""
        self._actions.append(("send", json.dumps({"type": "trade", "data": trades})))

    def start(self) -> None:
        """Listen and serve from a background thread."""
        self._running.set()
        # websockets logs request lines (with ?token=) at DEBUG: its logger gets the key masked.
        server_logger = logging.getLogger(f"{__name__}.server")
        if not any(isinstance(f, RedactingFilter) for f in server_logger.filters):
            server_logger.addFilter(RedactingFilter(self.api_key))
        self._server = serve(
            self._handle, self.host, self.port, process_request=self._check_token, logger=server_logger,
            ping_interval=self.protocol_ping_interval, ping_timeout=self.protocol_ping_interval,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-finnhub-ws", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close every connection and stop listening."""
        self._running.clear()
        if self._server is not None:
            self._server.shutdown()

    def _check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        token = (parse_qs(urlparse(request.path).query).get("token") or [""])[0]
        if token != self.api_key:
            with self._lock:
                self.refused += 1
            return connection.respond(401, "Invalid API key\n")
        return None

    def _batch(self, symbols: list[str]) -> str:
        now_ms = int(time.time() * 1000)
        data = []
        for symbol in symbols:
            price = self._prices.get(symbol) or round(self._rng.uniform(50, 500), 2)
            for _ in range(self._rng.randint(1, 3)):
                price = round(price * (1 + self._rng.gauss(0, 0.0005)), 2)
                data.append({"p": price, "s": symbol, "t": now_ms, "v": self._rng.randint(1, 500), "c": ["1"]})
            self._prices[symbol] = price
        return json.dumps({"type": "trade", "data": data})

    def _handle(self, conn: ServerConnection) -> None:
        subscribed: list[str] = []
        received: list[str] = []
        with self._lock:
            self.connections += 1
            self.subscriptions.append(received)
        next_trade = next_ping = time.monotonic()
        try:
            while self._running.is_set():
                try:
                    message = json.loads(conn.recv(timeout=min(self.trade_interval, 0.1)))
                    symbol = str(message.get("symbol", ""))
                    if message.get("type") == "subscribe":
                        received.append(symbol)
                        if symbol not in subscribed and symbol not in self.unknown_symbols:
                            subscribed.append(symbol)
                    elif message.get("type") == "unsubscribe":
                        self.unsubscribed.append(symbol)
                        if symbol in subscribed:
                            subscribed.remove(symbol)
                except TimeoutError:
                    pass
                except (ValueError, AttributeError):
                    conn.send(json.dumps({"type": "error", "msg": "Invalid message"}))
                if self._actions:
                    action, payload = self._actions.popleft()
                    if action == "drop":
                        conn.socket.close()
                        return
                    conn.send(payload)
                now = time.monotonic()
                if subscribed and now >= next_trade:
                    conn.send(self._batch(list(subscribed)))
                    next_trade = now + self.trade_interval
                if now >= next_ping:
                    conn.send(json.dumps({"type": "ping"}))
                    next_ping = now + self.json_ping_interval
        except (ConnectionClosed, OSError):
            return
