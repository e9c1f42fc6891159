"""Poll Finnhub's `/quote` for every symbol on a fixed schedule, politely and without duplicates.

Calls are spread evenly over the poll interval and pass through the shared
`CallLimiter`, so both per-second and per-minute limits hold. A 429 pauses
every caller (for Retry-After when given) and the same symbol is tried again,
while the grid of due times stays anchored, so later symbols keep their slots.
5xx, timeouts and connection errors are retried with exponential backoff and
jitter. All-zero answers and answers whose `t` did not change are counted and
skipped; so are malformed ones (not JSON, a string or a non-finite number for
a price, a `t` that is not a time), logged once per kind so a Finnhub that
keeps answering badly does not flood the log. 401/403 end the poller with
`FinnhubAuthError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from stock_platform.config import Settings
from stock_platform.ingestion.auth import auth_failure_message
from stock_platform.ingestion.day_volume import DayVolume
from stock_platform.ingestion.finnhub_rest import (
    FinnhubAuthError,
    FinnhubQuote,
    FinnhubRateLimited,
    FinnhubRestClient,
    FinnhubTransientError,
    MalformedAnswer,
)
from stock_platform.ingestion.ratelimit import Backoff, CallLimiter
from stock_platform.ingestion.stats import FeedStats
from stock_platform.quotes import Quote, QuoteError, quote_from_fields

__all__ = ["RestPoller"]

logger = logging.getLogger(__name__)


class RestPoller:
    """Polls `settings.symbols` every `settings.poll_interval_seconds` and hands new quotes to `emit`."""

    def __init__(
        self,
        settings: Settings,
        emit: Callable[[Quote], None],
        stats: FeedStats,
        stop: threading.Event,
        *,
        limiter: CallLimiter | None = None,
        day_volume: DayVolume | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rate_limit_backoff: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        self.symbols = settings.symbols
        self.interval = settings.poll_interval_seconds
        self.emit = emit
        self.stats = stats
        self.stop = stop
        self.limiter = limiter or CallLimiter(settings.finnhub_calls_per_second, settings.finnhub_calls_per_minute)
        self.day_volume = day_volume or DayVolume()
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rate_limit_backoff = rate_limit_backoff
        self.client = FinnhubRestClient(settings.finnhub_rest_url, settings.finnhub_api_key.get_secret_value(), timeout=timeout)
        self._last_t: dict[str, int] = {}
        self.polls = 0
        needed = len(self.symbols) * 60.0 / self.interval
        if needed > settings.finnhub_calls_per_minute:
            logger.warning(
                "%d symbols every %.0f s need %.0f calls a minute, above FINNHUB_CALLS_PER_MINUTE=%d: polls will lag",
                len(self.symbols), self.interval, needed, settings.finnhub_calls_per_minute,
            )  # fmt: skip

    def run(self) -> None:
        """Poll until `stop` is set; raises `FinnhubAuthError` with the message to show on 401/403."""
        spacing = self.interval / len(self.symbols)
        due = time.monotonic()
        index = 0
        try:
            while not self.stop.is_set():
                if self.stop.wait(max(0.0, due - time.monotonic())):
                    break
                self._poll(self.symbols[index % len(self.symbols)])
                index += 1
                due += spacing
                if time.monotonic() - due > self.interval:
                    # A long outage: re-anchor the grid rather than firing a burst of stale polls.
                    self.stats.event("schedule_slipped")
                    due = time.monotonic()
        finally:
            self.client.close()

    def _poll(self, symbol: str) -> None:
        errors = Backoff(self.backoff_base, self.backoff_cap)
        limited = Backoff(self.rate_limit_backoff, 60.0)
        attempts = 0
        while not self.stop.is_set():
            if not self.limiter.acquire(self.stop):
                return
            self.polls += 1
            try:
                answer = self.client.quote(symbol)
            except FinnhubAuthError as e:
                raise FinnhubAuthError(auth_failure_message(e.status, str(e)), e.status) from None
            except FinnhubRateLimited as e:
                delay = e.retry_after if e.retry_after is not None else limited.next_delay()
                self.stats.event("rate_limited")
                logger.warning("rate limited polling %s (%s); pausing all calls for %.1f s", symbol, e, delay)
                self.limiter.pause(delay)
                continue
            except FinnhubTransientError as e:
                attempts += 1
                self.stats.event("retry")
                if attempts >= self.max_attempts:
                    self.stats.event("gave_up")
                    logger.error("giving up on %s for this cycle after %d attempts: %s", symbol, attempts, e)
                    return
                delay = errors.next_delay()
                logger.warning("polling %s failed (%s); retry %d in %.2f s", symbol, e, attempts, delay)
                if self.stop.wait(delay):
                    return
                continue
            except MalformedAnswer as e:
                self.stats.skip("malformed")
                if self.stats.first_time(f"rest:{e.kind}"):
                    logger.warning("skipped a malformed answer for %s: %s (more like it are only counted)", symbol, e)
                else:
                    logger.debug("skipped a malformed answer for %s: %s", symbol, e)
                return
            self._handle(symbol, answer)
            return

    def _handle(self, symbol: str, answer: FinnhubQuote) -> None:
        if answer.all_zero:
            self.stats.skip("all_zero")
            logger.info("skipped an all-zero quote for %s (unknown or unavailable symbol)", symbol)
            return
        if self._last_t.get(symbol) == answer.t:
            self.stats.skip("unchanged")
            return
        event_time_ms = answer.t * 1000
        try:
            quote = quote_from_fields({
                "v": 1, "symbol": symbol, "price": answer.c, "event_time_ms": event_time_ms,
                "source": "finnhub-rest", "producer_id": "finnhub-rest", "seq": 0,
                "volume": self.day_volume.get(symbol, event_time_ms),
                "day_high": answer.h or None, "day_low": answer.l or None,
                "open_price": answer.o or None, "prev_close": answer.pc or None,
            })  # fmt: skip
        except QuoteError as e:
            self.stats.skip("invalid")
            logger.warning("skipped a quote for %s that breaks the contract: %s", symbol, e)
            return
        self._last_t[symbol] = answer.t
        self.emit(quote)
