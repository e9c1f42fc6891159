"""Checking the numbers in a Finnhub answer before they are used: what Python's json lets through, Finnhub may send.

`json` reads `Infinity`, `-Infinity` and `NaN`, and integers of any length, so
a broken answer can hand the feeds numbers that crash arithmetic (`int(inf)`,
`round(nan)`) or date handling (a 20-digit `t`). These checks turn each into a
`MalformedAnswer` whose `kind` names the field and the problem without the
value, so the feeds can count every one and log the first of each kind. A
value that passes is only well-formed: whether it makes a plausible quote is
still for the message contract (`quotes.quote_from_fields`) to decide.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MAX_EPOCH_SECONDS", "MalformedAnswer", "epoch", "finite_number"]

# 9999-12-31T23:59:59Z, the last moment `datetime` can represent: beyond it a time cannot even be printed.
MAX_EPOCH_SECONDS = 253_402_300_799


class MalformedAnswer(ValueError):
    """An answer (or one trade in it) that is not what Finnhub documents; `kind` groups alike ones for logging."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or message


def finite_number(value: Any, name: str, *, low: float | None = None, high: float | None = None) -> float:
    """`value` as a float if it is a finite JSON number (not a bool, not a string) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedAnswer(f"field {name!r} is not a number: {value!r:.40}", f"field {name!r} is not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer too long for a float
        raise MalformedAnswer(f"field {name!r} is out of range: {value!r:.40}", f"field {name!r} is out of range") from None
    if not math.isfinite(number):
        raise MalformedAnswer(f"field {name!r} is not finite: {value!r:.40}", f"field {name!r} is not finite")
    if (low is not None and number < low) or (high is not None and number > high):
        raise MalformedAnswer(f"field {name!r} is out of range: {value!r:.40}", f"field {name!r} is out of range")
    return number


def epoch(value: Any, name: str, *, per_second: int) -> int:
    """`value` as a whole count of 1/`per_second` seconds since 1970, between 0 and the year 9999."""
    number = finite_number(value, name, low=0, high=MAX_EPOCH_SECONDS * per_second)
    if number != int(number):
        raise MalformedAnswer(f"field {name!r} is not a whole number: {value!r:.40}", f"field {name!r} is not a whole number")
    return int(value) if isinstance(value, int) else int(number)
