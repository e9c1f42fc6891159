"""With DASHBOARD_PASSWORD set, an anonymous visitor gets the login form and nothing else; the right password opens it.

Through the real entry point (`app.py`) under AppTest. Which URL a visitor opens
does not matter: the entry point runs no page until the password is given, and
hides the navigation (`test_browser.py` opens every page's URL in Chromium to
show it, and that the right password then opens the page the URL names). The
process-wide throttle is tested on its own with a fake clock, and through the
form, which must turn a try away unchecked while the throttle says wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from stock_platform.dashboard import login
from stock_platform.dashboard.app import APP_PATH
from stock_platform.dashboard.cache import clear_caches
from stock_platform.dashboard.connections import reset_connections
from stock_platform.dashboard.login import LoginThrottle, password_matches
from stock_platform_tests.dashboard.conftest import settings_env, texts
from stock_platform_tests.dashboard.seed import seed_hot_quote

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


@pytest.fixture(autouse=True)
def fresh_throttle(monkeypatch: pytest.MonkeyPatch) -> LoginThrottle:
    """Each test starts with no wrong password counted (the throttle is process-wide, as AppTest runs in-process)."""
    fresh = LoginThrottle()
    monkeypatch.setattr(login, "_throttle", fresh)
    return fresh


@pytest.fixture
def open_app(dash_settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], AppTest]]:
    """A function: the dashboard password to configure ("" for none) -> the app's first run, with MSFT in Redis."""
    seed_hot_quote(dash_settings, "MSFT", price=420.5, prev_close=400.0)

    def run(password: str) -> AppTest:
        for name, value in settings_env(dash_settings.replace(dashboard_password=password)).items():
            monkeypatch.setenv(name, value)
        clear_caches()
        return AppTest.from_file(str(APP_PATH), default_timeout=60).run()

    yield run
    clear_caches()
    reset_connections()


def _sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="login_password").input(password)
    return at.button[0].click().run()


@pytest.mark.integration
def test_an_anonymous_visitor_sees_only_the_login_form(open_app) -> None:
    at = open_app(PASSWORD)
    assert not at.exception
    assert _drawn(at) == LOGIN_FORM
    assert not at.title and not at.metric and not at.markdown and not at.get("plotly_chart")


@pytest.mark.integration
def test_a_wrong_password_is_refused_and_shows_nothing_more(open_app) -> None:
    at = _sign_in(open_app(PASSWORD), "correct horse battery stapler")
    assert not at.exception
    assert texts(at.error) == "Wrong password."
    assert _drawn(at) == [*LOGIN_FORM, ("error", "")]
    at = _sign_in(at, "")
    assert _drawn(at) == [*LOGIN_FORM, ("error", "")], "an empty password is wrong too"


@pytest.mark.integration
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


@pytest.mark.integration
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


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_lets_five_failures_through_then_doubles_the_wait_up_to_its_cap() -> None:
    clock = _Clock()
    guard = LoginThrottle(free=5, base_s=1.0, cap_s=30.0, quiet_s=60.0, clock=clock)
    for _ in range(5):
        assert guard.wait_s() == 0
        guard.failed()
    waits = []
    for _ in range(8):
        waits.append(guard.wait_s())
        clock.now += waits[-1]  # a guesser who waits exactly as long as told
        assert guard.wait_s() == 0
        guard.failed()
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    clock.now += 10
    assert guard.wait_s() == 20.0, "the wait counts from the last failure"


def test_the_right_password_or_a_quiet_minute_ends_the_run() -> None:
    clock = _Clock()
    guard = LoginThrottle(clock=clock)
    for _ in range(7):
        guard.failed()
    assert guard.wait_s() == 4.0
    guard.succeeded()
    assert guard.wait_s() == 0
    for _ in range(7):
        guard.failed()
    clock.now += 61
    assert guard.wait_s() == 0
    guard.failed()
    assert guard.wait_s() == 0, "a failure after a quiet minute starts a new run"


def test_a_long_run_of_failures_stays_at_the_cap() -> None:
    guard = LoginThrottle(cap_s=30.0, clock=lambda: 1000.0)
    for _ in range(5000):  # 2 ** 4995 s would overflow a float
        guard.failed()
    assert guard.wait_s() == 30.0


def test_the_throttle_counts_every_thread_s_failures() -> None:
    """Streamlit runs each session in its own thread: their failures add up in one count."""
    guard = LoginThrottle(free=795, cap_s=10**9, clock=lambda: 1000.0)
    threads = [threading.Thread(target=lambda: [guard.failed() for _ in range(100)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert guard.wait_s() == 32.0, "800 failures, 795 free: 2**5 s, so not one failure was lost"
    guard.succeeded()
    assert guard.wait_s() == 0


def test_a_throttled_try_is_turned_away_unchecked_even_with_the_right_password(fresh_throttle: LoginThrottle) -> None:
    for _ in range(10):  # the next try in 16 s: long past this test's own runs, however loaded the machine
        fresh_throttle.failed()
    at = AppTest.from_function(_login_page, args=(PASSWORD,), default_timeout=30).run()
    at = _sign_in(at, PASSWORD)
    assert not at.exception
    assert texts(at.error).startswith("Too many wrong passwords. Try again in ")
    assert not at.markdown, "the session was not let in"
    fresh_throttle.succeeded()
    at = _sign_in(at, PASSWORD)
    assert [m.value for m in at.markdown] == ["signed in"]


def _login_page(password: str) -> None:
    """The entry point's gate alone, without any page behind it."""
    import streamlit as st

    from stock_platform.dashboard.login import allowed, login_form

    if not allowed(password):
        login_form(password)
        return
    st.markdown("signed in")


def test_sessions_trying_at_the_same_moment_get_no_more_tries_than_the_throttle_allows() -> None:
    """Each try is counted as it starts, under the lock: 50 simultaneous sessions cannot all pass an empty throttle."""
    import threading

    guard = LoginThrottle(free=5, base_s=1.0, clock=lambda: 100.0)
    start = threading.Barrier(50)
    allowed_tries: list[float] = []

    def session() -> None:
        start.wait()
        if guard.begin() == 0:
            allowed_tries.append(1)

    threads = [threading.Thread(target=session) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed_tries) == 5
    guard.succeeded()  # the right password, given by one of them, ends the run
    assert guard.begin() == 0
