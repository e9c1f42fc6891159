"""The dashboard's optional login: with DASHBOARD_PASSWORD set, a visitor sees a password form and nothing else.

The dashboard is the platform's one public port. The entry point checks
before it runs any page, so no page (and no page's query) runs for a visitor
who has not given the password, whatever URL they open; the navigation is
hidden too. The password is compared in constant time (`hmac.compare_digest`).
Guessing is slowed twice over: each wrong password costs its session a second,
and, since a guesser can open as many sessions as they like, one throttle for
the whole process (`LoginThrottle`) spaces out every attempt once wrong ones
pile up, whichever session they come from.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from collections.abc import Callable

import streamlit as st

__all__ = ["LoginThrottle", "allowed", "login_form", "password_matches", "throttle"]

logger = logging.getLogger(__name__)

_STATE_KEY = "stock_platform_signed_in"
_WRONG_PASSWORD_DELAY_S = 1.0


class LoginThrottle:
    """Wrong passwords counted across every session: past `free` in a row, each next try must wait longer.

    A run of failures is those none more than `quiet_s` apart. After `free` of them the next try is
    allowed `base_s` after the last failure, then twice that after the next failure, and so on up to
    `cap_s`; a try before then is turned away unchecked, so guessing runs at most one try per delay
    however many sessions send them. The right password ends the run. The cap stays below `quiet_s`,
    so a guesser who waits out each delay keeps the run, and the longest delay, going.
    """

    def __init__(
        self,
        free: int = 5,
        base_s: float = 1.0,
        cap_s: float = 30.0,
        quiet_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.base_s, self.cap_s, self.quiet_s = free, base_s, cap_s, quiet_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._last_failure = -math.inf

    def _delay_s(self) -> float:
        """How long after the last failure the next try may come (lock held)."""
        if self._failures < self.free:
            return 0.0
        doublings = min(self._failures - self.free, 60)  # far past any cap, and no float overflow in a long attack
        return min(self.cap_s, self.base_s * 2.0**doublings)

    def wait_s(self) -> float:
        """Seconds until a try is allowed (0: now); also ends a run that has gone quiet."""
        with self._lock:
            since = self._clock() - self._last_failure
            if since > self.quiet_s:
                self._failures = 0
            return max(0.0, self._delay_s() - since)

    def failed(self) -> None:
        """Count a wrong password."""
        with self._lock:
            self._count_failure()

    def begin(self) -> float:
        """Start a try: the seconds to wait (then it is turned away), or 0 and the try counted as a failure.

        One step under the lock, counted before the password is checked: sessions that submit at the same
        moment cannot all pass an empty throttle first. `succeeded` clears the count when it was right.
        """
        with self._lock:
            since = self._clock() - self._last_failure
            if since > self.quiet_s:
                self._failures = 0
            wait = max(0.0, self._delay_s() - since)
            if wait == 0.0:
                self._count_failure()
            return wait

    def _count_failure(self) -> None:
        now = self._clock()
        if now - self._last_failure > self.quiet_s:
            self._failures = 0
        self._failures += 1
        self._last_failure = now

    def succeeded(self) -> None:
        """The right password: the run of failures is over."""
        with self._lock:
            self._failures = 0
            self._last_failure = -math.inf


_throttle = LoginThrottle()


def throttle() -> LoginThrottle:
    """The process-wide throttle every session's login goes through."""
    return _throttle


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
    guard = throttle()
    wait = guard.begin()
    if wait > 0:
        # Not checked at all: an answer now, right or wrong, would let a guesser go faster than the throttle.
        logger.warning("dashboard login turned away: too many wrong passwords, next try in %.0f s", wait)
        st.error(f"Too many wrong passwords. Try again in {math.ceil(wait)} s.", icon="⏳")
        return
    if password_matches(given, password):
        guard.succeeded()
        st.session_state[_STATE_KEY] = True
        st.session_state.pop("login_password", None)  # the password leaves the session once checked
        st.rerun()
    logger.warning("dashboard login refused: wrong password")
    time.sleep(_WRONG_PASSWORD_DELAY_S)
    st.error("Wrong password.", icon="🔒")
