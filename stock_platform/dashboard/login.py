"""The dashboard's optional login: with DASHBOARD_PASSWORD set, a visitor sees a password form and nothing else.

The dashboard is the platform's one public port. The entry point checks
before it runs any page, so no page (and no page's query) runs for a visitor
who has not given the password, whatever URL they open; the navigation is
hidden too. The password is compared in constant time (`hmac.compare_digest`),
and each wrong one costs its session a second, which slows guessing through
one session.
"""

from __future__ import annotations

import hmac
import logging
import time

import streamlit as st

__all__ = ["allowed", "login_form", "password_matches"]

logger = logging.getLogger(__name__)

_STATE_KEY = "stock_platform_signed_in"
_WRONG_PASSWORD_DELAY_S = 1.0


def password_matches(given: str, expected: str) -> bool:
    """True when `given` is the configured password; the time taken does not depend on where they differ."""
    return hmac.compare_digest(given.encode(), expected.encode())


def allowed(password: str) -> bool:
    """True when the pages may be shown: no password is configured, or this session gave it."""
    return not password or bool(st.session_state.get(_STATE_KEY))


def login_form(password: str) -> None:
    """Draw the password form; the right password marks the session and reruns it into the page the URL names."""
    with st.form("login"):
        given = st.text_input("Dashboard password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return
    if password_matches(given, password):
        st.session_state[_STATE_KEY] = True
        st.session_state.pop("login_password", None)  # the password leaves the session once checked
        st.rerun()
    logger.warning("dashboard login refused: wrong password")
    time.sleep(_WRONG_PASSWORD_DELAY_S)
    st.error("Wrong password.", icon="🔒")
