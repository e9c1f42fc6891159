"""Chart overlays computed from candles: moving averages, VWAP, and normalising series to 100.

Pure functions of pandas frames, so they are tested without a database and
reused by the symbol and compare pages.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["ema", "normalise_to_100", "sma", "vwap"]


def sma(close: pd.Series, window: int) -> pd.Series:
    """Simple moving average of `window` candles; NaN until `window` candles exist."""
    return close.rolling(window=window, min_periods=window).mean()


def ema(close: pd.Series, span: int) -> pd.Series:
    """Exponential moving average with the usual alpha = 2 / (span + 1), seeded on the first close."""
    return close.ewm(span=span, adjust=False).mean()


def vwap(candles: pd.DataFrame) -> pd.Series:
    """Volume-weighted average price anchored at the first candle shown, from typical price (H+L+C)/3.

    NaN while no volume has traded (quote snapshots carry no trade volume).
    """
    typical = (candles["high"] + candles["low"] + candles["close"]) / 3.0
    volume = candles["volume"].astype(float).fillna(0.0)
    cumulative_volume = volume.cumsum()
    return (typical * volume).cumsum() / cumulative_volume.where(cumulative_volume > 0)


def normalise_to_100(closes: pd.DataFrame) -> pd.DataFrame:
    """Each column rebased so its first valid value is 100 (compare symbols of very different prices)."""
    out = {}
    for column in closes.columns:
        series = closes[column]
        valid = series.dropna()
        if valid.empty or valid.iloc[0] == 0:
            continue
        out[column] = series / valid.iloc[0] * 100.0
    return pd.DataFrame(out, index=closes.index)
