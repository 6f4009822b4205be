"""Cheap lower bounds on a candidate's latency, from its op graph and network, without the engine.

A run cannot end before any of (each a relaxation of the engine's semantics, astrasim/opgraph.py):

* compute: the busiest device's compute, sum of its Computes' seconds / speed (a device runs one
  Compute at a time);
* link: the busiest network resource's load, bits x crossings of every message over its capacity (for
  a Wi-Fi medium the PHY rate, above any 802.11 efficiency; with a bandwidth trace its highest rate);
* critical path: Computes run as soon as their deps are done, on as many processors as they like;
  a Comm completes at a participant no earlier than that participant joined (its own deps done) plus
  the quickest message it takes part in (route latency + bits at the route's fastest capacity), and,
  for the collectives whose result needs everyone's data (all_gather, all_reduce, reduce_scatter,
  all_to_all, a gather's root, a p2p's receiver, a broadcast's receivers), no earlier than the
  contributors joined plus that message.

Generation (output_tokens = n > 1), from the graph of the prefill and the first decode step (its
cache is the shortest, so it is the cheapest step; decode costs grow with the cache):
* e2e >= the critical path of prefill + step 1, plus (n - 2) x step 1's own critical path (each later
  step starts from the token the previous one produced); and >= each device's prefill busy time +
  (n - 1) x its busy time in a step (likewise for each link's load);
* tpot = (e2e - ttft) / (n - 1) >= (n - 2) / (n - 1) x step 1's critical path: step 1 may overlap the
  prefill's tail on other devices (ASTRA's last device decodes while the first still finishes its
  last MLP), the later steps cannot (assumed: the prefill has ended before step 1 does).
The step terms keep a 1 % margin (STEP_SLACK). The tests and bench/bench_placement.py check
bound <= simulated value on every candidate they run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from astrasim.network.collectives import plan as collective_plan
from astrasim.network.collectives import resolve_algorithm
from astrasim.network.topology import Fabric
from astrasim.opgraph import Compute
from astrasim.pointrun import build_generation_graph, build_network, build_point_graph

WHOLE = ("all_gather", "all_reduce", "reduce_scatter", "all_to_all")
STEP_SLACK = 0.99  # later decode steps may cost a hair less than the first (profile interpolation, roofline
# factors per cache length): the step terms keep a 1 % margin


@dataclass(frozen=True)
class Bound:
    """Lower bounds (s) of one run: the largest of compute, link and critical path is `latency`.
    `busy` per device and `load` per network resource are kept to add runs up."""

    busy: tuple[float, ...]
    load: tuple[float, ...]
    path: float

    @property
    def compute(self) -> float:
        return max(self.busy, default=0.0)

    @property
    def link(self) -> float:
        return max(self.load, default=0.0)

    @property
    def latency(self) -> float:
        return max(self.compute, self.link, self.path)


@dataclass(frozen=True)
class WorkloadBound:
    """Bounds of a candidate's metrics (s). ttft: the prefill; step: the first decode step alone (from
    its token); two: the prefill and the first decode step together (the 2-token request)."""

    ttft: Bound
    step: Bound | None = None
    two: Bound | None = None
    output_tokens: int = 0

    def metric(self, name: str) -> float:
        n = self.output_tokens
        if self.step is None or n <= 1 or name not in ("tpot", "e2e"):
            return self.ttft.latency  # latency / ttft / p99 (no request is faster than one alone)
        k = STEP_SLACK
        if name == "tpot":  # steps 2..n-1 follow each other's token; step 1 may overlap the prefill's tail
            return (n - 2) / (n - 1) * k * self.step.path
        chain = self.two.path + (n - 2) * k * self.step.path
        work = max((a + (n - 1) * k * b for a, b in zip(self.ttft.busy, self.step.busy)), default=0.0)
        link = max((a + (n - 1) * k * b for a, b in zip(self.ttft.load, self.step.load)), default=0.0)
        return max(chain, work, link, self.ttft.latency)


class NetworkBound:
    """What a bound needs of a topology: routes, per-resource capacities (PHY rates for media)."""

    def __init__(self, topology):

        self.fabric = Fabric(topology)
        media = topology.graph.get("media", {})
        caps = []
        for r in self.fabric.resources:
            cap = r.capacity_bps
            if r.name in {str(m) for m in media}:
                cap = max(cap, media[next(m for m in media if str(m) == r.name)]["bandwidth_mbps"] * 1e6)
            if r.trace:
                cap = max(cap, max(rate for _, rate in r.trace))
            caps.append(cap)
        self.capacity = caps
        self._message: dict = {}

    def message(self, src: int, dsts: tuple[int, ...]) -> tuple[tuple[tuple[int, int], ...], float, float]:
        """(resource, crossings) pairs of a message, its route latency, its route's fastest capacity."""
        key = (src, dsts)
        got = self._message.get(key)
        if got is None:
            route = self.fabric.route(src, dsts)
            use = tuple((rid, crossings) for rid, _, crossings in route.usage)
            fastest = min((self.capacity[rid] for rid, _ in use), default=float("inf"))
            got = self._message[key] = (use, route.alpha, fastest)
        return got


@functools.lru_cache(maxsize=4096)
def _plan(collective: str, n: int, algorithm: str, root: int, multicast: bool):
    return collective_plan(collective, n, algorithm, root, multicast)


def graph_bound(graph, speeds, net: NetworkBound, only: str | None = None, split: str | None = None):
    """The bound of `graph`'s ops (only those whose id starts with `only`; the others count as done at
    time 0). With `split`: (the bound of the ops whose id does not start with it, the bound of all),
    in one pass (the ops left out by the first never feed it)."""
    n = graph.n_devices
    busy, busy_pre = [0.0] * n, [0.0] * n
    load, load_pre = [0.0] * len(net.capacity), [0.0] * len(net.capacity)
    done: dict[str, object] = {}  # compute id -> finish; comm id -> {device: completion}
    end = end_pre = 0.0
    default = net.fabric.default_algorithm
    multicast = net.fabric.broadcast
    index = {op.id: op for op in graph.ops}

    def at(dep: str, device: int) -> float:
        v = done.get(dep)
        if v is None:
            return 0.0
        if isinstance(v, dict):
            return v.get(device, 0.0)
        return v

    for op in graph.ops:
        if only is not None and not op.id.startswith(only):
            continue
        pre = split is not None and not op.id.startswith(split)
        if isinstance(op, Compute):
            t = op.seconds / speeds[op.device]
            busy[op.device] += t
            ready = max((at(d, op.device) for d in op.deps), default=0.0)
            done[op.id] = ready + t
            end = max(end, ready + t)
            if pre:
                busy_pre[op.device] += t
                end_pre = max(end_pre, ready + t)
            continue
        devs = op.devices
        join = {p: max((at(d, p) for d in op.deps if _belongs(index, d, p)), default=0.0) for p in devs}
        if len(devs) < 2:
            done[op.id] = join
            continue
        algo = resolve_algorithm(op.collective, op.algorithm, default)
        root = devs.index(op.root) if op.root is not None and op.root in devs else 0
        plan = _plan(op.collective, len(devs), algo, root, multicast)
        quickest = {p: float("inf") for p in devs}
        for src, dsts, frac in zip(plan.src, plan.dsts, plan.frac):
            bits = op.bits * frac
            use, alpha, fastest = net.message(devs[src], tuple(devs[d] for d in dsts))
            for rid, crossings in use:
                load[rid] += bits * crossings / net.capacity[rid]
                if pre:
                    load_pre[rid] += bits * crossings / net.capacity[rid]
            t = alpha + bits / fastest
            for p in (src, *dsts):
                quickest[devs[p]] = min(quickest[devs[p]], t)
        everyone = max(join.values())
        out = {}
        for p in devs:
            base = join[p]
            if op.collective in WHOLE or (op.collective == "gather" and p == devs[root]):
                base = max(base, everyone)
            elif op.collective == "p2p" and p == devs[1]:
                base = max(base, join[devs[0]])
            elif op.collective == "broadcast" and p != devs[root]:
                base = max(base, join[devs[root]])
            out[p] = base + (quickest[p] if quickest[p] != float("inf") else 0.0)
            end = max(end, out[p])
            if pre:
                end_pre = max(end_pre, out[p])
        done[op.id] = out
    whole = Bound(tuple(busy), tuple(load), end)
    return whole if split is None else (Bound(tuple(busy_pre), tuple(load_pre), end_pre), whole)


def _belongs(index: dict, dep: str, device: int) -> bool:
    """Whether a dep gates `device` (a Compute on it, a Comm it takes part in)."""
    op = index.get(dep)
    if op is None:
        return True
    if isinstance(op, Compute):
        return op.device == device
    return device in op.devices


def point_bound(point, net: NetworkBound | None = None) -> WorkloadBound:
    """Bounds of a scenario point's ttft, decode step and e2e (astrasim.pointrun builds its graphs)."""

    net = net or NetworkBound(build_network(point))
    speeds = point.device_speeds()
    if point.output_tokens <= 1:
        return WorkloadBound(graph_bound(build_point_graph(point), speeds, net), output_tokens=point.output_tokens)
    graph = build_generation_graph(replace(point, output_tokens=2))
    ttft, two = graph_bound(graph, speeds, net, split="tok1.")
    return WorkloadBound(ttft, graph_bound(graph, speeds, net, only="tok1."), two, point.output_tokens)
