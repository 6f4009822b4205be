"""Flow classes (flows that always share one rate) and the two ways a message's loads are
derived: per-message overhead (a size-dependent class) and lockstep bundles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from astrasim.network.topology import Resource

Usage = tuple[tuple[int, float, int], ...]  # ((resource, coefficient, crossings), ...)
Part = tuple["FlowClass", int, Any]  # (class, flows, payload delivered when they are through)
# a class heap entry: (finish level, seq, bits, flows, parts, tag, payload delivered as a whole)


class FlowClass:
    """Flows sharing one load vector; they always have equal rates. A bundle class's flow is a
    group of member messages moving in lockstep (`width` of them)."""

    __slots__ = (
        "id",
        "usage",
        "rids",
        "n",
        "rate",
        "service",
        "t",
        "heap",
        "bits_done",
        "version",
        "width",
        "bundle",
        "sized",
        "top",
        "tgroups",
        "solo",
        "level",
    )

    def __init__(self, cid: int, usage: Usage, width: int = 1, bundle: bool = False, sized: bool = False):
        self.id = cid
        self.usage = usage
        self.rids = tuple(rid for rid, _, _ in usage)
        self.n = 0  # active flows
        self.rate = 0.0  # bit/s of each flow
        self.service = 0.0  # bits served per flow, as of time t
        self.t = 0.0
        self.heap: list = []  # entries, see Part
        self.bits_done = 0.0  # payload bits delivered per member (for per-resource accounting)
        self.version = 0  # bumped when the rate changes: older completion entries are stale
        self.width = width  # messages per flow
        self.bundle = bundle
        self.sized = sized  # a resource charges per-message overhead: use sized classes
        self.top = 0.0  # a bundle: the load of its most loaded resources (its rate is capacity / top)
        self.tgroups: list = []  # [trace group, how many of its resources it crosses]
        self.solo = False  # active and alone on its resources: rate without a max-min search
        self.level: tuple[int, int] | None = None  # (senders, share) of its collective step, see flows.py

    def advance(self, now: float) -> None:
        if now > self.t:
            self.service += self.rate * (now - self.t)
            self.t = now


def sized_usage(
    usage: Usage,
    bits: float,
    resources: Sequence[Resource],
    level: tuple[int, int] | None = None,
    rows: dict[int, int] | None = None,
) -> Usage:
    """The loads of a message of `bits` where resources charge per-message overhead: a crossing
    with coefficient a of a resource with `overhead_s` loads it a * (1 + overhead_s(bits, level) *
    C / bits) (the overhead's seconds at the nominal capacity C, scaled like the payload's airtime;
    `level`: the message's (senders, share) in its collective step, or None). A resource whose
    overhead follows its trace (`trace_overhead_s`: a Wi-Fi PHY rate that changes) uses the trace
    row in force when the message starts, `rows[rid]` (-1: before the trace, the nominal)."""
    out = []
    for rid, a, x in usage:
        r = resources[rid]
        f, cap = r.overhead_s, r.capacity_bps
        k = -1 if rows is None else rows.get(rid, -1)
        if k >= 0 and r.trace_overhead_s is not None and r.trace is not None:
            f, cap = r.trace_overhead_s[k], r.trace[k][1]
        out.append((rid, a if f is None or cap <= 0 else a * (1.0 + f(bits, level) * cap / bits), x))
    return tuple(out)


def lockstep_load(parts: Sequence[Part], resources: Sequence[Resource]) -> tuple[Usage, float] | None:
    """The summed loads of `parts` moving as one bundle and the largest of them, or None when
    lockstep would not be max-min fair: the resources differ in capacity or trace, or a member
    crosses none of the most loaded resources (alone it would run faster than the bundle)."""
    load: dict[int, list] = {}
    for c, k, _ in parts:
        for rid, a, x in c.usage:
            w = load.setdefault(rid, [0.0, 0])
            w[0] += k * a
            w[1] += k * x
    first = resources[next(iter(load))]
    if any(resources[r].capacity_bps != first.capacity_bps or resources[r].trace != first.trace for r in load):
        return None
    top = max(w for w, _ in load.values())
    if any(max(load[rid][0] for rid in c.rids) < top * (1 - 1e-12) for c, _, _ in parts):
        return None
    return tuple(sorted((r, w, x) for r, (w, x) in load.items())), top
