"""Compare page: several symbols on one chart, each rebased to 100 at the start of the range."""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from stock_platform.config import Settings
from stock_platform.dashboard import queries
from stock_platform.dashboard.charts import compare_figure
from stock_platform.dashboard.connections import DataUnavailable
from stock_platform.dashboard.indicators import normalise_to_100
from stock_platform.dashboard.symbols import RANGES, parse_symbol_list
from stock_platform.dashboard.views.common import settings, unavailable_banner

__all__ = ["render"]

logger = logging.getLogger(__name__)


def _closes(config: Settings, symbols: list[str], range_key: str) -> tuple[pd.DataFrame, list[str]]:
    """Close per bucket, one column per symbol, and the symbols that have no candles."""
    series: dict[str, pd.Series] = {}
    missing: list[str] = []
    for symbol in symbols:
        candles, _ = queries.candles(config.postgres_dsn, symbol, RANGES[range_key])
        if candles.empty:
            missing.append(symbol)
        else:
            series[symbol] = candles.set_index("time")["close"]
    return pd.DataFrame(series).sort_index(), missing


def render() -> None:
    """Draw the compare chart for the symbols typed in."""
    config = settings()
    st.title("Compare")
    default = ", ".join(config.symbols[:4])
    left, right = st.columns([3, 2])
    with left:
        text = st.text_input("Symbols (comma separated)", value=default, key="compare_symbols")
    with right:
        range_key = st.radio("Range", list(RANGES), index=1, horizontal=True, key="compare_range")
    symbols, errors = parse_symbol_list(text)
    for error in errors:
        st.warning(error, icon="✋")
    if not symbols:
        st.info("Enter one or more symbols to compare.")
        return
    try:
        closes, missing = _closes(config, symbols, range_key)
    except DataUnavailable as e:
        unavailable_banner(e)
        return
    if missing:
        st.warning(f"No candles for {', '.join(missing)} (unknown symbol, or no data yet).", icon="🔍")
    normalised = normalise_to_100(closes)
    if normalised.empty:
        st.info("Nothing to compare yet: the pipeline has no candles for these symbols. Start it with `make up`.")
        return
    st.plotly_chart(compare_figure(normalised), key="compare")
    last = normalised.ffill().iloc[-1]
    table = pd.DataFrame({"symbol": last.index, "change over range %": (last.to_numpy(dtype=float) - 100.0).round(2)})
    st.dataframe(table.sort_values("change over range %", ascending=False), hide_index=True)
