"""Finnhub's REST quote endpoint: one call, and what each of its answers means for the producer.

`GET /quote?symbol=S` answers `{"c","d","dp","h","l","o","pc","t"}`; an unknown
or unavailable symbol answers 200 with every number 0. 401 means a bad key,
403 a plan without access, 429 the rate limit (or no key). The key is sent
in the `X-Finnhub-Token` header, never in the URL, so no URL we log holds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from stock_platform.ingestion.finnhub_values import MalformedAnswer, epoch, finite_number
from stock_platform.ingestion.redact import redact

__all__ = [
    "FinnhubAuthError",
    "FinnhubQuote",
    "FinnhubRateLimited",
    "FinnhubRestClient",
    "FinnhubTransientError",
    "MalformedAnswer",
    "retry_after_seconds",
]

logger = logging.getLogger(__name__)


class FinnhubAuthError(RuntimeError):
    """401/403: the key is wrong or lacks access; retrying cannot help. The message is the one to show."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class FinnhubRateLimited(RuntimeError):
    """429: over the call limit; `retry_after` is the server's hint in seconds, if it gave one."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FinnhubTransientError(RuntimeError):
    """5xx, a timeout or a broken connection: worth retrying after a backoff."""


@dataclass(frozen=True)
class FinnhubQuote:
    """One `/quote` answer, fields as Finnhub names them (c = current price, t = unix seconds)."""

    c: float
    h: float
    l: float  # noqa: E741 - Finnhub's field name
    o: float
    pc: float
    t: int

    @property
    def all_zero(self) -> bool:
        """True for the "no data" answer (unknown symbol, or a real one now and then)."""
        return not self.c or not self.t


def retry_after_seconds(raw: str, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110); None if unreadable."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _retry_after(response: requests.Response) -> float | None:
    return retry_after_seconds(response.headers.get("Retry-After", ""))


def _decode(payload: Any) -> FinnhubQuote:
    """The quote in a 200's JSON; a missing or null field reads as 0, as in Finnhub's "no data" answer."""
    if not isinstance(payload, dict):
        raise MalformedAnswer(f"expected a JSON object, got {type(payload).__name__}", "not a JSON object")
    prices = {name: finite_number(_or_zero(payload, name), name) for name in ("c", "h", "l", "o", "pc")}
    t = epoch(_or_zero(payload, "t"), "t", per_second=1)
    return FinnhubQuote(c=prices["c"], h=prices["h"], l=prices["l"], o=prices["o"], pc=prices["pc"], t=t)


def _or_zero(payload: dict[str, Any], name: str) -> Any:
    value = payload.get(name)
    return 0 if value is None else value


class FinnhubRestClient:
    """A pooled HTTP session to Finnhub's REST API that classifies every answer."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["X-Finnhub-Token"] = api_key

    def quote(self, symbol: str) -> FinnhubQuote:
        """Fetch one quote; raises one of this module's errors for anything but a usable 200."""
        try:
            response = self._session.get(f"{self.base_url}/quote", params={"symbol": symbol}, timeout=self.timeout)
        except requests.RequestException as e:
            raise FinnhubTransientError(redact(f"{type(e).__name__}: {e}", self._key)) from None
        status = response.status_code
        body = redact(response.text[:200].strip(), self._key)
        if status in (401, 403):
            raise FinnhubAuthError(f"Finnhub answered {status} {body}", status)
        if status == 429:
            raise FinnhubRateLimited(f"Finnhub answered 429 {body}", _retry_after(response))
        if status >= 500 or status == 408:
            raise FinnhubTransientError(f"Finnhub answered {status} {body}")
        if status != 200:
            raise MalformedAnswer(f"unexpected status {status} {body}", f"unexpected status {status}")
        try:
            payload = response.json()
        except ValueError as e:
            raise MalformedAnswer(f"body is not JSON: {body[:80]!r}", "body is not JSON") from e
        return _decode(payload)

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()
