"""The SimPy engine: devices run an OpGraph (astrasim/opgraph.py semantics), collectives become
messages on a FlowNetwork.

* Each device is a SimPy process. It runs one Compute at a time; among its ready ops it starts
  the first in program order (it waits for the rest of the current instant before choosing, so
  ops that become ready at the same instant compete fairly). A Compute of `seconds` takes
  `seconds / speed[device]` (plus `op_overhead_s`, a per-op dispatch cost, default 0) on a
  processor of its own; with a `placement` (hosts with a number of cores, astrasim/engine/cores.py)
  the computes of a host with more devices than cores share its cores (processor sharing).
* A Comm is joined by participant i once every dep belonging to i is done (a Compute dep on
  device i; a Comm dep that i takes part in, once complete at i); i's messages then leave as
  their intra-collective dependencies allow (collectives.plan). Sending costs no compute.
  The Comm is complete at i when i has joined and every message i sends or receives has been
  delivered. A Compute on device j that depends on a Comm waits for its completion at j; if j
  does not take part, it waits forever and the run ends in DeadlockError.
* Accounting per device: compute (busy), exposed communication (not computing while some op
  of the device has all its non-Comm deps done and waits on an unfinished Comm), idle (the
  rest of the latency). The latency is the time the last op finishes (at every participant).
"""

from __future__ import annotations

import gc
import heapq
import math
from collections.abc import Sequence

import networkx as nx
import simpy

from astrasim.engine.cores import HostCores, Placement
from astrasim.engine.result import DeadlockError, SimResult, TimelineEvent
from astrasim.errors import UserError
from astrasim.network.collectives import plan as collective_plan
from astrasim.network.collectives import resolve_algorithm
from astrasim.network.flows import FlowNetwork
from astrasim.network.topology import Fabric
from astrasim.opgraph import Compute, OpGraph

_CHOOSE = 3  # device choice priority: after ordinary events (1) and the network settle (2)


class _SimpyClock:
    """The call_at clock HostCores expects, on a SimPy environment (priority: ordinary events)."""

    def __init__(self, env: simpy.Environment):
        self.env = env

    @property
    def now(self) -> float:
        return self.env.now

    def call_at(self, delay: float, priority: int, callback, arg=None) -> None:
        self.env.timeout(delay).callbacks.append(lambda _event: callback(arg))


class _Template:
    """A collective plan mapped onto concrete devices and routes (shared by same-shape Comms)."""

    __slots__ = ("src", "dsts", "frac", "children", "ndeps", "roots", "out0", "routes")

    def __init__(self, plan, devs: tuple[int, ...], fabric: Fabric, net: FlowNetwork):
        n, m_count = plan.n, len(plan)
        self.src, self.dsts, self.frac, self.ndeps = plan.src, plan.dsts, plan.frac, [len(d) for d in plan.deps]
        children: list[list[int]] = [[] for _ in range(m_count)]
        for m, deps in enumerate(plan.deps):
            for d in deps:
                children[d].append(m)
        self.children = [tuple(c) for c in children]
        out0 = [0] * n
        self.routes = []
        for m in range(m_count):
            out0[plan.src[m]] += 1
            for q in plan.dsts[m]:
                out0[q] += 1
            r = fabric.route(devs[plan.src[m]], tuple(devs[q] for q in plan.dsts[m]))
            self.routes.append((net.flow_class(r.usage), r.alpha))
        self.out0 = out0
        first: list[list[int]] = [[] for _ in range(n)]  # messages that leave as soon as their sender joins
        for m in range(m_count):
            if not plan.deps[m]:
                first[plan.src[m]].append(m)
        self.roots = [_group(self, ms) for ms in first]


def _group(t: _Template, ms: list[int]) -> list[tuple]:
    """Messages with the same route class, alpha and size travel as one group of flows."""
    groups: dict[tuple, list[int]] = {}
    for m in ms:
        cls, alpha = t.routes[m]
        groups.setdefault((cls.id, alpha, t.frac[m]), []).append(m)
    return [(t.routes[g[0]][0], alpha, frac, tuple(g)) for (_, alpha, frac), g in groups.items()]


class _CommState:
    __slots__ = ("op", "devs", "tmpl", "bits", "gate_left", "joined", "done_at", "pending", "out",
                 "waiting", "c_targets", "g_targets", "launched")

    def __init__(self, op, tmpl: _Template):
        n = len(op.devices)
        self.op, self.devs, self.tmpl, self.bits = op, op.devices, tmpl, float(op.bits)
        self.gate_left = [0] * n
        self.joined: list[float | None] = [None] * n
        self.done_at: list[float | None] = [None] * n
        self.pending = list(tmpl.ndeps)
        self.out = list(tmpl.out0)
        self.waiting: dict[int, list[int]] | None = None
        self.c_targets: list[list[int]] = [[] for _ in range(n)]  # computes waiting on completion at p
        self.g_targets: list[list[tuple]] = [[] for _ in range(n)]  # (comm state, position) gated by p
        self.launched: dict[int, float] | None = None  # message -> launch time (timeline only)


def simulate(graph: OpGraph, topology: nx.Graph | Fabric, *, speeds: Sequence[float] | None = None,
             record_timeline: bool = False, placement: Placement | None = None,
             op_overhead_s: float = 0.0) -> SimResult:
    """Run `graph` on `topology` (a networkx topology, or a Fabric compiled from one to reuse
    routes across runs); see the module docstring for the semantics. `placement`: devices on
    hosts with cores (None: every device its own processor); `op_overhead_s`: seconds added to
    every Compute (dispatch / launch cost)."""
    graph.validate()
    n = graph.n_devices
    if speeds is None:
        speeds = [1.0] * n
    else:
        speeds = list(speeds)
        if len(speeds) != n:
            raise UserError(f"needs one speed factor per device ({n}), got {len(speeds)}", "speeds")
        for s in speeds:
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s <= 0:
                raise UserError(f"speed factors must be finite numbers > 0, got {s!r}", "speeds")
    fabric = topology if isinstance(topology, Fabric) else Fabric(topology)
    missing = [d for d in range(n) if d not in fabric.graph]
    if missing:
        raise UserError(f"the topology lacks device(s) {missing[:5]} needed by a {n}-device graph", "network")
    collect = gc.isenabled()
    gc.disable()  # the run allocates many small tuples and frees them itself: skip cycle scans
    try:
        run = _Run(graph, fabric, speeds, record_timeline)
        run.share_cores(placement, op_overhead_s)
        return run.run()
    finally:
        if collect:
            gc.enable()


class _Run:
    def __init__(self, graph: OpGraph, fabric: Fabric, speeds: list[float], record: bool):
        self.graph, self.fabric = graph, fabric
        self.env = env = simpy.Environment()
        self.net = net = FlowNetwork(env, fabric.resources, self._delivered)
        n = self.n = graph.n_devices
        ops = graph.ops
        n_ops = len(ops)
        index: dict[str, int] = {}
        self.dev = dev = [-1] * n_ops
        self.dur = dur = [0.0] * n_ops
        self.cnt = cnt = [0] * n_ops  # unfinished deps of a Compute
        self.rc = rc = [0] * n_ops  # ... of which Comms
        self.nc_targets: list[list[int] | None] = [None] * n_ops  # Computes gated by a Compute
        self.cg_targets: list[list[tuple] | None] = [None] * n_ops  # (comm, position) gated by a Compute
        self.comms: list[_CommState | None] = [None] * n_ops
        self.left = [0] * n  # Computes not finished per device
        self.order: list[list[int]] = [[] for _ in range(n)]
        templates: dict[tuple, _Template] = {}
        default = fabric.default_algorithm
        multicast = fabric.broadcast
        for k, op in enumerate(ops):
            index[op.id] = k
            if isinstance(op, Compute):
                d = dev[k] = op.device
                dur[k] = op.seconds / speeds[d]
                self.left[d] += 1
                self.order[d].append(k)
                self.nc_targets[k], self.cg_targets[k] = [], []
                for name in op.deps:
                    j = index[name]
                    cnt[k] += 1
                    st = self.comms[j]
                    if st is None:
                        self.nc_targets[j].append(k)
                    else:
                        rc[k] += 1
                        p = _position(st.devs, d)
                        if p is not None:
                            st.c_targets[p].append(k)
                continue
            algo = resolve_algorithm(op.collective, op.algorithm, default)
            root = op.devices.index(op.root) if op.root is not None and op.root in op.devices else 0
            key = (op.collective, op.devices, algo, root)
            tmpl = templates.get(key)
            if tmpl is None:
                tmpl = templates[key] = _Template(collective_plan(op.collective, len(op.devices), algo, root,
                                                                  multicast), op.devices, fabric, net)
            st = self.comms[k] = _CommState(op, tmpl)
            for name in op.deps:
                j = index[name]
                dep = self.comms[j]
                if dep is None:
                    p = _position(st.devs, dev[j])
                    if p is not None:
                        st.gate_left[p] += 1
                        self.cg_targets[j].append((st, p))
                else:
                    for p, d in enumerate(st.devs):
                        q = _position(dep.devs, d)
                        if q is not None:
                            st.gate_left[p] += 1
                            dep.g_targets[q].append((st, p))
        self.ops = ops
        self.done = [st is not None for st in self.comms]  # Comms: see done_at
        self.started = list(self.done)
        self.ready: list[list[int]] = [[] for _ in range(n)]
        self.waiter: list[simpy.Event | None] = [None] * n
        self.busy = [False] * n
        self.since = [0.0] * n
        self.compute = [0.0] * n
        self.exposed = [0.0] * n
        self.blocked = [0] * n
        self.t_end = 0.0
        self.comm_bits = 0.0
        self.n_messages = 0
        self.timeline: list[TimelineEvent] | None = [] if record else None
        for k in range(n_ops):
            if self.comms[k] is None:
                if cnt[k] == 0:
                    self.ready[dev[k]].append(k)  # ascending k: already a heap
                elif cnt[k] == rc[k]:
                    self.blocked[dev[k]] += 1

    # ---------------------------------------------------------------- hosts and cores
    def share_cores(self, placement: Placement | None, op_overhead_s: float) -> None:
        """Add the per-op dispatch cost; put the devices of hosts with more devices than cores on
        a shared HostCores (the others keep a processor of their own: the fixed-duration path)."""
        if op_overhead_s < 0 or not math.isfinite(op_overhead_s):
            raise UserError(f"op_overhead_s must be a finite number >= 0, got {op_overhead_s!r}",
                            "hardware.op_overhead_s")
        if op_overhead_s:
            self.dur = [d + op_overhead_s if self.dev[k] >= 0 else d for k, d in enumerate(self.dur)]
        self.host_cores: list[HostCores | None] = [None] * self.n
        self.compute_done: list[simpy.Event | None] = [None] * self.n
        if placement is None:
            return
        if len(placement.host_of) != self.n:
            raise UserError(f"placement covers {len(placement.host_of)} devices, the graph has {self.n}", "hardware.hosts")
        clock = _SimpyClock(self.env)
        shared = {h: HostCores(clock, placement.cores[h], 1, self._core_done) for h in placement.shared_hosts()}
        for d, h in enumerate(placement.host_of):
            self.host_cores[d] = shared.get(h)

    def _core_done(self, d: int) -> None:
        ev, self.compute_done[d] = self.compute_done[d], None
        ev.succeed()

    def _compute(self, d: int, seconds: float):
        """The event of device d's compute of `seconds` (at a full core) ending."""
        cores = self.host_cores[d]
        if cores is None:
            return self.env.timeout(seconds)
        ev = self.compute_done[d] = simpy.Event(self.env)
        cores.start(d, seconds)
        return ev

    # ---------------------------------------------------------------- run
    def run(self) -> SimResult:
        env = self.env
        free = [(st, p) for st in self.comms if st is not None for p, g in enumerate(st.gate_left) if not g]
        for st, p in free:  # joined at t = 0 (listed first: joining may open other gates)
            self._join(st, p)
        for d in range(self.n):
            env.process(self._device(d))
        env.run()
        if not all(self.done) or any(st is not None and None in st.done_at for st in self.comms):
            raise self._deadlock()
        latency = self.t_end
        for d in range(self.n):
            self._flush(d, latency)
        idle = [max(latency - c - e, 0.0) for c, e in zip(self.compute, self.exposed)]
        return SimResult(latency_s=latency, compute_s=self.compute, exposed_comm_s=self.exposed, idle_s=idle,
                         comm_bits=self.comm_bits, link_bits=self.net.link_bits(), n_messages=self.n_messages,
                         timeline=self.timeline,
                         meta={"network_recomputes": self.net.recomputes, "bits_delivered": self.net.bits_delivered})

    def _device(self, d: int):
        env = self.env
        ready = self.ready[d]
        order = self.order[d]  # this device's Computes in program order
        started = self.started
        head = 0  # first Compute of `order` not started yet
        queue = env._queue
        dur = self.dur  # (share_cores may have replaced the list: read it here)
        while True:
            if not ready:
                if not self.left[d]:
                    return
                ev = self.waiter[d] = simpy.Event(env)
                yield ev  # _push wakes us at priority _CHOOSE: the rest of the instant has happened
            else:
                while started[order[head]]:
                    head += 1
                if ready[0] != order[head] and queue and queue[0][0] <= env._now:
                    # an earlier op might still become ready at this instant: choose after it
                    ev = simpy.Event(env)
                    ev._ok, ev._value = True, None
                    env.schedule(ev, _CHOOSE)
                    yield ev
            k = heapq.heappop(ready)
            started[k] = True
            self._flush(d, env._now)
            self.busy[d] = True
            start = env._now
            yield self._compute(d, dur[k])
            now = env._now
            self.busy[d] = False
            self.since[d] = now
            self.compute[d] += dur[k] if self.host_cores[d] is None else now - start
            self.left[d] -= 1
            if now > self.t_end:
                self.t_end = now
            if self.timeline is not None:
                op = self.ops[k]
                self.timeline.append(TimelineEvent("compute", d, op.id, op.name, start, now, op.layer))
            self.done[k] = True
            for j in self.nc_targets[k]:
                self._dec(j, False)
            for st, p in self.cg_targets[k]:
                st.gate_left[p] -= 1
                if not st.gate_left[p]:
                    self._join(st, p)

    # ---------------------------------------------------------------- bookkeeping
    def _flush(self, d: int, now: float) -> None:
        if not self.busy[d]:
            if self.blocked[d]:
                self.exposed[d] += now - self.since[d]
            self.since[d] = now

    def _dec(self, k: int, comm: bool) -> None:
        """One dep of Compute k is done (`comm`: a Comm completed at k's device)."""
        cnt, rc = self.cnt, self.rc
        cnt[k] -= 1
        c = cnt[k]
        if comm:
            rc[k] -= 1
            if c == rc[k] and not c:  # was waiting on Comms only; now ready
                d = self.dev[k]
                self._flush(d, self.env._now)
                self.blocked[d] -= 1
                self._push(d, k)
        elif not c:
            self._push(self.dev[k], k)
        elif c == rc[k]:  # only Comms left to wait for
            d = self.dev[k]
            self._flush(d, self.env._now)
            self.blocked[d] += 1

    def _push(self, d: int, k: int) -> None:
        heapq.heappush(self.ready[d], k)
        w = self.waiter[d]
        if w is not None:
            self.waiter[d] = None
            w._ok, w._value = True, None
            self.env.schedule(w, _CHOOSE)

    def _join(self, st: _CommState, p: int) -> None:
        st.joined[p] = self.env._now
        t = st.tmpl
        for cls, alpha, frac, ms in t.roots[p]:
            self._launch(st, cls, alpha, frac, ms)
        if st.waiting and p in st.waiting:
            self._release(st, st.waiting.pop(p))
        if not st.out[p]:
            self._complete(st, p)

    def _launch(self, st: _CommState, cls, alpha: float, frac: float, ms: tuple[int, ...]) -> None:
        bits = st.bits * frac
        pending = st.pending
        for m in ms:
            pending[m] = -1
        self.net.send(cls, bits, alpha, (st, ms), len(ms))
        self.comm_bits += bits * len(ms)
        self.n_messages += len(ms)
        if self.timeline is not None:
            if st.launched is None:
                st.launched = {}
            for m in ms:
                st.launched[m] = self.env._now

    def _release(self, st: _CommState, ms: list[int]) -> None:
        if len(ms) == 1:
            m = ms[0]
            cls, alpha = st.tmpl.routes[m]
            self._launch(st, cls, alpha, st.tmpl.frac[m], (m,))
        else:
            for cls, alpha, frac, group in _group(st.tmpl, ms):
                self._launch(st, cls, alpha, frac, group)

    def _delivered(self, payload: tuple) -> None:
        st, ms = payload
        t = st.tmpl
        out, joined, pending = st.out, st.joined, st.pending
        src, dsts, children = t.src, t.dsts, t.children
        release = None
        for m in ms:
            s = src[m]
            out[s] -= 1
            if not out[s] and joined[s] is not None:
                self._complete(st, s)
            for q in dsts[m]:
                out[q] -= 1
                if not out[q] and joined[q] is not None:
                    self._complete(st, q)
            for ch in children[m]:
                pending[ch] -= 1
                if not pending[ch]:
                    sp = src[ch]
                    if joined[sp] is not None:
                        if release is None:
                            release = [ch]
                        else:
                            release.append(ch)
                    else:
                        if st.waiting is None:
                            st.waiting = {}
                        st.waiting.setdefault(sp, []).append(ch)
        if self.timeline is not None:
            now = self.env._now
            op = st.op
            for m in ms:
                self.timeline.append(TimelineEvent("message", st.devs[src[m]], op.id, op.name, st.launched[m], now,
                                                   op.layer, tuple(st.devs[q] for q in dsts[m]),
                                                   st.bits * t.frac[m]))
        if release:
            self._release(st, release)

    def _complete(self, st: _CommState, p: int) -> None:
        now = self.env._now
        st.done_at[p] = now
        if now > self.t_end:
            self.t_end = now
        if self.timeline is not None:
            op = st.op
            self.timeline.append(TimelineEvent("comm", st.devs[p], op.id, op.name, st.joined[p], now, op.layer))
        for k in st.c_targets[p]:
            self._dec(k, True)
        for st2, p2 in st.g_targets[p]:
            st2.gate_left[p2] -= 1
            if not st2.gate_left[p2]:
                self._join(st2, p2)

    # ---------------------------------------------------------------- deadlock report
    def _deadlock(self) -> DeadlockError:
        ops, index = self.ops, {op.id: k for k, op in enumerate(self.ops)}
        lines, devices, names = [], set(), []
        for k, op in enumerate(ops):
            st = self.comms[k]
            if st is None:
                if self.done[k]:
                    continue
                d = op.device
                waits = []
                for name in op.deps:
                    j = index[name]
                    dep = self.comms[j]
                    if dep is None:
                        if not self.done[j]:
                            waits.append(f"compute {name!r}")
                    elif d not in dep.devs:
                        waits.append(f"comm {name!r} (device {d} does not take part in it)")
                    elif dep.done_at[dep.devs.index(d)] is None:
                        waits.append(f"comm {name!r} (not complete at device {d})")
                if waits:
                    devices.add(d)
                    names.append(op.id)
                    lines.append(f"device {d}: compute {op.id!r} waits on " + ", ".join(waits))
            else:
                stuck = [p for p, t in enumerate(st.done_at) if t is None]
                if not stuck:
                    continue
                names.append(op.id)
                never = [st.devs[p] for p in stuck if st.joined[p] is None]
                flying = [st.devs[p] for p in stuck if st.joined[p] is not None]
                devices.update(st.devs[p] for p in stuck)
                parts = []
                if never:
                    parts.append(f"devices {never} never joined (their deps never finished)")
                if flying:
                    parts.append(f"devices {flying} wait for messages that never arrive "
                                 f"({self.net.active_flows} flows stalled: zero bandwidth?)")
                lines.append(f"comm {op.id!r} ({op.collective} over {list(st.devs)}): " + "; ".join(parts))
        head = (f"deadlock at t={self.env.now:.6g}s: the event queue is empty but {len(names)} op(s) are "
                f"unfinished on devices {sorted(devices)}")
        shown = lines[:12] + ([f"... and {len(lines) - 12} more"] if len(lines) > 12 else [])
        return DeadlockError(head + ":\n  " + "\n  ".join(shown), sorted(devices), names)


def _position(devs: tuple[int, ...], d: int) -> int | None:
    try:
        return devs.index(d)
    except ValueError:
        return None
