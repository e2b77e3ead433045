"""The call auction's single price: the one that executes the most.

Used by the book at `Uncross`; pure arithmetic over the levels' totals so it can be reasoned about
and tested on its own.
"""

from __future__ import annotations


def uncross_price(
    bid_totals: dict[int, int], ask_totals: dict[int, int], reference_price_fen: int
) -> tuple[int, int]:
    """Return (price, executable volume) for levels given as {price: total quantity}.

    Among the distinct prices: the greatest volume min(demand >= P, supply <= P), then the least
    imbalance |demand - supply|, then the least distance to the reference, then the lower price.
    Volume 0 means nothing crosses (the price is then meaningless). O(L log L).

    >>> uncross_price({101: 5, 100: 5}, {99: 3, 100: 4}, 100)
    (100, 7)
    """
    demand = sum(bid_totals.values())  # demand at >= P, for the lowest P
    supply = 0  # supply at <= P
    best_key: tuple[int, int, int, int] | None = None
    best = (0, 0)
    for price in sorted(bid_totals.keys() | ask_totals.keys()):
        supply += ask_totals.get(price, 0)
        volume = min(demand, supply)
        key = (volume, -abs(demand - supply), -abs(price - reference_price_fen), -price)
        if best_key is None or key > best_key:
            best_key, best = key, (price, volume)
        demand -= bid_totals.get(price, 0)
    return best
