"""Unit tests of the Finnhub REST client's pure parts: reading `Retry-After` in both of its forms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stock_platform.ingestion.finnhub_rest import retry_after_seconds

NOW = datetime(2026, 11, 26, 5, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("2", 2.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-5", 0.0),
        ("Thu, 26 Nov 2026 05:00:10 GMT", 10.0),  # the HTTP-date form (RFC 9110)
        ("Thu, 26 Nov 2026 04:59:00 GMT", 0.0),  # already past: no wait
        ("", None),
        ("soon", None),
        ("Thu, 99 Nov 2026 05:00:10 GMT", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(raw: str, seconds: float | None) -> None:
    assert retry_after_seconds(raw, now=NOW) == seconds
