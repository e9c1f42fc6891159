"""Where each Kafka record must end and where it did: exactly one place, a row of stock_prices or a dead letter of a kind.

The oracle (`expected_places`) reads the topic alone. A record the contract
refuses is a `contract` dead letter; one the chaos database's own rule refuses,
a `database` one. Of the valid quotes sharing a (symbol, event time), the first
in (partition, offset) order is the row, a later one with the same market data a
copy of it (a duplicate: represented by the row, stored nowhere else), one with
other market data a `conflict`. That is the sink's rule, and it needs no
knowledge of micro-batches, since a symbol is one Kafka key and so one partition.

`actual_places` reads the tables: a record's dead letter is found by its
(partition, offset); a valid record is the row of its key when it is the first
record whose content (producer id, seq, market data) equals the row, a copy when
the row holds its market data, and nowhere otherwise. A record that is both
the row and a dead letter is in two places.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from stock_platform.quotes import Quote

__all__ = ["COPY", "NOWHERE", "STORED", "TWICE", "Coord", "Row", "actual_places", "dead", "expected_places"]

STORED = "stock_prices"
COPY = "stock_prices (copy)"
NOWHERE = "nowhere"
TWICE = "stock_prices and dead_letters"
# A record's Kafka coordinates: (partition, offset).
Coord = tuple[int, int]
# A stock_prices row as compared with a record: producer id, seq, market data (`Quote.market_data`).
Row = tuple[str, int, tuple[Decimal | int | None, ...]]


def dead(kind: str) -> str:
    """The place of a dead letter of `kind` (contract, database, conflict, closed_day)."""
    return f"dead_letters/{kind}"


def expected_places(parsed: Mapping[Coord, Quote | None], refused: Callable[[Quote], bool]) -> dict[Coord, str]:
    """The place of every record of the topic (`parsed`: its quote, None if the contract refuses it)."""
    firsts: dict[tuple[str, int], Quote] = {}
    places: dict[Coord, str] = {}
    for coord in sorted(parsed):
        quote = parsed[coord]
        if quote is None:
            places[coord] = dead("contract")
        elif refused(quote):
            places[coord] = dead("database")
        else:
            first = firsts.setdefault((quote.symbol, quote.event_time_ms), quote)
            if first is quote:
                places[coord] = STORED
            else:
                places[coord] = COPY if first.market_data() == quote.market_data() else dead("conflict")
    return places


def actual_places(
    parsed: Mapping[Coord, Quote | None], rows: Mapping[tuple[str, int], Row], dead_kinds: Mapping[Coord, str]
) -> dict[Coord, str]:
    """The place every record of the topic ended in, read from stock_prices `rows` (by key) and dead letters' kinds."""
    row_taken: set[tuple[str, int]] = set()
    places: dict[Coord, str] = {}
    for coord in sorted(parsed):
        quote = parsed[coord]
        kind = dead_kinds.get(coord)
        is_row = is_copy = False
        if quote is not None:
            key = (quote.symbol, quote.event_time_ms)
            row = rows.get(key)
            data = quote.market_data()
            if row is not None and key not in row_taken and row == (quote.producer_id, quote.seq, data):
                row_taken.add(key)
                is_row = True
            else:
                is_copy = row is not None and row[2] == data
        if is_row:
            places[coord] = STORED if kind is None else TWICE
        elif kind is not None:
            places[coord] = dead(kind)
        else:
            places[coord] = COPY if is_copy else NOWHERE
    return places
