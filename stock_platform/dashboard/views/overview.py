"""Market overview page: a watchlist of tiles that refresh themselves without reloading the page."""

from __future__ import annotations

import logging

import streamlit as st

from stock_platform.config import Settings
from stock_platform.dashboard.charts import sparkline_figure
from stock_platform.dashboard.connections import DataUnavailable
from stock_platform.dashboard.symbols import parse_symbol_list
from stock_platform.dashboard.views.common import format_time, settings, unavailable_banner
from stock_platform.dashboard.watchlist import Tile, load_watchlist

__all__ = ["render"]

logger = logging.getLogger(__name__)

_COLUMNS = 4
_STATE_KEY = "watchlist_symbols"


def _watchlist_symbols(config: Settings) -> tuple[str, ...]:
    """The symbols to show: STOCK_SYMBOLS by default, edited in the expander for this browser session."""
    default = ", ".join(config.symbols)
    with st.expander("Edit watchlist"):
        text = st.text_input("Symbols (comma separated)", value=default, key=_STATE_KEY)
    symbols, errors = parse_symbol_list(text)
    for error in errors:
        st.warning(error, icon="✋")
    if not symbols:
        st.info("The watchlist is empty: add symbols above.")
    return tuple(symbols)


def _tile(tile: Tile) -> None:
    with st.container(border=True):
        if tile.price is None:
            st.metric(tile.symbol, "—")
            st.caption("no data yet: not seen by the pipeline in Redis or PostgreSQL")
            return
        change, pct = tile.change, tile.change_pct
        delta = None if change is None or pct is None else f"{change:+,.2f} ({pct:+.2f}%)"
        st.metric(tile.symbol, f"{tile.price:,.2f}", delta=delta)
        if len(tile.points) >= 2:
            rising = None if change is None else change >= 0
            st.plotly_chart(
                sparkline_figure(tile.points, rising),
                config={"displayModeBar": False, "staticPlot": True},
                key=f"spark-{tile.symbol}",
            )
        else:
            st.caption("no ticks in the last 5 minutes of data")
        no_close = "" if delta else " · no previous close yet"
        st.caption(f"last tick {format_time(tile.last_tick)} · {tile.source}{no_close}")


def _tiles(config: Settings, symbols: tuple[str, ...]) -> None:
    try:
        watchlist = load_watchlist(config, symbols)
    except DataUnavailable as e:
        unavailable_banner(e)
        return
    for warning in watchlist.warnings:
        st.warning(warning, icon="⚠️")
    if watchlist.empty:
        st.info(
            "No quotes yet for any watched symbol. Start the platform with `make up` (producer and stream job); "
            "tiles fill in by themselves."
        )
    for start in range(0, len(watchlist.tiles), _COLUMNS):
        columns = st.columns(_COLUMNS)
        for column, tile in zip(columns, watchlist.tiles[start : start + _COLUMNS], strict=False):
            with column:
                _tile(tile)


def render() -> None:
    """Draw the overview; the tiles re-run alone every DASHBOARD_REFRESH_SECONDS (no full-page flicker)."""
    config = settings()
    st.title("Market overview")
    st.caption(f"Hot data from Redis, PostgreSQL when Redis has none · refreshes every {config.dashboard_refresh_seconds:g} s")
    symbols = _watchlist_symbols(config)
    if not symbols:
        return

    @st.fragment(run_every=max(1.0, config.dashboard_refresh_seconds))
    def tiles() -> None:
        _tiles(config, symbols)

    tiles()
