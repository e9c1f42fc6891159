"""Plotly figures for the dashboard: tile sparklines, the candlestick with its volume panel, and compare lines.

Figures only: no Streamlit and no data access here, so they can be built and
checked from plain frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["candlestick_figure", "compare_figure", "sparkline_figure"]

UP = "#16a34a"
DOWN = "#dc2626"
FLAT = "#6b7280"


def sparkline_figure(points: Sequence[tuple[datetime, float]], rising: bool | None) -> go.Figure:
    """A bare 5-minute price line for a watchlist tile, coloured by the day's direction."""
    colour = FLAT if rising is None else UP if rising else DOWN
    xs = [t for t, _ in points]
    ys = [p for _, p in points]
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "width": 2}, hoverinfo="x+y"))
    fig.update_layout(
        height=70, margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False,
        xaxis={"visible": False}, yaxis={"visible": False},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
    )  # fmt: skip
    return fig


def candlestick_figure(symbol: str, candles: pd.DataFrame, overlays: dict[str, pd.Series]) -> go.Figure:
    """Candlesticks over a volume panel sharing the time axis, with any overlay lines (SMA, EMA, VWAP)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03)
    fig.add_trace(
        go.Candlestick(
            x=candles["time"], open=candles["open"], high=candles["high"], low=candles["low"], close=candles["close"],
            name=symbol, increasing_line_color=UP, decreasing_line_color=DOWN,
        ),
        row=1, col=1,
    )  # fmt: skip
    for name, series in overlays.items():
        fig.add_trace(go.Scatter(x=candles["time"], y=series, mode="lines", name=name, line={"width": 1.5}), row=1, col=1)
    colours = [UP if c >= o else DOWN for o, c in zip(candles["open"], candles["close"], strict=True)]
    fig.add_trace(go.Bar(x=candles["time"], y=candles["volume"], name="volume", marker_color=colours, opacity=0.6), row=2, col=1)
    fig.update_layout(
        height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_rangeslider_visible=False,
        legend={"orientation": "h", "y": 1.06}, hovermode="x unified",
    )  # fmt: skip
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    return fig


def compare_figure(normalised: pd.DataFrame) -> go.Figure:
    """One line per symbol, each rebased to 100 at the start of the range, with a dotted line at 100."""
    fig = go.Figure()
    for symbol in normalised.columns:
        fig.add_trace(go.Scatter(x=normalised.index, y=normalised[symbol], mode="lines", name=symbol, connectgaps=True))
    fig.add_hline(y=100, line_dash="dot", line_color=FLAT)
    fig.update_layout(
        height=520, margin={"l": 10, "r": 10, "t": 30, "b": 10}, hovermode="x unified",
        yaxis_title="value of 100 invested at the range start", legend={"orientation": "h", "y": 1.06},
    )  # fmt: skip
    return fig
