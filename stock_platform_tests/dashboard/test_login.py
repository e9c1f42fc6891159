"""With DASHBOARD_PASSWORD set, an anonymous visitor gets the login form and nothing else; the right password opens it.

Through the real entry point (`app.py`) under AppTest. Which URL a visitor opens
does not matter: the entry point runs no page until the password is given, and
hides the navigation (`test_browser.py` opens every page's URL in Chromium to
show it, and that the right password then opens the page the URL names).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from stock_platform.dashboard.app import APP_PATH
from stock_platform.dashboard.cache import clear_caches
from stock_platform.dashboard.connections import reset_connections
from stock_platform.dashboard.login import password_matches
from stock_platform_tests.dashboard.conftest import settings_env, texts
from stock_platform_tests.dashboard.seed import seed_hot_quote

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
LOGIN_FORM = [("form", ""), ("text_input", "Dashboard password"), ("button", "Sign in")]


def _drawn(at: AppTest) -> list[tuple[str, str]]:
    """(type, label) of every element and block on the page and in the sidebar, in order."""
    out: list[tuple[str, str]] = []

    def walk(node: object) -> None:
        for child in getattr(node, "children", {}).values():
            out.append((str(getattr(child, "type", "")), str(getattr(child, "label", "") or "")))
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    return out


@pytest.fixture
def open_app(dash_settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], AppTest]]:
    """A function: the dashboard password to configure ("" for none) -> the app's first run, with MSFT in Redis."""
    seed_hot_quote(dash_settings, "MSFT", price=420.5, prev_close=400.0)

    def run(password: str) -> AppTest:
        for name, value in settings_env(dataclasses.replace(dash_settings, dashboard_password=password)).items():
            monkeypatch.setenv(name, value)
        clear_caches()
        return AppTest.from_file(str(APP_PATH), default_timeout=60).run()

    yield run
    clear_caches()
    reset_connections()


def _sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="login_password").input(password)
    return at.button[0].click().run()


def test_an_anonymous_visitor_sees_only_the_login_form(open_app) -> None:
    at = open_app(PASSWORD)
    assert not at.exception
    assert _drawn(at) == LOGIN_FORM
    assert not at.title and not at.metric and not at.markdown and not at.get("plotly_chart")


def test_a_wrong_password_is_refused_and_shows_nothing_more(open_app) -> None:
    at = _sign_in(open_app(PASSWORD), "correct horse battery stapler")
    assert not at.exception
    assert texts(at.error) == "Wrong password."
    assert _drawn(at) == [*LOGIN_FORM, ("error", "")]
    at = _sign_in(at, "")
    assert _drawn(at) == [*LOGIN_FORM, ("error", "")], "an empty password is wrong too"


def test_the_right_password_opens_the_pages_for_the_session(open_app) -> None:
    at = _sign_in(open_app(PASSWORD), PASSWORD)
    assert not at.exception
    assert at.title[0].value == "Market overview"
    assert {m.label: m.value for m in at.metric}["MSFT"] == "420.50"
    assert ("text_input", "Dashboard password") not in _drawn(at)
    at.run()  # the next rerun (an auto-refresh, a click) needs no second login
    assert at.title[0].value == "Market overview"
    assert ("text_input", "Dashboard password") not in _drawn(at)
    assert "login_password" not in at.session_state, "the password is not kept in the session once checked"


def test_without_a_password_there_is_no_login(open_app) -> None:
    at = open_app("")
    assert not at.exception
    assert at.title[0].value == "Market overview"
    assert ("text_input", "Dashboard password") not in _drawn(at)


def test_password_comparison() -> None:
    assert password_matches(PASSWORD, PASSWORD)
    assert not password_matches(PASSWORD[:-1], PASSWORD)
    assert not password_matches("", PASSWORD)
    assert password_matches("pässwörd", "pässwörd"), "non-ASCII passwords compare as UTF-8"
