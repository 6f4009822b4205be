"""An op graph compiled against a topology once, run many times (jitter draws, request streams,
repeated `simulate` calls): everything a run needs that depends only on the graph and the network.

`compile(graph, topology)` validates the graph, compiles the topology into a Fabric (resources,
routes), resolves every Comm's collective plan and routes (one ShapePlan per distinct shape) and
lays the graph out as index tables: op -> device, seconds, dep counts, who waits on whom. A run
(`Program.run`, engine/sim.py) only copies the counters it consumes and builds its own flow
network. A Program is never changed by a run; it holds the graph's ops as they were compiled.
"""

from __future__ import annotations

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
    """A Comm op compiled: its shape (index into Program.shapes), device -> position, per
    position the deps not done at the start (`gates`), the Computes waiting for its completion
    there (`dependents`) and the joins (comm op index, position) waiting for it (`gated`)."""

    __slots__ = ("shape", "pos", "gates", "dependents", "gated")

    def __init__(self, shape: int, devices: tuple[int, ...]):
        m = len(devices)
        self.shape, self.pos = shape, {d: p for p, d in enumerate(devices)}
        self.gates: Sequence[int] = [0] * m
        self.dependents: Sequence[Sequence[int]] = [[] for _ in range(m)]
        self.gated: Sequence[Sequence[tuple[int, int]]] = [[] for _ in range(m)]

    def freeze(self) -> None:
        """Filled (Program.__init__): tuples from now on."""
        self.gates = tuple(self.gates)
        self.dependents = tuple(tuple(x) for x in self.dependents)
        self.gated = tuple(tuple(x) for x in self.gated)


class Program:
    """`graph` on `fabric`, compiled (see the module docstring). Per op index k: `device_of[k]`
    (-1: a Comm), `seconds[k]`, `deps[k]` and `comm_deps[k]` (a Compute's deps, and how many of
    them are Comms), `compute_dependents[k]` and `join_gates[k]` (a Compute's waiting Computes and
    Comm joins (comm op index, position)), `comm[k]` (a Comm's CommPlan, else None); per device
    its Computes in program order, their count, its Comms' count, its Computes ready at t = 0 and
    those waiting on Comms only."""

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
        compute_dependents: list[list[int] | None] = [None] * n_ops
        join_gates: list[list[tuple[int, int]] | None] = [None] * n_ops
        comm: list[CommPlan | None] = [None] * n_ops
        self.computes = [0] * n
        self.comms = [0] * n
        program: list[list[int]] = [[] for _ in range(n)]
        self.shapes: list[ShapePlan] = []
        shape_of: dict[tuple, int] = {}
        for k, op in enumerate(ops):
            index[op.id] = k
            if isinstance(op, Compute):
                d = device_of[k] = op.device
                seconds[k] = op.seconds
                self.computes[d] += 1
                program[d].append(k)
                compute_dependents[k], join_gates[k] = [], []
                for name in op.deps:
                    j = index[name]
                    deps[k] += 1
                    dep = comm[j]
                    if dep is None:
                        compute_dependents[j].append(k)  # type: ignore[union-attr]
                    else:
                        comm_deps[k] += 1
                        p = dep.pos.get(d)
                        if p is not None:
                            dep.dependents[p].append(k)  # type: ignore[attr-defined]
                continue
            algo = resolve_algorithm(op.collective, op.algorithm, fabric.default_algorithm)
            root = op.devices.index(op.root) if op.root is not None and op.root in op.devices else 0
            key = (op.collective, op.devices, algo, root)
            s = shape_of.get(key)
            if s is None:
                plan = collective_plan(op.collective, len(op.devices), algo, root, fabric.broadcast)
                s = shape_of[key] = len(self.shapes)
                self.shapes.append(ShapePlan(plan, op.devices, fabric))
            cp = comm[k] = CommPlan(s, op.devices)
            for d in op.devices:
                self.comms[d] += 1
            for name in op.deps:
                j = index[name]
                dep = comm[j]
                if dep is None:
                    p = cp.pos.get(device_of[j])
                    if p is not None:
                        cp.gates[p] += 1  # type: ignore[index]
                        join_gates[j].append((k, p))  # type: ignore[union-attr]
                else:
                    for p, d in enumerate(op.devices):
                        q = dep.pos.get(d)
                        if q is not None:
                            cp.gates[p] += 1  # type: ignore[index]
                            dep.gated[q].append((k, p))  # type: ignore[attr-defined]
        for cp in comm:
            if cp is not None:
                cp.freeze()
        self.device_of, self.seconds = tuple(device_of), tuple(seconds)
        self.deps, self.comm_deps = tuple(deps), tuple(comm_deps)
        self.compute_dependents = tuple(None if x is None else tuple(x) for x in compute_dependents)
        self.join_gates = tuple(None if x is None else tuple(x) for x in join_gates)
        self.comm = tuple(comm)
        self.program = tuple(tuple(p) for p in program)
        self.computes, self.comms = tuple(self.computes), tuple(self.comms)
        ready: list[list[int]] = [[] for _ in range(n)]
        waiting_on_comm = [0] * n
        for k in range(n_ops):
            if comm[k] is None:
                if deps[k] == 0:
                    ready[device_of[k]].append(k)  # ascending k: already a heap
                elif deps[k] == comm_deps[k]:
                    waiting_on_comm[device_of[k]] += 1
        self.ready = tuple(tuple(r) for r in ready)
        self.waiting_on_comm = tuple(waiting_on_comm)

    def run(self, *, speeds: Sequence[float] | None = None, record_timeline: bool = False,
            placement: Placement | None = None, op_overhead_s: float = 0.0, message_cpu_s: float = 0.0) -> SimResult:
        """One run (engine/sim.py has the semantics): `speeds` per device (None: all 1), devices on
        hosts with cores (`placement`, None: every device its own processor), `op_overhead_s`
        added to every Compute, `message_cpu_s` host CPU seconds per message sent or received."""
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
        return run_program(self, speeds, record_timeline, placement, op_overhead_s, message_cpu_s)


def compile(graph: OpGraph, topology: nx.Graph | Fabric) -> Program:  # noqa: A001 (engine.compile)
    """`graph` on `topology` (a networkx topology, or a Fabric compiled from one), compiled once."""
    return Program(graph, topology if isinstance(topology, Fabric) else Fabric(topology))


def simulate(graph: OpGraph, topology: nx.Graph | Fabric, *, speeds: Sequence[float] | None = None,
             record_timeline: bool = False, placement: Placement | None = None,
             op_overhead_s: float = 0.0, message_cpu_s: float = 0.0) -> SimResult:
    """Run `graph` on `topology` (a networkx topology, or a Fabric compiled from one to reuse
    routes across runs); engine/sim.py's docstring has the semantics. `placement`: devices on
    hosts with cores (None: every device its own processor); `op_overhead_s`: seconds added to
    every Compute (dispatch / launch cost); `message_cpu_s`: host CPU seconds per message sent or
    received. One compile and one run: to run a graph several times, `compile` it once and call
    `Program.run`."""
    return compile(graph, topology).run(speeds=speeds, record_timeline=record_timeline, placement=placement,
                                        op_overhead_s=op_overhead_s, message_cpu_s=message_cpu_s)
