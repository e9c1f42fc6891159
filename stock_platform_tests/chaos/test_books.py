"""The chaos ledger's parts without services: the hostile set's claims, the places oracle, and the sequence gaps.

Fast: these pin the rules the chaos run judges the platform by, so a run that
passes cannot do so because the oracle went blind.
"""

from __future__ import annotations

import time
from dataclasses import replace

from stock_platform.quotes import Quote
from stock_platform.streaming.parse import KafkaRecord, parse_record
from stock_platform_tests.chaos.faults import PARTS
from stock_platform_tests.chaos.gaps import UNSENT_WINDOW_MS, duplicate_seqs, sequence_gaps
from stock_platform_tests.chaos.hostile import refused_by_rule
from stock_platform_tests.chaos.injector import plan_phases
from stock_platform_tests.chaos.places import COPY, NOWHERE, STORED, TWICE, actual_places, dead, expected_places

_Q = Quote("CX01", 10.0, 1_700_000_000_000, "simulator", "p", 1, 5)


def test_every_phase_carries_each_hostile_kind_and_each_claim_fits_the_contract() -> None:
    phases = plan_phases(700, PARTS)
    names = {h.name for h in phases[0].hostile}
    assert len(names) == 12 and all({h.name for h in p.hostile} == names for p in phases)
    assert sum(len(p.quotes) + len(p.bad) for p in phases) == 700  # hostile records come on top
    now_ms = int(time.time() * 1000)
    for phase in phases:
        for h in phase.hostile:
            verdict = parse_record(KafkaRecord(h.value, "t", 0, 0, now_ms))
            if h.place == dead("contract"):
                assert not isinstance(verdict, Quote), h.name
            else:
                assert isinstance(verdict, Quote) and refused_by_rule(verdict) == (h.place == dead("database")), h.name


def test_the_first_of_a_key_stays_a_same_copy_is_a_duplicate_and_another_price_a_conflict() -> None:
    parsed = {
        (0, 5): replace(_Q, price=11.0),  # later in the partition than (0, 1): a conflict
        (0, 1): _Q,
        (0, 7): replace(_Q, producer_id="other", seq=9),  # same market data: a copy
        (1, 0): None,
        (1, 1): replace(_Q, event_time_ms=_Q.event_time_ms + 1, producer_id="chaos-rogue"),
    }
    expected = expected_places(parsed, refused_by_rule)
    assert expected == {
        (0, 1): STORED, (0, 5): dead("conflict"), (0, 7): COPY, (1, 0): dead("contract"), (1, 1): dead("database"),
    }  # fmt: skip
    row = {(_Q.symbol, _Q.event_time_ms): (_Q.producer_id, _Q.seq, _Q.market_data())}
    kinds = {(0, 5): "conflict", (1, 0): "contract", (1, 1): "database"}
    assert actual_places(parsed, row, kinds) == expected
    # The sink keeping the rival instead, losing the refused one, and dead-lettering the stored one too:
    rival_row = {(_Q.symbol, _Q.event_time_ms): ("p", 1, replace(_Q, price=11.0).market_data())}
    assert actual_places(parsed, rival_row, {(1, 0): "contract"})[(0, 1)] == NOWHERE
    assert actual_places(parsed, row, {**kinds, (1, 1): "contract"})[(1, 1)] == dead("contract")
    assert actual_places(parsed, row, {**kinds, (0, 1): "conflict"})[(0, 1)] == TWICE


def test_only_gaps_just_before_a_producers_kill_are_excused() -> None:
    kill = 1_000_000
    recent = [(1, kill - 60_000), (2, kill - 2_000), (5, kill - 1_000), (6, kill - 500)]
    old = [(1, kill - 60_000), (3, kill - 59_000), (4, kill - 1_000)]
    gaps = sequence_gaps({"killed": recent, "old": old, "alive": recent}, {"killed": kill, "old": kill})
    assert [(g.producer_id, g.first, g.last, g.count, g.excused) for g in gaps] == [
        ("alive", 3, 4, 2, False),
        ("killed", 3, 4, 2, True),
        ("old", 2, 2, 1, False),  # accepted ~60 s before the kill: not in flight, lost
    ]
    assert sequence_gaps({"killed": [(2, kill - UNSENT_WINDOW_MS - 1), (4, kill)]}, {"killed": kill})[1].excused is False
    assert duplicate_seqs({"p": [(1, 5), (2, 6), (2, 6)]}) == [("p", 2, 1, 6)]
