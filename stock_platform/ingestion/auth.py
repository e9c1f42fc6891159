"""The one clear message the producer stops with when Finnhub refuses the key."""

from __future__ import annotations

__all__ = ["auth_failure_message"]


def auth_failure_message(status: int | None, detail: str) -> str:
    """A single line naming the setting to fix, for a 401/403 from REST or the WebSocket handshake."""
    if status == 403:
        return (
            f"Finnhub refused access ({detail}): the plan of the key in FINNHUB_API_KEY does not include this "
            "endpoint; use a key with access, or set FINNHUB_FEEDS / STOCK_SOURCE=simulator"
        )
    return f"Finnhub rejected the API key ({detail}): set FINNHUB_API_KEY to a valid key (https://finnhub.io/dashboard)"
