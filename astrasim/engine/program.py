"""An op graph compiled against a topology once, run many times (jitter draws, request streams,
repeated `simulate` calls): everything a run needs that depends only on the graph and the network.

`compile(graph, topology)` validates the graph, compiles the topology into a Fabric (resources,
routes), resolves every Comm's collective plan and routes (one ShapePlan per distinct shape) and
lays the graph out as index tables: op -> device, seconds, dep counts, who waits on whom. A run
(`Program.run`, engine/sim.py) only copies the counters it consumes and builds its own flow
network. A Program is never changed by a run; it holds the graph's ops as they were compiled.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence

import networkx as nx

from astrasim.engine.comms import ShapePlan
from astrasim.engine.cores import Placement
from astrasim.engine.result import SimResult
from astrasim.engine.sim import run_program
from astrasim.errors import UserError
from astrasim.network.collectives import plan as collective_plan
from astrasim.network.collectives import resolve_algorithm
from astrasim.network.topology import Fabric
from astrasim.opgraph import Compute, Op, OpGraph


class CommPlan:
    """A Comm op compiled: its shape (index into Program.shapes), device -> position (shared by
    the Comms of the same devices), per position the deps not done at the start (`gates`), the
    Computes waiting for its completion there (`dependents`) and the joins (comm op index,
    position) waiting for it (`gated`)."""

    __slots__ = ("shape", "pos", "gates", "dependents", "gated")

    def __init__(self, shape: int, pos: dict[int, int]):
        m = len(pos)
        self.shape, self.pos = shape, pos
        self.gates = [0] * m
        self.dependents: list[list[int]] = [[] for _ in range(m)]
        self.gated: list[list[tuple[int, int]]] = [[] for _ in range(m)]


class Program:
    """`graph` on `fabric`, compiled (see the module docstring). Per op index k: `device_of[k]`
    (-1: a Comm), `seconds[k]`, `deps[k]` and `comm_deps[k]` (a Compute's deps, and how many of
    them are Comms), `compute_dependents[k]` and `join_gates[k]` (a Compute's waiting Computes and
    Comm joins (comm op index, position)), `comm[k]` (a Comm's CommPlan, else None); `comm_ops`:
    the Comms' indices; per device its Computes in program order, their count, its Comms' count,
    its Computes ready at t = 0 and those waiting on Comms only; `chain_next[k]`: see below. Runs
    read these tables and never write them (they copy the counters they consume)."""

    def __init__(self, graph: OpGraph, fabric: Fabric):
        graph.validate()
        n = self.n = graph.n_devices
        missing = [d for d in range(n) if d not in fabric.graph]
        if missing:
            raise UserError(f"the topology lacks device(s) {missing[:5]} needed by a {n}-device graph", "network")
        self.fabric = fabric
        ops: tuple[Op, ...] = tuple(graph.ops)
        self.ops = ops
        n_ops = len(ops)
        index: dict[str, int] = {}
        device_of = [-1] * n_ops
        seconds = [0.0] * n_ops
        deps = [0] * n_ops
        comm_deps = [0] * n_ops
        no_one: tuple = ()  # (shared by every op nobody waits on)
        compute_dependents: list[Sequence[int]] = [no_one] * n_ops
        join_gates: list[Sequence[tuple[int, int]]] = [no_one] * n_ops
        comm: list[CommPlan | None] = [None] * n_ops
        comm_ops: list[int] = []
        computes = [0] * n
        comms = [0] * n
        program: list[list[int]] = [[] for _ in range(n)]
        self.shapes: list[ShapePlan] = []
        shape_of: dict[tuple, tuple[int, dict[int, int]]] = {}  # Comm's fields -> (shape, device -> position)
        shape_index: dict[tuple, int] = {}  # (collective, devices, resolved algorithm, root position) -> shape
        for k, op in enumerate(ops):
            index[op.id] = k
            if isinstance(op, Compute):
                d = device_of[k] = op.device
                seconds[k] = op.seconds
                computes[d] += 1
                program[d].append(k)
                if not op.deps:
                    continue
                deps[k] = len(op.deps)
                for name in op.deps:
                    j = index[name]
                    dep = comm[j]
                    if dep is None:
                        waiting = compute_dependents[j]
                        if waiting:
                            waiting.append(k)  # type: ignore[attr-defined]  # non-empty: a list of its own
                        else:
                            compute_dependents[j] = [k]
                    else:
                        comm_deps[k] += 1
                        p = dep.pos.get(d)
                        if p is not None:
                            dep.dependents[p].append(k)
                continue
            key = (op.collective, op.devices, op.algorithm, op.root)
            shape = shape_of.get(key)
            if shape is None:
                algo = resolve_algorithm(op.collective, op.algorithm, fabric.default_algorithm)
                root = op.devices.index(op.root) if op.root is not None and op.root in op.devices else 0
                resolved = (op.collective, op.devices, algo, root)
                s = shape_index.get(resolved)
                if s is None:
                    plan = collective_plan(op.collective, len(op.devices), algo, root, fabric.broadcast)
                    s = shape_index[resolved] = len(self.shapes)
                    self.shapes.append(ShapePlan(plan, op.devices, fabric))
                shape = shape_of[key] = (s, {d: p for p, d in enumerate(op.devices)})
            cp = comm[k] = CommPlan(*shape)
            comm_ops.append(k)
            for d in op.devices:
                comms[d] += 1
            for name in op.deps:
                j = index[name]
                dep = comm[j]
                if dep is None:
                    p = cp.pos.get(device_of[j])
                    if p is not None:
                        cp.gates[p] += 1
                        gates = join_gates[j]
                        if gates:
                            gates.append((k, p))  # type: ignore[attr-defined]  # non-empty: a list of its own
                        else:
                            join_gates[j] = [(k, p)]
                else:
                    for p, d in enumerate(op.devices):
                        q = dep.pos.get(d)
                        if q is not None:
                            cp.gates[p] += 1
                            dep.gated[q].append((k, p))
        self.device_of, self.seconds, self.deps, self.comm_deps = device_of, seconds, deps, comm_deps
        self.compute_dependents, self.join_gates, self.comm = compute_dependents, join_gates, comm
        self.comm_ops, self.program, self.computes, self.comms = comm_ops, program, computes, comms
        ready: list[list[int]] = [[] for _ in range(n)]
        waiting_on_comm = [0] * n
        for k in range(n_ops):
            if comm[k] is None:
                if deps[k] == 0:
                    ready[device_of[k]].append(k)  # ascending k: already a heap
                elif deps[k] == comm_deps[k]:
                    waiting_on_comm[device_of[k]] += 1
        self.ready, self.waiting_on_comm = ready, waiting_on_comm
        # chain_next[k] = the Compute that only waits for Compute k, which only it waits for, next
        # in their device's program (or -1): k's end starts it at once (engine/sim.py _computed)
        chain_next = [-1] * n_ops
        for own in program:
            for a, b in zip(own, own[1:]):
                if deps[b] == 1 and not comm_deps[b] and compute_dependents[a] == [b] and not join_gates[a]:
                    chain_next[a] = b
        self.chain_next = chain_next

    def run(
        self,
        *,
        speeds: Sequence[float] | None = None,
        record_timeline: bool = False,
        placement: Placement | None = None,
        op_overhead_s: float | Sequence[float] = 0.0,
        message_cpu_s: float = 0.0,
        record_op_ends: bool = False,
    ) -> SimResult:
        """One run (engine/sim.py has the semantics): `speeds` per device (None: all 1), devices on
        hosts with cores (`placement`, None: every device its own processor), `op_overhead_s`
        added to every Compute of more than zero seconds (one value or one per device),
        `message_cpu_s` host CPU seconds per message sent or received;
        `record_timeline`: every interval (SimResult.timeline); `record_op_ends`: only when each op
        finished (SimResult.op_end_s: what a request stream needs, far cheaper)."""
        n = self.n
        if speeds is None:
            speeds = [1.0] * n
        else:
            speeds = list(speeds)
            if len(speeds) != n:
                raise UserError(f"needs one speed factor per device ({n}), got {len(speeds)}", "speeds")
            for s in speeds:
                if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s <= 0:
                    raise UserError(f"speed factors must be finite numbers > 0, got {s!r}", "speeds")
        return run_program(self, speeds, record_timeline, placement, op_overhead_s, message_cpu_s, record_op_ends)


def compile(graph: OpGraph, topology: nx.Graph | Fabric) -> Program:  # noqa: A001 (engine.compile)
    """`graph` on `topology` (a networkx topology, or a Fabric compiled from one), compiled once."""
    fabric = topology if isinstance(topology, Fabric) else Fabric(topology)
    collect = gc.isenabled()
    gc.disable()  # many small lists and tuples, no cycles: skip the collector's scans of the graph
    try:
        return Program(graph, fabric)
    finally:
        if collect:
            gc.enable()


def simulate(
    graph: OpGraph,
    topology: nx.Graph | Fabric,
    *,
    speeds: Sequence[float] | None = None,
    record_timeline: bool = False,
    placement: Placement | None = None,
    op_overhead_s: float | Sequence[float] = 0.0,
    message_cpu_s: float = 0.0,
    record_op_ends: bool = False,
) -> SimResult:
    """Run `graph` on `topology` (a networkx topology, or a Fabric compiled from one to reuse
    routes across runs); engine/sim.py's docstring has the semantics. `placement`: devices on
    hosts with cores (None: every device its own processor); `op_overhead_s`: seconds added to
    every Compute of more than zero seconds (dispatch / launch cost; a zero-second Compute is
    bookkeeping, no kernel), one value or one per device; `message_cpu_s`: host CPU seconds per
    message sent or received; `record_op_ends`: SimResult.op_end_s (Program.run). One compile and one run: to run a
    graph several times, `compile` it once and call `Program.run`."""
    return compile(graph, topology).run(
        speeds=speeds,
        record_timeline=record_timeline,
        placement=placement,
        op_overhead_s=op_overhead_s,
        message_cpu_s=message_cpu_s,
        record_op_ends=record_op_ends,
    )
