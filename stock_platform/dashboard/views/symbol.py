"""Symbol view page: candlestick with a volume panel, optional SMA/EMA/VWAP, and the latest ticks."""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from stock_platform.config import Settings
from stock_platform.dashboard import queries
from stock_platform.dashboard.charts import candlestick_figure
from stock_platform.dashboard.connections import DataUnavailable
from stock_platform.dashboard.hot import hot_quotes
from stock_platform.dashboard.indicators import ema, sma, vwap
from stock_platform.dashboard.symbols import RANGES
from stock_platform.dashboard.views.common import settings, symbol_from_input, unavailable_banner

__all__ = ["render"]

logger = logging.getLogger(__name__)

_OVERLAYS = ("SMA", "EMA", "VWAP")


def _overlays(candles: pd.DataFrame, chosen: list[str], sma_window: int, ema_span: int) -> dict[str, pd.Series]:
    out: dict[str, pd.Series] = {}
    if "SMA" in chosen:
        out[f"SMA {sma_window}"] = sma(candles["close"], sma_window)
    if "EMA" in chosen:
        out[f"EMA {ema_span}"] = ema(candles["close"], ema_span)
    if "VWAP" in chosen:
        line = vwap(candles)
        if line.notna().any():
            out["VWAP"] = line
        else:
            st.caption("VWAP needs traded volume; these candles carry none.")
    return out


def _in_redis(config: Settings, symbol: str) -> bool:
    try:
        return symbol in hot_quotes(config.redis_url, config.redis_key_prefix, (symbol,))
    except DataUnavailable:
        return False


def _explain_empty(config: Settings, symbol: str) -> None:
    """Say whether the symbol is unknown or just has no candles yet."""
    if queries.symbol_in_database(config.postgres_dsn, symbol) or _in_redis(config, symbol):
        st.info(f"{symbol} has quotes but no candles yet: the stream job builds them each minute.")
        return
    if symbol in config.symbols:
        st.info(
            f"No data for **{symbol}** yet: it is watched, but no quote of it has been stored. "
            "Is the producer running? See the Pipeline health page.",
            icon="⏳",
        )
        return
    watched = ", ".join(config.symbols)
    st.warning(
        f"Unknown symbol **{symbol}**: the pipeline has no data for it. "
        f"Watched symbols are {watched}; add more with STOCK_SYMBOLS.",
        icon="🔍",
    )


def _chart(config: Settings, symbol: str) -> bool:
    """Draw the candlestick; False when there was nothing to draw."""
    left, middle, right = st.columns([2, 3, 2])
    with left:
        range_key = st.radio("Range", list(RANGES), index=1, horizontal=True, key="symbol_range")
    with middle:
        chosen = st.multiselect("Overlays", list(_OVERLAYS), default=[], key="symbol_overlays")
    with right:
        sma_window = int(st.number_input("SMA / EMA periods", min_value=2, max_value=200, value=20, step=1, key="periods"))
    candles, label = queries.candles(config.postgres_dsn, symbol, RANGES[range_key])
    if candles.empty:
        _explain_empty(config, symbol)
        return False
    overlays = _overlays(candles, chosen, sma_window, sma_window)
    st.plotly_chart(candlestick_figure(symbol, candles, overlays), key="candles")
    first, last = candles["time"].iloc[0], candles["time"].iloc[-1]
    st.caption(f"{len(candles):,} {label} · {first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M} UTC")
    return True


def _ticks(config: Settings, symbol: str) -> None:
    ticks = queries.latest_ticks(config.postgres_dsn, symbol, 50)
    st.subheader("Latest ticks")
    if ticks.empty:
        st.info(f"No ticks of {symbol} stored in PostgreSQL yet.")
        return
    newest = ticks.iloc[0]
    prev_close = newest["prev_close"]
    if pd.notna(prev_close) and prev_close:
        change = newest["price"] - prev_close
        st.metric(f"{symbol} last", f"{newest['price']:,.2f}", f"{change:+,.2f} ({100 * change / prev_close:+.2f}%)")
    st.dataframe(ticks, hide_index=True, height=320)


def render() -> None:
    """Draw the symbol view for the symbol typed (or given as `?symbol=`)."""
    config = settings()
    st.title("Symbol view")
    symbol = symbol_from_input("Symbol", config.symbols[0] if config.symbols else "AAPL", key="symbol_input")
    if symbol is None:
        return
    try:
        if _chart(config, symbol):
            refresh = max(1.0, config.dashboard_refresh_seconds)

            # The ticks table refreshes alone; the chart keeps its zoom until the user changes something.
            @st.fragment(run_every=refresh)
            def ticks() -> None:
                try:
                    _ticks(config, symbol)
                except DataUnavailable as e:
                    unavailable_banner(e)

            ticks()
    except DataUnavailable as e:
        unavailable_banner(e)
