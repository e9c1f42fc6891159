"""A fake Finnhub for tests and demos: the REST `/quote` endpoint and the WebSocket trade stream, scriptable.

By default it behaves like Finnhub on a free key: quotes move by a random walk
with `t` in unix seconds, unknown symbols get the all-zero answer, a missing
token or more than the per-second/per-minute calls gets 429 with a text body,
a wrong key 401 `{"error":"Invalid API key."}`, `/stock/candle` 403. Tests push
`Scripted` answers (401, 429 with Retry-After, 5xx, slow, all-zero, malformed
JSON, dropped connection, a normal quote with some fields replaced) that are
served before the default behaviour, and read `requests` to see exactly what the
producer did. Replaced fields are written as Python's json writes them, so
`math.inf` goes out as `Infinity` and `math.nan` as `NaN`, as a broken server's
JSON might. The key is never logged.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from stock_platform.ingestion.fake_finnhub_ws import FakeTradeStream
from stock_platform.ingestion.redact import redact

__all__ = ["FakeFinnhub", "RequestRecord", "Scripted"]

logger = logging.getLogger(__name__)

LIMIT_BODY = "API limit reached. Please try again later. Remaining Limit: 0"


@dataclass(frozen=True)
class Scripted:
    """One scripted REST answer: a status with a raw body/headers, or one of the special behaviours."""

    status: int = 200
    body: str | None = None  # None: a normal quote (or all-zero with `zero`)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow server)
    drop: bool = False  # close the connection without answering
    zero: bool = False  # the all-zero "no data" quote
    t: int | None = None  # a fixed `t` (to repeat a timestamp)
    fields: dict[str, object] = field(default_factory=dict)  # replace these fields of the normal quote


@dataclass(frozen=True)
class RequestRecord:
    """What the fake saw and answered: monotonic time, path, symbol, status (0 = dropped)."""

    at: float
    path: str
    symbol: str
    status: int


class FakeFinnhub:
    """Run with `with FakeFinnhub(...) as fake:`; point the producer at `fake.rest_url` and `fake.ws_url`."""

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ws_port: int = 0,
        calls_per_second: int | None = 30,
        calls_per_minute: int | None = 60,
        unknown_symbols: frozenset[str] = frozenset({"UNKNOWN", "ZZZZ"}),
        seed: int = 7,
        trade_interval: float = 0.2,
        json_ping_interval: float = 5.0,
        protocol_ping_interval: float | None = 20.0,
    ) -> None:
        self.api_key = api_key
        self.calls_per_second = calls_per_second
        self.calls_per_minute = calls_per_minute
        self.unknown_symbols = unknown_symbols
        self.requests: list[RequestRecord] = []
        self._rng = random.Random(seed)  # noqa: S311 - fake market data
        self._prices: dict[str, float] = {}
        self._scripts: dict[str | None, deque[Scripted]] = {}
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer((host, port), self._handler_class())
        self._http.daemon_threads = True
        self.ws = FakeTradeStream(
            api_key, host=host, port=ws_port, seed=seed, trade_interval=trade_interval,
            json_ping_interval=json_ping_interval, protocol_ping_interval=protocol_ping_interval,
        )  # fmt: skip
        self.ws.unknown_symbols = unknown_symbols
        self._thread: threading.Thread | None = None

    @property
    def rest_url(self) -> str:
        """The base URL to use as FINNHUB_REST_URL."""
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/api/v1"

    @property
    def ws_url(self) -> str:
        """The URL to use as FINNHUB_WS_URL."""
        return self.ws.url

    def script(self, *answers: Scripted, symbol: str | None = None) -> None:
        """Queue answers served, in order, before the default behaviour (for one symbol, or any)."""
        with self._lock:
            self._scripts.setdefault(symbol, deque()).extend(answers)

    def statuses(self, symbol: str | None = None) -> list[int]:
        """The status of every `/quote` request so far (optionally of one symbol), in order."""
        with self._lock:
            return [r.status for r in self.requests if r.path.endswith("/quote") and symbol in (None, r.symbol)]

    def start(self) -> FakeFinnhub:
        """Serve REST and WebSocket from background threads."""
        self._thread = threading.Thread(target=self._http.serve_forever, name="fake-finnhub-rest", daemon=True)
        self._thread.start()
        self.ws.start()
        return self

    def stop(self) -> None:
        """Stop both servers."""
        self._http.shutdown()
        self._http.server_close()
        self.ws.stop()

    def __enter__(self) -> FakeFinnhub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_script(self, symbol: str) -> Scripted | None:
        for key in (symbol, None):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft()
        return None

    def _over_limit(self, now: float) -> bool:
        while self._accepted and now - self._accepted[0] >= 60:
            self._accepted.popleft()
        last_second = sum(1 for t in self._accepted if now - t < 1)
        if self.calls_per_second is not None and last_second >= self.calls_per_second:
            return True
        return self.calls_per_minute is not None and len(self._accepted) >= self.calls_per_minute

    def _quote(self, symbol: str, scripted: Scripted | None) -> dict[str, object]:
        if symbol in self.unknown_symbols or (scripted is not None and scripted.zero):
            return {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
        price = self._prices.get(symbol) or round(self._rng.uniform(50, 500), 2)
        new = round(price * (1 + self._rng.gauss(0, 0.002)), 2)
        self._prices[symbol] = new
        pc = round(price * 0.99, 2)
        t = scripted.t if scripted is not None and scripted.t is not None else int(time.time())
        quote = {"c": new, "d": round(new - pc, 2), "dp": round((new - pc) / pc * 100, 4),
                 "h": max(new, price) + 1, "l": min(new, price) - 1, "o": price, "pc": pc, "t": t}  # fmt: skip
        return quote | (scripted.fields if scripted is not None else {})

    def answer(self, path: str, symbol: str, token: str | None) -> tuple[Scripted | None, int, str, dict[str, str]]:
        """Decide the answer to one request: (script used, status, body, headers). Thread-safe."""
        with self._lock:
            now = time.monotonic()
            if not token:
                return None, 429, LIMIT_BODY, {}
            if token != self.api_key:
                return None, 401, json.dumps({"error": "Invalid API key."}), {}
            if path.endswith("/stock/candle"):
                return None, 403, json.dumps({"error": "You don't have access to this resource."}), {}
            if not path.endswith("/quote"):
                return None, 404, json.dumps({"error": "Not found"}), {}
            if self._over_limit(now):
                return None, 429, LIMIT_BODY, {}
            self._accepted.append(now)
            scripted = self._next_script(symbol)
            if scripted is not None and (scripted.status != 200 or scripted.body is not None):
                return scripted, scripted.status, scripted.body or "", scripted.headers
            return scripted, 200, json.dumps(self._quote(symbol, scripted)), {}

    def _record(self, path: str, symbol: str, status: int) -> None:
        with self._lock:
            self.requests.append(RequestRecord(time.monotonic(), path, symbol, status))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
                logger.debug("fake finnhub: %s", redact(format % args, fake.api_key))

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                symbol = (query.get("symbol") or [""])[0]
                token = (query.get("token") or [""])[0] or self.headers.get("X-Finnhub-Token")
                scripted, status, body, headers = fake.answer(url.path, symbol, token)
                if scripted is not None and scripted.delay:
                    time.sleep(scripted.delay)
                if scripted is not None and scripted.drop:
                    fake._record(url.path, symbol, 0)
                    self.close_connection = True
                    self.connection.close()
                    return
                fake._record(url.path, symbol, status)
                payload = body.encode()
                try:
                    self._respond(status, body, payload, headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a scripted slow answer)

            def _respond(self, status: int, body: str, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                is_json = body.startswith(("{", "[")) and status != 429
                self.send_header("Content-Type", "application/json" if is_json else "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler
