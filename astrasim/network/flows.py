"""Flow-level network on SimPy: max-min fair sharing of link capacities and medium airtime.

Model. A resource r (a link direction, a half-duplex link, a shared medium) has a goodput
C_r(t) in bit/s, piecewise constant in time (bandwidth traces). A flow f loads resource r
with a coefficient a_fr (crossings of r, weighted by airtime per bit on a medium: a message
crossing the Wi-Fi air twice consumes airtime twice). Active flows get the max-min fair
rates x_f subject to sum_f a_fr x_f <= C_r for every r (progressive filling: raise all
rates together; freeze the flows of the first resource to saturate; repeat). A message
first waits its per-message latency alpha (occupying nothing), then its bits flow; it is
delivered when they are through. Rates are recomputed when flows start or finish or a
trace changes a capacity: once per simulated instant, never once per flow.

Speed.
* Flows with the same loads form a class; max-min rates depend only on per-class flow
  counts, so rate computations cost O(classes), not O(flows). Inside a class all flows have
  one rate, so the class keeps a cumulative per-flow "service" S (bits served per flow): a
  flow injected at S = s0 finishes when S reaches s0 + bits. Each class is a heap keyed by
  that level; flows with equal keys (same size, same start: a collective's messages) are one
  heap entry and finish in one event.
* Max-min allocations decompose over connected components of the (resource, class) graph,
  so a change re-solves only the component it touches; classes elsewhere keep their rates
  and their services advance lazily (S is brought up to date only when the class is touched).
* One SimPy event at a time wakes the network, scheduled at priority 2 so that it runs after
  every ordinary event of the same instant (coalescing): a global heap of next completion
  times (stale entries skipped), a heap of pending activations and the trace breakpoints
  decide when.
"""

from __future__ import annotations

import heapq
import math
from itertools import count
from typing import Any, Callable, Sequence

import simpy

from astrasim.network.topology import Resource

_INF = math.inf
_SETTLE = 2  # SimPy priority below NORMAL (1): after every ordinary event of the instant
_REL = 1e-9  # a flow within this relative amount of its finish level counts as finished


class FlowClass:
    """Flows sharing one load vector; they always have equal rates."""

    __slots__ = ("id", "usage", "n", "rate", "service", "t", "heap", "bits_done", "version")

    def __init__(self, cid: int, usage: tuple[tuple[int, float, int], ...]):
        self.id = cid
        self.usage = usage  # ((resource, coefficient, crossings), ...)
        self.n = 0  # active flows
        self.rate = 0.0  # bit/s of each flow
        self.service = 0.0  # bits served per flow, as of time t
        self.t = 0.0
        self.heap: list = []  # (finish level, seq, bits, count, payload)
        self.bits_done = 0.0  # payload bits delivered (for per-resource accounting)
        self.version = 0  # bumped when the rate changes: older completion entries are stale

    def advance(self, now: float) -> None:
        if now > self.t:
            self.service += self.rate * (now - self.t)
            self.t = now


class FlowNetwork:
    """Carries messages over `resources` and calls `on_delivered(payload)` when each is through.

    `send(cls, bits, alpha, payload, count=1)`: `count` identical flows of `bits` each, all
    delivered together with one call (a group of equal messages started at once).
    """

    def __init__(self, env: simpy.Environment, resources: Sequence[Resource],
                 on_delivered: Callable[[Any], None]):
        self.env = env
        self.resources = list(resources)
        self.on_delivered = on_delivered
        self.cap = [r.capacity_bps for r in self.resources]
        self.users: list[dict[int, FlowClass]] = [{} for _ in self.resources]  # active classes per resource
        # resources sharing one trace move together: (trace, resources, index in force, active loads)
        groups: dict[tuple, list[int]] = {}
        for rid, r in enumerate(self.resources):
            if r.trace:
                groups.setdefault(r.trace, []).append(rid)
        self._tgroups = [[tr, rids, -1, 0] for tr, rids in groups.items()]
        self._tgroup_of = {rid: g for g in self._tgroups for rid in g[1]}
        self._classes: dict[tuple, FlowClass] = {}
        self._done: list = []  # (finish time, seq, class, version)
        self._acts: list = []  # (activation time, seq, class, bits, count, payload)
        self._dirty: set[int] = set()
        self._seq = count()
        self._wake_t = _INF
        self._wake_ev: simpy.Event | None = None
        self._busy = False
        self.recomputes = 0
        self.bits_delivered = 0.0
        self.active_flows = 0
        self._apply_traces(env.now)

    # ------------------------------------------------------------------ public
    def flow_class(self, usage: tuple[tuple[int, float, int], ...]) -> FlowClass:
        c = self._classes.get(usage)
        if c is None:
            if not usage:
                raise ValueError("a flow must cross at least one resource")
            c = self._classes[usage] = FlowClass(len(self._classes), usage)
        return c

    def send(self, cls: FlowClass, bits: float, alpha: float, payload: Any, count: int = 1) -> None:
        t = self.env.now + alpha
        heapq.heappush(self._acts, (t, next(self._seq), cls, bits, count, payload))
        if not self._busy and t < self._wake_t:
            self._schedule(t)

    def link_bits(self) -> dict[str, float]:
        """Bits carried per resource, each crossing counted."""
        out = {r.name: 0.0 for r in self.resources}
        for c in self._classes.values():
            for rid, _, crossings in c.usage:
                out[self.resources[rid].name] += c.bits_done * crossings
        return out

    # ------------------------------------------------------------------ internals
    def _schedule(self, t: float) -> None:
        ev = simpy.Event(self.env)
        ev._ok = True
        ev._value = None
        ev.callbacks.append(self._settle)
        self.env.schedule(ev, _SETTLE, max(t - self.env.now, 0.0))
        self._wake_ev, self._wake_t = ev, t

    def _apply_traces(self, now: float) -> None:
        for g in self._tgroups:
            tr, rids, k = g[0], g[1], g[2]
            while k + 1 < len(tr) and tr[k + 1][0] <= now:
                k += 1
            if k != g[2]:
                g[2] = k
                for rid in rids:
                    self.cap[rid] = tr[k][1]
                    if self.users[rid]:
                        self._dirty.add(rid)

    def _activate(self, c: FlowClass, k: int) -> None:
        if not c.n:
            for rid, _, _ in c.usage:
                self.users[rid][c.id] = c
                g = self._tgroup_of.get(rid)
                if g is not None:
                    g[3] += 1
        c.n += k
        self.active_flows += k
        for rid, _, _ in c.usage:
            self._dirty.add(rid)

    def _finish(self, c: FlowClass, now: float, out: list) -> None:
        """Deliver every flow of class c that is through at `now`."""
        c.advance(now)
        heap, s, rate = c.heap, c.service, c.rate
        k0 = c.n
        while heap:
            level = heap[0][0]
            rem = level - s
            if rem > _REL * level and (rate <= 0.0 or now + rem / rate > now):
                break
            _, _, bits, k, payload = heapq.heappop(heap)
            c.n -= k
            c.bits_done += bits * k
            self.bits_delivered += bits * k
            out.append(payload)
        if c.n == k0:
            return
        self.active_flows -= k0 - c.n
        for rid, _, _ in c.usage:
            self._dirty.add(rid)
            if not c.n:
                del self.users[rid][c.id]
                g = self._tgroup_of.get(rid)
                if g is not None:
                    g[3] -= 1
        if not c.n:
            c.version += 1  # drop its completion entries

    def _settle(self, ev: simpy.Event) -> None:
        if ev is not self._wake_ev:
            return  # superseded by an earlier wake-up
        self._wake_ev, self._wake_t = None, _INF
        self._busy = True
        now = self.env.now
        if self._tgroups:
            self._apply_traces(now)
        done, acts = self._done, self._acts
        while True:
            delivered: list = []
            while done and done[0][0] <= now:  # completions due
                _, _, c, version = heapq.heappop(done)
                if version == c.version:
                    c.version += 1
                    self._finish(c, now, delivered)
                    if c.n and c.rate > 0.0:
                        self._push_done(c)
            while acts and acts[0][0] <= now:  # activations (alpha elapsed)
                _, seq, c, bits, k, payload = heapq.heappop(acts)
                if bits <= 0.0:
                    delivered.append(payload)
                    continue
                if c.n:
                    c.advance(now)
                else:
                    c.service, c.t, c.rate = 0.0, now, 0.0
                heapq.heappush(c.heap, (c.service + bits, seq, bits, k, payload))
                self._activate(c, k)
            if not delivered:
                break
            for payload in delivered:  # may send more: zero-alpha ones join this settle
                self.on_delivered(payload)
        if self._dirty:
            self._recompute(now)
        nxt = acts[0][0] if acts else _INF
        while done and done[0][3] != done[0][2].version:
            heapq.heappop(done)
        if done and done[0][0] < nxt:
            nxt = done[0][0]
        for g in self._tgroups:
            if g[3] and g[2] + 1 < len(g[0]) and g[0][g[2] + 1][0] < nxt:
                nxt = g[0][g[2] + 1][0]
        self._busy = False
        if nxt < _INF:
            self._schedule(nxt)

    def _push_done(self, c: FlowClass) -> None:
        t = c.t + (c.heap[0][0] - c.service) / c.rate
        heapq.heappush(self._done, (t, next(self._seq), c, c.version))

    def _recompute(self, now: float) -> None:
        """Max-min fair rates, by progressive filling, of the classes connected to a change."""
        self.recomputes += 1
        users, cap = self.users, self.cap
        comp: dict[int, FlowClass] = {}
        weight: dict[int, float] = {}
        stack = [rid for rid in self._dirty if users[rid]]
        self._dirty.clear()
        for rid in stack:
            weight[rid] = 0.0
        while stack:  # the connected component(s) of the changed resources
            rid = stack.pop()
            for c in users[rid].values():
                if c.id in comp:
                    continue
                comp[c.id] = c
                for r2, _, _ in c.usage:
                    if r2 not in weight:
                        weight[r2] = 0.0
                        stack.append(r2)
        if not comp:
            return
        members: dict[int, list[FlowClass]] = {rid: [] for rid in weight}
        single = True  # every class crosses one resource only (mesh links, Wi-Fi air)
        for c in comp.values():
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
                self._set_rates(m, cap[rid] / weight[rid])
            return
        if all(len(m) == 1 for m in members.values()):  # no resource shared by two classes
            for c in comp.values():
                self._set_rates((c,), min(cap[rid] / (c.n * a) for rid, a, _ in c.usage))
            return
        residual = {rid: cap[rid] for rid in weight}
        unfrozen = {rid: len(m) for rid, m in members.items()}
        level_of = {rid: residual[rid] / w for rid, w in weight.items()}
        heap = [(lv, rid) for rid, lv in level_of.items()]
        heapq.heapify(heap)
        left = len(comp)
        while left and heap:
            level, rid = heapq.heappop(heap)
            if not unfrozen[rid] or level != level_of[rid]:
                continue  # stale entry (a resource's level only rises as flows freeze)
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
            self._set_rates(frozen, level)

    def _set_rates(self, classes, rate: float) -> None:
        for c in classes:
            c.rate = rate
            c.version += 1
            if rate > 0.0:
                self._push_done(c)
