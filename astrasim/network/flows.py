"""Flow-level network: max-min fair sharing of link capacities and medium airtime.

Model. A resource r (a link direction, a half-duplex link, a shared medium) has a goodput
C_r(t) in bit/s, piecewise constant in time (bandwidth traces). A flow f loads resource r
with a coefficient a_fr (crossings of r, weighted by airtime per bit on a medium: a message
crossing the Wi-Fi air twice consumes airtime twice). Active flows get the max-min fair
rates x_f subject to sum_f a_fr x_f <= C_r for every r (progressive filling: raise all
rates together; freeze the flows of the first resource to saturate; repeat). A message
first waits its per-message latency alpha (occupying nothing), then its bits flow; it is
delivered when they are through. Rates are recomputed when flows start or finish or a
trace changes a capacity: once per simulated instant, never once per flow.

Per-message overhead. A resource may carry `overhead_s(payload_bits, level)`: extra seconds of
it (at its nominal capacity) that each crossing of a message occupies, e.g. per-frame airtime on
a medium; `level` is the flow class's (senders, share) of its collective step (Plan.levels: on
Wi-Fi, who contends for the channel and how many of its sender's messages share an A-MPDU), or
None. A message of b bits then loads r with a_fr * (1 + overhead_s(b, level) * C_r / b)
instead of a_fr: its class depends on its size. Without the hook nothing changes. With a trace,
a resource may carry one overhead per trace row (`trace_overhead_s`: Wi-Fi's airtime at each
row's PHY rate); a message's load then uses the row in force when it starts (and keeps it).

Speed.
* Flows with the same loads form a class; max-min rates depend only on per-class flow
  counts, so rate computations cost O(classes), not O(flows). Inside a class all flows have
  one rate, so the class keeps a cumulative per-flow "service" S (bits served per flow): a
  flow injected at S = s0 finishes when S reaches s0 + bits. Each class is a heap keyed by
  that level; flows with equal keys (same size, same start) are one entry, one event.
* Lockstep bundles. Equal messages sent together on different classes (a ring step over all
  positions, a fan-out over a mesh's links) travel as one bundle flow when that is exact: the
  bundle's resources carry nothing else (checked as it starts) and every member crosses one
  of the bundle's most loaded resources (checked once per shape), so all members would get
  the same max-min rate. A flow that later starts on one of its resources splits the bundle
  into its members first, with the bits each has left.
* Solo classes. A class alone on its resources (bundles always are) gets its bottleneck's
  capacity over its load, with no search; it joins the search when another class arrives.
* Max-min allocations decompose over connected components of the (resource, class) graph,
  so a change re-solves only the component it touches (maxmin.py); classes elsewhere keep
  their rates and their services advance lazily (S is brought up to date when touched).
* One wake-up at a time, at the priority the owner of the clock gives (the engine's SETTLE:
  after every ordinary event of the same instant, coalescing them). A heap of next completion
  times (stale entries skipped), a heap of pending activations and the trace breakpoints decide when.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from itertools import count
from typing import Any, Protocol

from astrasim.network.flowclass import FlowClass, Part, Usage, lockstep_load, sized_usage
from astrasim.network.maxmin import max_min
from astrasim.network.topology import Resource

_INF = math.inf
_REL = 1e-9  # a flow within this relative amount of its finish level counts as finished
_UNSET = object()


class Scheduler(Protocol):
    """The event loop the network runs on (the engine's Clock): simulated time in seconds and
    `call_at(delay, priority, callback, arg)`, run in (time, priority, scheduling order) order."""

    @property
    def now(self) -> float: ...

    def call_at(self, delay: float, priority: int, callback: Callable[[Any], None], arg: Any = None) -> None: ...


class FlowNetwork:
    """Carries messages over `resources`; calls `on_delivered(tag, payload)` when a send's part
    (or the whole send, moving as a bundle) is through, and `on_settled()` (if given) after each
    batch of deliveries of one instant. Its wake-ups run at `priority` on `env`: the engine gives
    one after every event of an instant that may send."""

    def __init__(
        self,
        env: Scheduler,
        resources: Sequence[Resource],
        on_delivered: Callable[[Any, Any], None],
        on_settled: Callable[[], None] | None = None,
        priority: int = 0,
    ):
        self.env = env
        self.priority = priority
        self.resources = list(resources)
        self.on_delivered = on_delivered
        self.on_settled = on_settled
        self.cap = [r.capacity_bps for r in self.resources]
        self.overhead = [getattr(r, "overhead_s", None) for r in self.resources]
        self._any_overhead = any(f is not None for f in self.overhead)
        self.users: list[dict[int, FlowClass]] = [{} for _ in self.resources]  # active classes per resource
        self.owner: list[FlowClass | None] = [None] * len(self.resources)  # the solo class on it
        # resources sharing one trace move together: (trace, resources, index in force, active loads)
        groups: dict[tuple, list[int]] = {}
        for rid, r in enumerate(self.resources):
            if r.trace:
                groups.setdefault(r.trace, []).append(rid)
        self._tgroups: list[list[Any]] = [[tr, rids, -1, 0] for tr, rids in groups.items()]
        self._tgroup_of = {rid: g for g in self._tgroups for rid in g[1]}
        self._trace_overhead = {
            rid for rid, r in enumerate(self.resources) if r.trace and getattr(r, "trace_overhead_s", None) is not None
        }
        self._classes: dict[Usage | tuple[Usage, tuple[int, int]], FlowClass] = {}
        self._all: list[FlowClass] = []  # every class, bundles and sized ones included
        self._sized: dict[tuple[float, ...], FlowClass] = {}  # (class id, bits, trace rows...)
        self._sized_parts_of: dict[tuple[float, ...], tuple] = {}
        self._bundles: dict[tuple, FlowClass | None] = {}  # by ((class id, flows), ...)
        self._bundle_of_parts: dict[int, tuple] = {}  # id(parts) -> (parts, bundle)
        self._done: list = []  # (finish time, seq, class, version)
        self._acts: list = []  # (activation time, seq, bits, parts, tag, whole)
        self._dirty: set[int] = set()
        self._dirty_solo: dict[FlowClass, None] = {}  # insertion order: deterministic
        self._seq = count()
        self._wake_t = _INF
        self._wake = 0  # the pending wake-up's number; earlier ones were superseded
        self._busy = False
        self.recomputes = 0
        self.bits_delivered = 0.0
        self.active_flows = 0
        self._apply_traces(env.now)

    # ------------------------------------------------------------------ public
    def flow_class(self, usage: Usage, level: tuple[int, int] | None = None) -> FlowClass:
        """The class of flows with these loads; `level` (Plan.levels) only matters, and only
        splits classes, where a resource charges per-message overhead."""
        sized = any(self.overhead[rid] for rid, _, _ in usage)
        key = (usage, level) if sized and level is not None else usage
        c = self._classes.get(key)
        if c is None:
            if not usage:
                raise ValueError("a flow must cross at least one resource")
            c = self._classes[key] = self._new(usage, sized=sized)
            c.level = level if sized else None
        return c

    def send(self, cls: FlowClass, bits: float, alpha: float, payload: Any, count: int = 1) -> None:
        """`count` flows of `bits` on `cls`, delivered together as one `payload` (tag None)."""
        self.send_parts(((cls, count, payload),), bits, alpha, None, payload)

    def send_parts(self, parts: Sequence[Part], bits: float, alpha: float, tag: Any, whole: Any) -> None:
        """Messages of `bits` each leaving together after `alpha`: per part, `flows` of them on
        `class`, delivered together as its `payload`; `whole` is delivered instead when they all
        move together (one part, or a bundle of distinct classes). A multi-part `parts` is
        remembered by identity: pass the same tuple whenever the same messages leave together."""
        if self._any_overhead and bits >= 1.0:  # (a message under one bit pays no per-message overhead:
            parts = self._sized_parts(parts, bits)  # its b -> 0 load factor would overflow)
        t = self.env.now + alpha
        heapq.heappush(self._acts, (t, next(self._seq), bits, parts, tag, whole))
        if not self._busy and t < self._wake_t:
            self._schedule(t)

    def link_bits(self) -> dict[str, float]:
        """Bits carried per resource, each crossing counted."""
        out = {r.name: 0.0 for r in self.resources}
        for c in self._all:
            for rid, _, crossings in c.usage:
                out[self.resources[rid].name] += c.bits_done * crossings
        return out

    # ------------------------------------------------------------------ classes
    def _new(self, usage: Usage, **kw) -> FlowClass:
        c = FlowClass(len(self._all), usage, **kw)
        if self._tgroup_of:
            groups: dict[int, list] = {}
            for rid in c.rids:
                g = self._tgroup_of.get(rid)
                if g is not None:
                    groups.setdefault(id(g), [g, 0])[1] += 1
            c.tgroups = list(groups.values())
        self._all.append(c)
        return c

    def _sized_parts(self, parts: Sequence[Part], bits: float) -> Sequence[Part]:
        if len(parts) == 1:
            c, k, p = parts[0]
            return ((self._sized_class(c, bits), k, p),) if c.sized else parts
        key = (id(parts), bits, *(g[2] for g in self._tgroups)) if self._trace_overhead else (id(parts), bits)
        seen = self._sized_parts_of.get(key)
        if seen is None or seen[0] is not parts:
            sized = tuple((self._sized_class(c, bits) if c.sized else c, k, p) for c, k, p in parts)
            seen = self._sized_parts_of[key] = (parts, sized)  # holds parts: its id stays unique
        return seen[1]

    def _sized_class(self, c: FlowClass, bits: float) -> FlowClass:
        rows = self._overhead_rows(c)
        key = (c.id, bits, *rows.values()) if rows else (c.id, bits)
        s = self._sized.get(key)
        if s is None:
            s = self._sized[key] = self._new(sized_usage(c.usage, bits, self.resources, c.level, rows))
        return s

    def _overhead_rows(self, c: FlowClass) -> dict[int, int]:
        """The trace row in force on each of c's resources whose overhead follows its trace."""
        if not self._trace_overhead:
            return {}
        return {rid: self._tgroup_of[rid][2] for rid, _, _ in c.usage if rid in self._trace_overhead}

    def _bundle_of(self, parts: Sequence[Part]) -> FlowClass | None:
        """The lockstep class of these parts, or None when its members would not all get the
        bundle's rate (members not all crossing a most loaded resource, unequal capacities)."""
        seen = self._bundle_of_parts.get(id(parts))
        if seen is not None and seen[0] is parts:  # a sender's parts recur every layer
            return seen[1]
        key = tuple((c.id, k) for c, k, _ in parts)
        b = self._bundles.get(key, _UNSET)
        if b is _UNSET:
            b = self._bundles[key] = self._new_bundle(parts)
        self._bundle_of_parts[id(parts)] = (parts, b)  # holds parts: its id stays unique
        return b  # type: ignore[return-value]  # not _UNSET: replaced just above

    def _new_bundle(self, parts: Sequence[Part]) -> FlowClass | None:
        shape = lockstep_load(parts, self.resources)
        if shape is None:
            return None
        usage, top = shape
        b = self._new(usage, width=sum(k for _, k, _ in parts), bundle=True)
        b.top = top
        return b

    # ------------------------------------------------------------------ internals
    def _schedule(self, t: float) -> None:
        self._wake_t = t
        self._wake += 1
        delay = t - self.env.now
        self.env.call_at(delay if delay > 0.0 else 0.0, self.priority, self._settle, self._wake)

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
                    elif self.owner[rid] is not None:
                        self._dirty_solo[self.owner[rid]] = None

    def _start(self, c: FlowClass, entry: tuple, now: float) -> None:
        """Start the flows of `entry` (its level counted from 0) on class c."""
        if c.n:
            c.advance(now)
        else:
            c.service, c.t, c.rate = 0.0, now, 0.0
        heapq.heappush(c.heap, (c.service + entry[0],) + entry[1:])
        self._activate(c, entry[3], now)

    def _start_parts(self, parts, bits: float, seq: int, tag: Any, whole: Any, now: float) -> None:
        b = self._bundle_of(parts)
        if b is not None and (
            b.n or not (any(map(self.users.__getitem__, b.rids)) or any(map(self.owner.__getitem__, b.rids)))
        ):
            self._start(b, (bits, seq, bits, 1, parts, tag, whole), now)  # its resources carry nothing else
            return
        for part in parts:
            self._start(part[0], (bits, next(self._seq), bits, part[1], (part,), tag, part[2]), now)

    def _activate(self, c: FlowClass, k: int, now: float) -> None:
        if c.bundle and not c.n:  # starts only where it is alone (_start_parts)
            c.solo = True
            for rid in c.rids:
                self.owner[rid] = c
            for g, crossed in c.tgroups:
                g[3] += crossed
        elif not c.n:
            owner, users = self.owner, self.users
            alone = True
            for rid in c.rids:
                o = owner[rid]
                if o is not None:
                    alone = False
                    if o.bundle:
                        self._split(o, now)  # may start c itself (a member of o)
                elif users[rid]:
                    alone = False
            if not c.n:
                if not alone:
                    for rid in c.rids:
                        o = owner[rid]
                        if o is not None:  # a solo class (maybe a member of a bundle just split)
                            self._share(o)
                c.solo = alone
                if alone:
                    for rid in c.rids:
                        owner[rid] = c
                else:
                    for rid in c.rids:
                        users[rid][c.id] = c
                for g, crossed in c.tgroups:
                    g[3] += crossed
        c.n += k
        self.active_flows += k * c.width
        if c.solo:
            self._dirty_solo[c] = None
        else:
            self._dirty.update(c.rids)

    def _share(self, c: FlowClass) -> None:
        """Solo class c gets company on a resource: it joins the max-min search from now on."""
        c.solo = False
        self._dirty_solo.pop(c, None)
        for rid in c.rids:
            self.owner[rid] = None
            self.users[rid][c.id] = c
        self._dirty.update(c.rids)

    def _release(self, c: FlowClass) -> None:
        """Class c has no flow left: it stops loading its resources."""
        c.version += 1  # drop its completion entries
        if c.solo:
            c.solo = False
            for rid in c.rids:
                self.owner[rid] = None
            self._dirty_solo.pop(c, None)
        else:
            for rid in c.rids:
                self._dirty.add(rid)
                del self.users[rid][c.id]
        for g, crossed in c.tgroups:
            g[3] -= crossed

    def _split(self, b: FlowClass, now: float) -> None:
        """Bundle b shares a resource from now on: its members continue as ordinary flows."""
        b.advance(now)
        entries, b.heap = b.heap, []
        self.active_flows -= b.n * b.width
        b.n = 0
        self._release(b)
        for level, _, bits, _, parts, tag, _ in entries:
            left = level - b.service
            for part in parts:
                self._start(part[0], (left, next(self._seq), bits, part[1], (part,), tag, part[2]), now)

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
            _, _, bits, k, _, tag, whole = heapq.heappop(heap)
            c.n -= k
            c.bits_done += bits * k
            self.bits_delivered += bits * k * c.width
            out.append((tag, whole))
        if c.n == k0:
            return
        self.active_flows -= (k0 - c.n) * c.width
        if not c.n:
            self._release(c)
        elif c.solo:
            self._dirty_solo[c] = None
        else:
            self._dirty.update(c.rids)

    def _settle(self, wake: int) -> None:
        if wake != self._wake:
            return  # superseded by an earlier wake-up
        self._wake_t = _INF
        self._wake += 1
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
                _, seq, bits, parts, tag, whole = heapq.heappop(acts)
                if bits <= 0.0:
                    delivered.append((tag, whole))
                elif len(parts) == 1:
                    self._start(parts[0][0], (bits, seq, bits, parts[0][1], parts, tag, whole), now)
                else:
                    self._start_parts(parts, bits, seq, tag, whole, now)
            if not delivered:
                break
            for tag, payload in delivered:  # may send more: zero-alpha ones join this settle
                self.on_delivered(tag, payload)
            if self.on_settled is not None:
                self.on_settled()
        if self._dirty or self._dirty_solo:
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
        done, seq = self._done, self._seq
        for c in self._dirty_solo:  # alone on its resources: its bottleneck's capacity / load
            c.advance(now)
            if c.bundle:
                rate = cap[c.rids[0]] / (c.n * c.top)
            else:
                rate = _INF
                for rid, a, _ in c.usage:
                    r = cap[rid] / (c.n * a)
                    if r < rate:
                        rate = r
            c.rate = rate
            c.version += 1
            if rate > 0.0:  # (_push_done)
                heapq.heappush(done, (c.t + (c.heap[0][0] - c.service) / rate, next(seq), c, c.version))
        self._dirty_solo.clear()
        if not self._dirty:
            return
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
                for r2 in c.rids:
                    if r2 not in weight:
                        weight[r2] = 0.0
                        stack.append(r2)
        if not comp:
            return
        if len(comp) == 1:  # one class alone on its resources (a ring step, a lone transfer)
            for c in comp.values():
                c.advance(now)
                self._set_rates((c,), min(cap[rid] / (c.n * a) for rid, a, _ in c.usage))
            return
        max_min(list(comp.values()), weight, cap, now, self._set_rates)

    def _set_rates(self, classes, rate: float) -> None:
        for c in classes:
            c.rate = rate
            c.version += 1
            if rate > 0.0:
                self._push_done(c)
