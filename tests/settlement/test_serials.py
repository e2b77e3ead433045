"""Properties of the pure serial-range arithmetic in `settlement.serials`, against brute force.

Every property is checked serial by serial: the runs and ranges are expanded into sets or maps of
(block, serial) and compared with what the function claims, so an off-by-one at either end of a
run, a lost or doubled serial, or a piece landing in the wrong place shows up directly.

- `take` takes exactly the first N serials in the runs' order, cutting each run at its low end,
  or returns None when the runs hold fewer.
- `plan` applied to a partition keeps it a partition (no gap, no overlap, same total); moved
  serials land in their target place, the others stay where they were, and the moves list
  exactly the moved serials with where they came from and went.
- `merged` (of disjoint ranges) is sorted, disjoint, non-touching and covers the same serials.
- `disjoint` agrees with counting serials.
- `containing` files a wanted range under a run exactly when that run wholly holds it.
- `cut` splits each wanted range into pieces that partition it, so that `containing` finds a
  run for every piece exactly when the runs together hold every serial of the range.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.serials import Move, Place, Run, containing, cut, disjoint, merged, plan, take, to
from settlement.values import SerialRange

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)

BLOCKS = ("SZCER-A-2021-1", "SZCER-A-2022-1", "SZCER-B-2021-1")
PLACES = (
    Place(100, "free", None),
    Place(101, "free", None),
    Place(100, "locked", 7),
    Place(100, "locked", 8),
    Place(102, "retired", None),
)

Serial = tuple[str, int]


def serials_of(items: Iterable[Run | Move | SerialRange]) -> list[Serial]:
    """Every serial of `items`, in their order (duplicates kept)."""
    return [(item.block_id, n) for item in items for n in range(item.first, item.last + 1)]


def places_of(runs: Iterable[Run]) -> dict[Serial, Place]:
    """Serial -> place; asserts that no serial is in two runs."""
    out: dict[Serial, Place] = {}
    for run in runs:
        assert run.first <= run.last, run
        for serial in serials_of([run]):
            assert serial not in out, f"{serial} is in two runs"
            out[serial] = run.place
    return out


@st.composite
def partitions(draw: st.DrawFn, blocks: int = 1) -> tuple[dict[str, int], list[Run]]:
    """Blocks of 1..40 serials, each cut into runs 1..N with random places: (sizes, runs)."""
    sizes: dict[str, int] = {}
    runs: list[Run] = []
    for block_id in BLOCKS[:blocks]:
        size = draw(st.integers(1, 40))
        sizes[block_id] = size
        cuts = sorted(draw(st.sets(st.integers(2, size), max_size=6)) if size > 1 else set())
        starts = [1, *cuts]
        ends = [cut - 1 for cut in cuts] + [size]
        runs += [
            Run(block_id, first, last, draw(st.sampled_from(PLACES)))
            for first, last in zip(starts, ends, strict=True)
        ]
    return sizes, runs


@st.composite
def ranges_in(draw: st.DrawFn, first: int, last: int) -> list[tuple[int, int]]:
    """Disjoint, sorted sub-ranges of first..last (possibly none)."""
    points = sorted(draw(st.sets(st.integers(first, last), max_size=6)))
    # Pair the points up: each pair bounds one piece, a lone point is a one-serial piece.
    out: list[tuple[int, int]] = []
    index = 0
    while index < len(points):
        if index + 1 < len(points) and draw(st.booleans()):
            out.append((points[index], points[index + 1]))
            index += 2
        else:
            out.append((points[index], points[index]))
            index += 1
    return out


def well_formed_ranges(max_size: int = 8) -> st.SearchStrategy[list[SerialRange]]:
    """Any ranges first <= last over a few small blocks, overlapping or not."""
    one = st.builds(
        lambda block_id, first, length: SerialRange(block_id, first, first + length),
        st.sampled_from(BLOCKS),
        st.integers(1, 30),
        st.integers(0, 10),
    )
    return st.lists(one, max_size=max_size)


# -- take --------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(partitions(blocks=3), st.data())
def test_take_takes_exactly_the_first_serials_in_order(
    partition: tuple[dict[str, int], list[Run]], data: st.DataObject
) -> None:
    _, runs = partition
    # callers hand over runs in their own order (vintage, block, serial): any order must do
    runs = data.draw(st.permutations(runs))
    total = len(serials_of(runs))
    quantity = data.draw(st.integers(0, total + 3))
    taken = take(runs, quantity)
    if quantity > total:
        assert taken is None
        return
    assert taken is not None
    # in the runs' order, one piece per run it draws on, each cut at the run's low end
    assert list(taken) == runs[: len(taken)]
    for run, pieces in taken.items():
        assert len(pieces) == 1
        assert pieces[0].block_id == run.block_id and pieces[0].first == run.first
        assert pieces[0].last <= run.last
    flat = [piece for pieces in taken.values() for piece in pieces]
    assert serials_of(flat) == serials_of(runs)[:quantity]


def test_take_of_nothing_held_is_none() -> None:
    assert take([], 1) is None
    assert take([], 0) == {}


# -- plan --------------------------------------------------------------------------------------


@st.composite
def moves_on(draw: st.DrawFn, runs: list[Run]) -> dict[Run, list[tuple[SerialRange, Place]]]:
    """For some of `runs`, disjoint pieces inside them, each bound for some place."""
    pieces: dict[Run, list[tuple[SerialRange, Place]]] = {}
    for run in runs:
        if not draw(st.booleans()):
            continue
        bounds = draw(ranges_in(run.first, run.last))
        if not bounds:
            continue
        chosen = [
            (SerialRange(run.block_id, first, last), draw(st.sampled_from(PLACES)))
            for first, last in bounds
        ]
        # the callers do not promise any order of pieces within a run
        pieces[run] = draw(st.permutations(chosen))
    return pieces


def assert_partition(sizes: dict[str, int], runs: list[Run]) -> None:
    """`runs` cover each block's 1..N exactly once."""
    held = places_of(runs)  # asserts no overlap
    everything = [
        (block_id, n) for block_id in sorted(sizes) for n in range(1, sizes[block_id] + 1)
    ]
    assert sorted(held) == everything


@PROPERTY_SETTINGS
@given(partitions(blocks=2).flatmap(lambda p: st.tuples(st.just(p), moves_on(p[1]))))
def test_plan_keeps_a_partition_and_moves_exactly_the_pieces(
    case: tuple[tuple[dict[str, int], list[Run]], dict[Run, list[tuple[SerialRange, Place]]]],
) -> None:
    (sizes, runs), pieces = case
    before = places_of(runs)
    result = plan(pieces)

    # it deletes exactly the runs it cuts, by their key, and the others stay as they were
    assert sorted(result.deleted) == sorted((run.block_id, run.first) for run in pieces)
    kept = [run for run in runs if (run.block_id, run.first) not in set(result.deleted)]
    after_runs = kept + result.inserted
    assert all(run.first <= run.last for run in result.inserted)
    assert_partition(sizes, after_runs)
    after = places_of(after_runs)

    target = {
        serial: place
        for moved in pieces.values()
        for piece, place in moved
        for serial in serials_of([piece])
    }
    for serial, place in before.items():
        assert after[serial] == target.get(serial, place), serial

    # one move per piece, from the run's place to the piece's target, and nothing else
    expected_moves = sorted(
        (piece.block_id, piece.first, piece.last, run.place, place)
        for run, moved in pieces.items()
        for piece, place in moved
    )
    assert sorted(tuple(move) for move in result.moves) == expected_moves
    assert sorted(serials_of(result.moves)) == sorted(target)


@PROPERTY_SETTINGS
@given(partitions(blocks=3), st.data())
def test_take_then_plan_moves_the_first_serials_to_one_place(
    partition: tuple[dict[str, int], list[Run]], data: st.DataObject
) -> None:
    """The composition the ledger uses for a transfer by quantity."""
    sizes, runs = partition
    quantity = data.draw(st.integers(1, len(serials_of(runs))))
    destination = Place(999, "free", None)
    taken = take(runs, quantity)
    assert taken is not None
    result = plan(to(destination, taken))
    kept = [run for run in runs if (run.block_id, run.first) not in set(result.deleted)]
    assert_partition(sizes, kept + result.inserted)
    after = places_of(kept + result.inserted)
    moved = set(serials_of(runs)[:quantity])
    before = places_of(runs)
    for serial in before:
        assert after[serial] == (destination if serial in moved else before[serial])
    assert sum(move.last - move.first + 1 for move in result.moves) == quantity


def test_plan_of_nothing_does_nothing() -> None:
    assert plan({}) == ([], [], [])


# -- merged ------------------------------------------------------------------------------------


@st.composite
def disjoint_ranges(draw: st.DrawFn) -> list[SerialRange]:
    """Disjoint ranges (touching allowed) over a few blocks, shuffled."""
    out: list[SerialRange] = []
    for block_id in BLOCKS:
        # split a random set of serials into maximal runs, then cut some runs further so that
        # touching ranges occur
        serials = sorted(draw(st.sets(st.integers(1, 40), max_size=25)))
        for first, last in _runs_of(serials):
            cuts: list[int] = []
            if first < last:
                cuts = sorted(draw(st.sets(st.integers(first + 1, last), max_size=3)))
            starts = [first, *cuts]
            ends = [cut - 1 for cut in cuts] + [last]
            out += [SerialRange(block_id, a, b) for a, b in zip(starts, ends, strict=True)]
    return draw(st.permutations(out))


def _runs_of(serials: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in serials:
        if out and out[-1][1] + 1 == n:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


@PROPERTY_SETTINGS
@given(disjoint_ranges())
def test_merged_is_sorted_disjoint_not_touching_and_covers_the_same_serials(
    ranges: list[SerialRange],
) -> None:
    out = merged(ranges)
    assert out == sorted(out)
    for a, b in itertools.pairwise(out):
        # apart, not merely disjoint: touching ranges would have been joined
        assert a.block_id != b.block_id or a.last + 1 < b.first, (a, b)
    assert all(item.first <= item.last for item in out)
    assert sorted(serials_of(out)) == sorted(serials_of(ranges))


# -- disjoint ----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(well_formed_ranges())
def test_disjoint_agrees_with_counting_serials(ranges: list[SerialRange]) -> None:
    counts = Counter(serials_of(ranges))
    assert disjoint(ranges) == all(count == 1 for count in counts.values())


@PROPERTY_SETTINGS
@given(disjoint_ranges())
def test_disjoint_ranges_are_disjoint(ranges: list[SerialRange]) -> None:
    # the brute-force agreement above rarely draws large disjoint sets; this makes sure of them
    assert disjoint(ranges)


# -- containing --------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(partitions(blocks=2), st.data())
def test_containing_files_a_range_under_the_run_that_wholly_holds_it(
    partition: tuple[dict[str, int], list[Run]], data: st.DataObject
) -> None:
    _, all_runs = partition
    # the runs searched are some of a partition (the holder's free runs, say): disjoint, in any
    # order, with gaps where other holders' runs were
    runs = data.draw(st.lists(st.sampled_from(all_runs), unique=True))
    wanted = data.draw(well_formed_ranges(max_size=10))
    found = containing(runs, wanted)
    for run in runs:
        holds = [
            item
            for item in wanted
            if item.block_id == run.block_id and run.first <= item.first and item.last <= run.last
        ]
        assert found.get(run, []) == holds, run
    # nothing filed under a run that was not searched, and each item at most once
    assert set(found) <= set(runs)
    filed = Counter(item for items in found.values() for item in items)
    assert all(filed[item] <= Counter(wanted)[item] for item in filed)


# -- cut ---------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(partitions(blocks=2), st.data())
def test_cut_pieces_lie_in_one_run_each_exactly_when_the_runs_hold_the_range(
    partition: tuple[dict[str, int], list[Run]], data: st.DataObject
) -> None:
    _, all_runs = partition
    runs = data.draw(st.lists(st.sampled_from(all_runs), unique=True))
    wanted = data.draw(well_formed_ranges(max_size=6))
    pieces = cut(runs, wanted)
    # range by range, in order
    assert pieces == [piece for item in wanted for piece in cut(runs, [item])]
    held = places_of(runs)
    for item in wanted:
        mine = [piece for piece, source in cut(runs, [item])]
        assert all(source == item for _, source in cut(runs, [item]))
        # the pieces of a range partition it, in order
        assert serials_of(mine) == serials_of([item])
        assert all(piece.first <= piece.last for piece in mine)
        # every piece lies in one run exactly when the runs hold every serial of the range
        found = containing(runs, mine)
        filed = [piece for items in found.values() for piece in items]
        assert (sorted(filed) == sorted(mine)) == all(
            serial in held for serial in serials_of([item])
        ), (item, mine)
