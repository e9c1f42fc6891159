"""The Streamlit entry point: `streamlit run stock_platform/dashboard/app.py` (or `stock-platform dashboard`).

Builds the navigation over the four pages and runs the one the URL names; with
DASHBOARD_PASSWORD set, only once this session gave the password (`login.py`),
until then the navigation is hidden and the login form is all there is. Each
page reads its settings from the environment (`load_settings`) when it runs,
never at import.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

__all__ = ["APP_PATH", "main"]

APP_PATH = Path(__file__).resolve()


def main() -> None:
    """Configure the page, ask for the password if one is set, and run the page the URL names (the overview by default)."""
    from stock_platform.dashboard.login import allowed, login_form
    from stock_platform.dashboard.views import compare, overview, pipeline, symbol
    from stock_platform.dashboard.views.common import settings

    st.set_page_config(page_title="stock-platform", page_icon="📈", layout="wide")
    password = settings().dashboard_password.get_secret_value()
    pages = [
        st.Page(overview.render, title="Market overview", icon="📈", default=True),  # served at /
        st.Page(symbol.render, title="Symbol view", icon="🕯️", url_path="symbol"),
        st.Page(compare.render, title="Compare", icon="⚖️", url_path="compare"),
        st.Page(pipeline.render, title="Pipeline health", icon="🩺", url_path="health"),
    ]
    # Built for every visitor, so the URL's page is known when a login reruns the app; shown only once allowed.
    page = st.navigation(pages, position="sidebar" if allowed(password) else "hidden")
    if not allowed(password):
        login_form(password)
        return
    page.run()


if __name__ == "__main__":
    main()
