"""Hostile records the chaos suite publishes in every phase, each with the one place it must end in.

Besides the 1 % invalid records (`injector`), each phase sends, spread over the
phase so that most go out after its part was killed:

- records the contract once accepted and PostgreSQL then refused, failing the
  whole span (NUL, a lone surrogate or a control character in producer_id), or
  stored wrong (a price of 0.001 became 0.00; two volumes of 2**62 in one minute
  of one symbol overflowed the candle's sum): the contract refuses them now;
- a record the contract accepts and PostgreSQL refuses, by a rule the chaos run
  adds to its private database (`add_rogue_rule`): the only way a run can show
  the sink isolating a refused record (kind `database`) under faults;
- conflicts (an earlier quote's symbol and event time, another price), one in
  the micro-batch of the quote it contradicts and one a phase later: the first stays;
- exact copies of an earlier quote: a duplicate, neither a second row nor a dead letter;
- bytes that are not JSON, and a 256 KiB message.

Quote-like records are keyed by their symbol, so each lands in the partition of
the quote it collides with, after it: either both come from the injector's own
producer (idempotent, so it keeps their order), or the earlier quote belongs to
the previous phase, which was acknowledged before this phase began.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from stock_platform.quotes import Quote
from stock_platform_tests.chaos.places import COPY, STORED, dead
from stock_platform_tests.private_platform import PrivatePlatform

__all__ = ["ROGUE_PRODUCER", "Hostile", "add_rogue_rule", "hostile_groups", "hostile_producer_id", "refused_by_rule"]

# The producer id PostgreSQL refuses once `add_rogue_rule` has run; the contract has nothing against it.
ROGUE_PRODUCER = "chaos-rogue"
_ROGUE_RULE = "ALTER TABLE stock_prices ADD CONSTRAINT chaos_no_rogue CHECK (producer_id <> 'chaos-rogue')"
# Large enough to be more than a bad field (Kafka's 1 MiB limit is the only one it meets before the contract).
_LONG_BYTES = 256 * 1024


@dataclass(frozen=True)
class Hostile:
    """One hostile record: what it is (`name`, shared by its kind across phases), its Kafka key and value, its place."""

    name: str
    key: bytes
    value: bytes
    place: str


def hostile_producer_id(phase: int) -> str:
    """The producer id the hostile records of `phase` carry (the platform's own producers are `<host>-<pid>`)."""
    return f"chaos-hostile-{phase}"


def refused_by_rule(quote: Quote) -> bool:
    """True for the quotes the chaos database refuses once `add_rogue_rule` has run."""
    return quote.producer_id == ROGUE_PRODUCER


def add_rogue_rule(platform: PrivatePlatform) -> None:
    """Give the platform's stock_prices a rule the contract does not know, as an operator might add one."""
    conn = platform.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(_ROGUE_RULE)
    finally:
        conn.close()


def _free_time(symbol: str, near_ms: int, taken: set[tuple[str, int]]) -> int:
    """An event time at or after `near_ms` that no planned quote of `symbol` uses; reserved from then on."""
    t = near_ms
    while (symbol, t) in taken:
        t += 1
    taken.add((symbol, t))
    return t


def _raw(fields: dict[str, Any]) -> bytes:
    # json.dumps escapes NUL, control characters and lone surrogates (\\u0000, \\ud800): valid JSON that decodes to them.
    return json.dumps(fields).encode()


def _quote(name: str, quote: Quote, place: str) -> Hostile:
    return Hostile(name, quote.key, quote.to_json(), place)


def _bent(name: str, base: Quote, **changes: object) -> Hostile:
    """`base` with fields the contract refuses."""
    return Hostile(name, base.key, _raw({**base.to_dict(), **changes}), dead("contract"))


def hostile_groups(phase: int, symbols: tuple[str, ...], prior: Quote | None, taken: set[tuple[str, int]]) -> list[list[Hostile]]:
    """The hostile records of `phase`, in groups sent back to back (an anchor quote and the rival right after it).

    `prior` is a quote of the previous phase (None in the first): it gets a rival and an exact copy.
    `taken` holds the (symbol, event time) of every planned quote; the new valid keys are added to it.
    """
    pid = hostile_producer_id(phase)
    start_ms = min(t for _s, t in taken) + 1_000 + phase * 7_919
    symbol = symbols[phase % len(symbols)]
    anchor = Quote(symbol, 100.0 + phase, _free_time(symbol, start_ms, taken), "simulator", pid, 1, 10)
    rival = replace(anchor, price=anchor.price + 1.25, seq=2)
    rogue_symbol = symbols[(phase + 1) % len(symbols)]
    rogue = Quote(rogue_symbol, 50.0, _free_time(rogue_symbol, start_ms + 3_000, taken), "simulator", ROGUE_PRODUCER, phase + 1)
    minute_ms = anchor.event_time_ms // 60_000 * 60_000
    long_value = _raw({**anchor.to_dict(), "producer_id": "x" * _LONG_BYTES})
    groups: list[list[Hostile]] = [
        [_quote("valid anchor", anchor, STORED), _quote("conflict, same batch", rival, dead("conflict"))],
        [_bent("producer_id with NUL", anchor, producer_id=f"{pid}\x00nul", seq=3)],
        [_bent("producer_id with lone surrogate", anchor, producer_id=f"{pid}\ud800", seq=4)],
        [_bent("producer_id with control char", anchor, producer_id=f"{pid}\x1b[31m", seq=5)],
        [_bent("price 0.001", anchor, price=0.001, seq=6)],
        [
            _bent("volume 2**62 (two in a minute)", anchor, volume=2**62, event_time_ms=minute_ms + 1_000, seq=7),
            _bent("volume 2**62 (two in a minute)", anchor, volume=2**62, event_time_ms=minute_ms + 2_000, seq=8),
        ],
        [_quote("exact copy", anchor, COPY)],
        [_quote("refused by PostgreSQL", rogue, dead("database"))],
        [Hostile("not JSON", f"{pid}-bytes".encode(), b"\xff\xfe\x00{not json\x80" + pid.encode(), dead("contract"))],
        [Hostile("256 KiB message", f"{pid}-long".encode(), long_value, dead("contract"))],
    ]
    if prior is None:  # nothing earlier to contradict: a second rival of the anchor, a second or so later
        groups.append([_quote("conflict, later batch", replace(anchor, price=anchor.price + 2.5, seq=9), dead("conflict"))])
    else:
        later = replace(prior, price=round(prior.price + 2.5, 2), producer_id=pid, seq=9, source="replay")
        groups.append([_quote("conflict, later batch", later, dead("conflict"))])
        groups.append([_quote("exact copy", prior, COPY)])
    return groups
