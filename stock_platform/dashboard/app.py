"""The Streamlit entry point: `streamlit run stock_platform/dashboard/app.py` (or `stock-platform dashboard`).

Builds the navigation over the four pages; each page reads its settings from
the environment (`load_settings`) when it runs, never at import.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

__all__ = ["APP_PATH", "main"]

APP_PATH = Path(__file__).resolve()


def main() -> None:
    """Configure the page and run the one the URL names (the overview by default)."""
    from stock_platform.dashboard.views import compare, overview, pipeline, symbol

    st.set_page_config(page_title="stock-platform", page_icon="📈", layout="wide")
    pages = [
        st.Page(overview.render, title="Market overview", icon="📈", default=True),  # served at /
        st.Page(symbol.render, title="Symbol view", icon="🕯️", url_path="symbol"),
        st.Page(compare.render, title="Compare", icon="⚖️", url_path="compare"),
        st.Page(pipeline.render, title="Pipeline health", icon="🩺", url_path="health"),
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
