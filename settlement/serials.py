"""Serial-range arithmetic, pure: which runs of serials to take, and how runs split when they move.

A block's serials are partitioned into runs, each in one place (an account, a state, and the order
it is locked to). Moving serials deletes the runs they come from, inserts the pieces left behind
and the moved pieces in their new place, and records one entry per moved piece. Nothing here
touches the database; `settlement.holdings` applies the plans.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from settlement.values import SerialRange


class Place(NamedTuple):
    account_id: int
    state: str
    order_id: int | None


class Run(NamedTuple):
    """One holdings row: serials first..last of a block, all in one place."""

    block_id: str
    first: int
    last: int
    place: Place


class Move(NamedTuple):
    block_id: str
    first: int
    last: int
    source: Place
    target: Place


class Plan(NamedTuple):
    deleted: list[tuple[str, int]]  # (block_id, first) of each run that goes away
    inserted: list[Run]
    moves: list[Move]


def take(runs: Iterable[Run], quantity_t: int) -> dict[Run, list[SerialRange]] | None:
    """The first `quantity_t` serials of `runs`, in their order, per run (a run is cut at its low
    end); None if the runs hold fewer.

    >>> free = Place(7, "free", None)
    >>> take([Run("B", 1, 5, free), Run("B", 9, 9, free)], 6)[Run("B", 9, 9, free)]
    [SerialRange(block_id='B', first=9, last=9)]
    """
    taken: dict[Run, list[SerialRange]] = {}
    wanted = quantity_t
    for run in runs:
        if not wanted:
            break
        size = min(run.last - run.first + 1, wanted)
        taken[run] = [SerialRange(run.block_id, run.first, run.first + size - 1)]
        wanted -= size
    return None if wanted else taken


def disjoint(ranges: Sequence[SerialRange]) -> bool:
    """Whether no two ranges share a serial."""
    ordered = sorted(ranges)
    return all(a.block_id != b.block_id or a.last < b.first for a, b in itertools.pairwise(ordered))


def containing(runs: Iterable[Run], wanted: Iterable[SerialRange]) -> dict[Run, list[SerialRange]]:
    """For each wanted range the run wholly holding it, grouped by run; a range no single run
    holds is missing from the result (the caller counts what it got back)."""
    by_block: defaultdict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_block[run.block_id].append(run)
    found: defaultdict[Run, list[SerialRange]] = defaultdict(list)
    for item in wanted:
        for run in by_block.get(item.block_id, ()):
            if run.first <= item.first and item.last <= run.last:
                found[run].append(item)
                break
    return found


def cut(
    runs: Iterable[Run], wanted: Iterable[SerialRange]
) -> list[tuple[SerialRange, SerialRange]]:
    """Each wanted range cut after every serial where a run of its block ends inside it, as
    (piece, the wanted range it came from). A holder's serials may lie in touching runs (tonnes
    locked and released, or sent away and back, return as runs of their own), so a range they
    hold may span runs; each piece of it lies in one.

    >>> free = Place(7, "free", None)
    >>> [piece for piece, _ in cut([Run("B", 1, 4, free), Run("B", 5, 9, free)],
    ...                            [SerialRange("B", 3, 6)])]
    [SerialRange(block_id='B', first=3, last=4), SerialRange(block_id='B', first=5, last=6)]
    """
    ends: defaultdict[str, list[int]] = defaultdict(list)
    for run in runs:
        ends[run.block_id].append(run.last)
    for block_ends in ends.values():
        block_ends.sort()
    out: list[tuple[SerialRange, SerialRange]] = []
    for item in wanted:
        block_ends = ends.get(item.block_id, [])
        start = item.first
        low = bisect.bisect_left(block_ends, item.first)
        high = bisect.bisect_left(block_ends, item.last)  # a run ending at item.last needs no cut
        for end in block_ends[low:high]:
            out.append((SerialRange(item.block_id, start, end), item))
            start = end + 1
        out.append((SerialRange(item.block_id, start, item.last), item))
    return out


def plan(pieces: dict[Run, list[tuple[SerialRange, Place]]]) -> Plan:
    """Move each piece (disjoint ranges, each inside its run) to its place: what to delete, insert
    and record. What a run keeps stays where it was, one piece per gap."""
    result = Plan([], [], [])
    for run, moved in pieces.items():
        result.deleted.append((run.block_id, run.first))
        cursor = run.first
        for piece, target in sorted(moved, key=lambda item: item[0].first):
            if cursor < piece.first:
                result.inserted.append(Run(run.block_id, cursor, piece.first - 1, run.place))
            result.inserted.append(Run(run.block_id, piece.first, piece.last, target))
            result.moves.append(Move(run.block_id, piece.first, piece.last, run.place, target))
            cursor = piece.last + 1
        if cursor <= run.last:
            result.inserted.append(Run(run.block_id, cursor, run.last, run.place))
    return result


def to(
    target: Place, pieces: dict[Run, list[SerialRange]]
) -> dict[Run, list[tuple[SerialRange, Place]]]:
    """Every piece bound for the one place `target`."""
    return {run: [(piece, target) for piece in moved] for run, moved in pieces.items()}


def merged(ranges: Iterable[SerialRange]) -> list[SerialRange]:
    """Ranges sorted, with touching ones joined.

    >>> merged([SerialRange("B", 4, 6), SerialRange("B", 1, 3), SerialRange("C", 7, 7)])
    [SerialRange(block_id='B', first=1, last=6), SerialRange(block_id='C', first=7, last=7)]
    """
    out: list[SerialRange] = []
    for item in sorted(ranges):
        last = out[-1] if out else None
        if last is not None and last.block_id == item.block_id and last.last + 1 == item.first:
            out[-1] = SerialRange(item.block_id, last.first, item.last)
        else:
            out.append(item)
    return out
