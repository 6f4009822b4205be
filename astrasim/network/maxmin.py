"""Max-min fair rates of a connected set of flow classes, by progressive filling.

Raise every class's per-flow rate together; when a resource saturates, freeze the classes
crossing it at that level; repeat with what is left. A heap of resource levels (residual
capacity / unfrozen load) finds the next resource to saturate; a resource's level only rises as
classes freeze elsewhere, so stale heap entries are skipped.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from astrasim.network.flowclass import FlowClass


def max_min(
    classes: Sequence[FlowClass],
    weight: dict[int, float],
    cap: Sequence[float],
    now: float,
    set_rates: Callable[[Sequence[FlowClass], float], None],
) -> None:
    """Rates of `classes` (brought up to `now`) on the resources listed in `weight` (all zero:
    filled here with the loads n * a), reported by `set_rates(classes, rate)`."""
    members: dict[int, list[FlowClass]] = {rid: [] for rid in weight}
    single = True  # every class crosses one resource only (mesh links, Wi-Fi air)
    for c in classes:
        c.advance(now)
        c.rate = -1.0
        n = c.n
        if len(c.usage) > 1:
            single = False
        for rid, a, _ in c.usage:
            weight[rid] += n * a
            members[rid].append(c)
    if single:  # each resource's classes share it alone: no search needed
        for rid, m in members.items():
            set_rates(m, cap[rid] / weight[rid])
        return
    if all(len(m) == 1 for m in members.values()):  # no resource shared by two classes
        for c in classes:
            set_rates((c,), min(cap[rid] / (c.n * a) for rid, a, _ in c.usage))
        return
    residual = {rid: cap[rid] for rid in weight}
    unfrozen = {rid: len(m) for rid, m in members.items()}
    level_of = {rid: residual[rid] / w for rid, w in weight.items()}
    heap = [(lv, rid) for rid, lv in level_of.items()]
    heapq.heapify(heap)
    left = len(classes)
    while left and heap:
        level, rid = heapq.heappop(heap)
        if not unfrozen[rid] or level != level_of[rid]:
            continue  # stale entry
        level = max(level, 0.0)
        frozen = [c for c in members[rid] if c.rate < 0.0]
        for c in frozen:
            c.rate = level
            left -= 1
            n = c.n
            for r2, a, _ in c.usage:
                unfrozen[r2] -= 1
                weight[r2] -= n * a
                residual[r2] -= n * a * level
                if r2 != rid and unfrozen[r2]:
                    lv = level_of[r2] = residual[r2] / max(weight[r2], 1e-300)
                    heapq.heappush(heap, (lv, r2))
        set_rates(frozen, level)
