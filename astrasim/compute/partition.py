"""Uneven partitions: items (tokens, heads, columns, layers) split in proportion to the devices'
speeds, bounded by what each device's memory can take."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

from astrasim.compute.roofline import Fleet


class HasFleet(Protocol):
    """What a split reads of a strategy's BuildOptions: the point's per-device hardware."""

    @property
    def fleet(self) -> Fleet | None: ...


def proportional_split(
    total: int, weights: Sequence[float], minimum: int = 1, maximum: list[int] | None = None
) -> list[int]:
    """Split `total` items (tokens, heads, columns, layers) in proportion to `weights`, each part at
    least `minimum` and at most maximum[i] (memory bound; the excess goes to the others). Largest
    remainder, ties to the lower index, so equal weights give torch.tensor_split's split exactly."""
    n = len(weights)
    if n == 0 or any(w <= 0 for w in weights):
        raise ValueError("partition weights must be positive, one per device")
    cap = list(maximum) if maximum is not None else [total] * n
    if total < minimum * n or sum(cap) < total or any(c < minimum for c in cap):
        raise ValueError(f"cannot split {total} into {n} parts of {minimum}..{cap}")
    parts = [0] * n
    free = list(range(n))
    left = total
    while True:  # water-filling: clamp parts over their cap, share the rest among the others
        wsum = sum(weights[i] for i in free)
        ideal = {i: left * weights[i] / wsum for i in free}
        over = [i for i in free if max(minimum, ideal[i]) > cap[i]]
        if not over:
            break
        for i in over:  # the clamped part still leaves every other free device its minimum
            parts[i] = min(cap[i], left - minimum * (len(free) - 1))
            left -= parts[i]
            free.remove(i)
    base = {i: max(minimum, int(math.floor(ideal[i]))) for i in free}
    # give back what the minimum took from the largest ideal shares, then hand out the remainder
    while sum(base.values()) > left:
        j = max((i for i in free if base[i] > minimum), key=lambda i: (base[i] - ideal[i], -i))
        base[j] -= 1
    order = sorted(free, key=lambda i: (-(ideal[i] - base[i]), i))
    k = 0
    while sum(base.values()) < left:
        i = order[k % len(order)]
        if base[i] < cap[i]:
            base[i] += 1
        k += 1
    for i in free:
        parts[i] = base[i]
    return parts


def bounded_split(
    total: int, n: int, options: HasFleet, bytes_at: Callable[[int, int], float], minimum: int = 1
) -> list[int]:
    """`total` items over n devices in proportion to the fleet's shares (even without), each device's
    part capped so that its footprint bytes_at(device, part) stays within its capacity. When the
    capacities cannot hold everything the uncapped split is returned (the point then does not fit)."""
    fleet = options.fleet
    if fleet is None or not fleet.shares:
        return proportional_split(total, [1] * n, minimum)
    weights = list(fleet.shares)
    caps = []
    for d in range(n):
        cap = fleet.capacity[d] if d < len(fleet.capacity) else None
        if cap is None:
            caps.append(total)
            continue
        lo, hi = minimum - 1, total  # the largest part whose footprint fits: bytes_at grows with the part
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if bytes_at(d, mid) <= cap else (lo, mid - 1)
        caps.append(lo)
    if sum(caps) < total or min(caps) < minimum:
        return proportional_split(total, weights, minimum)
    return proportional_split(total, weights, minimum, caps)
