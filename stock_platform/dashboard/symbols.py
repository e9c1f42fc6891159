"""Checking symbols typed by a user before they reach a query, and the chart ranges they can pick.

The rule is the message contract's (`stock_platform.quotes`): 1-10 of A-Z 0-9
. - : ^, starting with a letter or digit. Lower case is accepted and upper-cased
because that is what people type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["RANGES", "ChartRange", "SymbolError", "normalise_symbol", "parse_symbol_list"]

_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-:^]{0,9}$")


class SymbolError(ValueError):
    """Text that cannot be a ticker symbol; the message is fit to show to the user."""


def normalise_symbol(text: str) -> str:
    """The upper-cased symbol, or `SymbolError` saying why `text` is not one."""
    symbol = (text or "").strip().upper()
    if not symbol:
        raise SymbolError("Enter a ticker symbol, for example AAPL.")
    if not _SYMBOL_RE.match(symbol):
        shown = symbol if len(symbol) <= 20 else symbol[:20] + "…"
        raise SymbolError(
            f"“{shown}” is not a ticker symbol: use 1-10 letters, digits or . - : ^ starting with a letter or digit (for example AAPL or BRK.B)."
        )
    return symbol


def parse_symbol_list(text: str) -> tuple[list[str], list[str]]:
    """Split comma-separated text into (valid symbols without duplicates, error messages for the rest)."""
    symbols: list[str] = []
    errors: list[str] = []
    for part in re.split(r"[,;\n]+", text or ""):
        if not part.strip():
            continue
        try:
            symbol = normalise_symbol(part)
        except SymbolError as e:
            errors.append(str(e))
            continue
        if symbol not in symbols:
            symbols.append(symbol)
    return symbols, errors


@dataclass(frozen=True)
class ChartRange:
    """A chart range: how far back from the newest candle, and the bucket its candles are merged into."""

    key: str
    span: timedelta
    bucket: timedelta
    use_daily_bars: bool = False


# 1-minute candles up to a day; coarser buckets beyond so a chart never draws more than ~1,500 candles.
RANGES: dict[str, ChartRange] = {
    "1H": ChartRange("1H", timedelta(hours=1), timedelta(minutes=1)),
    "1D": ChartRange("1D", timedelta(days=1), timedelta(minutes=1)),
    "5D": ChartRange("5D", timedelta(days=5), timedelta(minutes=15)),
    "1M": ChartRange("1M", timedelta(days=30), timedelta(hours=1), use_daily_bars=True),
}
