"""A placement candidate: which owned devices, in what order, which strategy and knobs, on which
network, and the scenario Point that simulates it (astrasim.pointrun, the one point path).

Devices of one catalog kind are interchangeable, so a candidate's devices are a multiset of kinds
and its order one distinct permutation of it. The split inside a candidate is the existing one:
tokens, heads or columns in proportion to each device's speed and bounded by its memory
(`hardware.partition: proportional`, Fleet / bounded_split); pp gets contiguous layer ranges from
the dynamic programme of stages.py (its `stages` knob).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace

from astrasim.analysis.capacity import sweep_workload
from astrasim.errors import UserError
from astrasim.scenario import from_dict
from astrasim.scenario.fleet import fleet_text
from astrasim.scenario.grid import NetworkPoint
from astrasim.strategies import STRATEGIES, get

NO_NETWORK = "none"


@dataclass(frozen=True)
class Candidate:
    order: tuple[str, ...]  # catalog names, device 0 first
    strategy: str
    knobs: object  # the strategy's Knobs
    network: str  # network catalog name ("none" for one device)

    @property
    def devices(self) -> int:
        return len(self.order)

    def label(self) -> str:
        hw = fleet_text(self.order)
        net = "" if self.network == NO_NETWORK else f" on {self.network}"
        return f"{hw}{net}, {get(self.strategy).label(self.knobs)}"


def distinct_orders(counts: dict[str, int]) -> Iterator[tuple[str, ...]]:
    """Every distinct ordering of a multiset of kinds (kinds taken in the dict's order)."""
    names = list(counts)
    total = sum(counts.values())

    def rec(left: dict[str, int], prefix: tuple[str, ...]):
        if len(prefix) == total:
            yield prefix
            return
        for name in names:
            if left[name] > 0:
                left[name] -= 1
                yield from rec(left, prefix + (name,))
                left[name] += 1

    yield from rec(dict(counts), ())


def subsets(inventory: dict[str, int]) -> Iterator[dict[str, int]]:
    """Every non-empty sub-multiset of the inventory (counts per kind)."""
    names = list(inventory)
    for counts in itertools.product(*(range(inventory[n] + 1) for n in names)):
        if sum(counts):
            yield {n: c for n, c in zip(names, counts) if c}


def base_point(plan, first_device: str):
    """The template Point of a plan: its model, tokens, generation, workload and sweep options."""

    extra = dict(plan.sweep)
    hardware = {**extra.pop("hardware", {}), "device": [first_device]}
    data = {
        **extra,
        "name": plan.name,
        "models": [plan.model],
        "devices": [1],
        "tokens": [plan.tokens] if plan.tokens else None,
        "output_tokens": [plan.output_tokens],
        "strategies": [{"name": "single"}],
        "hardware": hardware,
        "network": {"topology": "ideal"},
        **sweep_workload(plan),
    }
    sc = from_dict(data, base_dir=plan.base_dir or ".", source="plan")
    points = sc.points()
    if len(points) != 1:
        raise UserError(
            "plan.sweep must give one value per field (the search chooses devices, strategies and networks)",
            field="plan.sweep",
        )
    return points[0]


def network_point(option):
    """The scenario NetworkPoint of a network catalog entry."""

    return NetworkPoint(
        option.kind,
        float(option.bandwidth_mbps),
        None if option.latency_s is None else float(option.latency_s),
        None if option.efficiency is None else float(option.efficiency),
    )


def to_point(base, cand: Candidate, networks: dict):
    """The Point of a candidate (the same fields a sweep over its fleet would give)."""

    s = get(cand.strategy)
    net = NetworkPoint("ideal", 1e6) if cand.network == NO_NETWORK else network_point(networks[cand.network])
    p = replace(
        base,
        strategy=cand.strategy,
        knobs=cand.knobs,
        devices=cand.devices,
        network=net,
        speeds=None,
        partition="proportional",
    )
    if s.single_device or len(set(cand.order)) == 1:
        return replace(p, fleet=None, device=cand.order[0], hardware=cand.order[0])
    return replace(p, fleet=cand.order, device=None, hardware=fleet_text(cand.order))


def strategy_variants(plan) -> list[tuple[str, object]]:
    """(name, knobs) of every strategy variant the plan allows (default: every strategy's defaults)."""

    if plan.strategies is None:
        return [(name, s.knobs()) for name, s in STRATEGIES.items()]
    return [(e.name, k) for e in plan.strategies for k in e.variants()]


def enumerate_candidates(plan, networks: dict, speed_rank: dict[str, float]) -> Iterator[Candidate]:
    """Every candidate of the plan: single on each kind; each sub-multiset of two or more devices in
    each distinct order, on each network serving that many, with each multi-device variant. Kinds
    are taken fastest first (speed_rank: lower is faster) so the first order is the usual one."""
    avail = plan.available()
    kinds = sorted(avail, key=lambda k: (speed_rank.get(k, 0.0), k))
    inv = {k: avail[k] for k in kinds}
    variants = strategy_variants(plan)
    singles = [(n, k) for n, k in variants if get(n).single_device]
    multis = [(n, k) for n, k in variants if not get(n).single_device]
    for kind in kinds:
        for name, knobs in singles:
            yield Candidate((kind,), name, knobs, NO_NETWORK)
    for counts in subsets(inv):
        n = sum(counts.values())
        if n < 2:
            continue
        for order in distinct_orders(counts):
            for net in plan.networks:
                if networks[net].max_devices < n:
                    continue
                for name, knobs in multis:
                    yield Candidate(order, name, knobs, net)
