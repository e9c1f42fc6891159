"""Pieces every page shares: the settings, the service-down banner, the symbol picker.

A page never lets a service error reach Streamlit's traceback box: data calls
raise `DataUnavailable` and the page shows `unavailable_banner` instead.
"""

from __future__ import annotations

import logging
from datetime import datetime

import streamlit as st

from stock_platform.config import Settings, load_settings
from stock_platform.dashboard.connections import DataUnavailable, configure
from stock_platform.dashboard.symbols import SymbolError, normalise_symbol

__all__ = ["format_age", "format_time", "settings", "symbol_from_input", "unavailable_banner"]

logger = logging.getLogger(__name__)


def settings() -> Settings:
    """The platform settings, read from the environment on each run (cheap, and tests change it).

    A malformed setting stops the page with a message naming it, not a traceback.
    """
    try:
        config = load_settings()
    except ValueError as e:
        st.error(f"**The dashboard's configuration is invalid**: {e}", icon="🚨")
        st.stop()
        raise  # st.stop() raises; this line only satisfies type checkers
    configure(config)
    return config


def unavailable_banner(error: DataUnavailable) -> None:
    """A red banner naming the service that is down and what to do, instead of a traceback."""
    logger.warning("dashboard data unavailable: %s", error)
    if error.not_set_up:
        st.warning(
            f"**{error.service} is not set up yet**: {error.message}\n\n"
            "The database has no platform tables: `stock-platform migrate` (or `make up`) creates them.",
            icon="🧱",
        )
        return
    st.error(
        f"**{error.service} is unavailable**: {error.message}\n\n"
        "The page will recover by itself once it is back; `make up` (or `stock-platform services up`) starts it.",
        icon="🚨",
    )


def symbol_from_input(label: str, default: str, key: str) -> str | None:
    """A symbol text box (pre-filled from the `?symbol=` query parameter); None, with a warning, if malformed."""
    initial = st.query_params.get("symbol", default)
    text = st.text_input(label, value=initial, key=key, max_chars=24, help="A ticker such as AAPL or BRK.B")
    try:
        symbol = normalise_symbol(text)
    except SymbolError as e:
        st.warning(str(e), icon="✋")
        return None
    if st.query_params.get("symbol") != symbol:
        st.query_params["symbol"] = symbol
    return symbol


def format_time(value: datetime | None) -> str:
    """A stored (naive UTC) time as `YYYY-MM-DD HH:MM:SS UTC`, or an em dash."""
    if value is None:
        return "—"
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def format_age(seconds: float | None) -> str:
    """An age in the largest sensible unit: 12 s, 4 min, 3 h, 2 d."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:,.0f} h"
    return f"{seconds / 86400:,.0f} d"
