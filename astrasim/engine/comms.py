"""Collectives on concrete devices: a plan (network/collectives.py) mapped onto devices and
routes (a ShapePlan, compiled once and shared by every Comm of the same shape; a CommShape, its
flow classes in one run), and one Comm's progress (CommState)."""

from __future__ import annotations

from astrasim.network.collectives import Plan
from astrasim.network.flows import FlowClass, FlowNetwork
from astrasim.network.topology import Fabric
from astrasim.opgraph import Comm

# messages that leave together: (alpha, fraction of Comm.bits, network parts ((flow class, count,
# messages), ...), count, all the messages)
Launch = tuple[float, float, tuple[tuple[FlowClass, int, tuple[int, ...]], ...], int, tuple[int, ...]]


class ShapePlan:
    """Plan `plan` over `devices` on a fabric, compiled once (engine/program.py): per message its
    sender, receivers, size fraction, the messages that wait for it, how many it waits for, its
    route's loads and alpha and its collective step's level; per position how many messages it
    sends or receives and the messages it sends first."""

    __slots__ = ("src", "dsts", "frac", "children", "n_deps", "usage", "level", "alpha", "touches", "first")

    def __init__(self, plan: Plan, devices: tuple[int, ...], fabric: Fabric):
        n, count = plan.n, len(plan)
        self.src, self.dsts, self.frac = plan.src, plan.dsts, plan.frac
        self.n_deps = tuple(len(d) for d in plan.deps)
        children: list[list[int]] = [[] for _ in range(count)]
        for m, deps in enumerate(plan.deps):
            for d in deps:
                children[d].append(m)
        self.children = tuple(tuple(c) for c in children)
        touches = [0] * n
        usage, alpha = [], []
        for m in range(count):
            touches[plan.src[m]] += 1
            for q in plan.dsts[m]:
                touches[q] += 1
            route = fabric.route(devices[plan.src[m]], tuple(devices[q] for q in plan.dsts[m]))
            usage.append(route.usage)
            alpha.append(route.alpha)
        self.touches = tuple(touches)
        self.usage, self.alpha, self.level = tuple(usage), tuple(alpha), plan.levels()
        first: list[list[int]] = [[] for _ in range(n)]
        for m in range(count):
            if not plan.deps[m]:
                first[plan.src[m]].append(m)
        self.first = tuple(first)


class CommShape:
    """A ShapePlan on one run's FlowNetwork: its messages' flow classes, and the launches (what
    leaves together) and delivery effects it has worked out so far."""

    __slots__ = ("src", "dsts", "frac", "children", "n_deps", "cls", "alpha", "touches", "roots", "_groups", "_effects")

    def __init__(self, spec: ShapePlan, net: FlowNetwork):
        self.src, self.dsts, self.frac, self.children = spec.src, spec.dsts, spec.frac, spec.children
        self.n_deps, self.touches, self.alpha = spec.n_deps, spec.touches, spec.alpha
        flow_class = net.flow_class
        self.cls: list[FlowClass] = [flow_class(u, lv) for u, lv in zip(spec.usage, spec.level)]
        self._groups: dict[tuple[int, ...], list[Launch]] = {}
        self._effects: dict[int, tuple] = {}
        self.roots = [self.group(ms) for ms in spec.first]

    def group(self, ms: list[int]) -> list[Launch]:
        """Messages with the same alpha and size leave together, one part per flow class (the
        same messages leave together in every layer: remembered)."""
        key = (ms[0],) if len(ms) == 1 else tuple(sorted(ms))  # (freed in an order that varies)
        out = self._groups.get(key)
        if out is None:
            out = self._groups[key] = self._group(key)
        return out

    def effects(self, ms: tuple[int, ...]) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
        """What delivering the messages `ms` together does: ((position, its messages among ms),
        ...) and ((message, its deps among ms), ...). `ms` is one of the tuples this shape hands
        out (they live as long as the shape), remembered by identity."""
        seen = self._effects.get(id(ms))
        if seen is not None and seen[0] is ms:
            return seen[1]
        touched: dict[int, int] = {}
        freed: dict[int, int] = {}
        for m in ms:
            touched[self.src[m]] = touched.get(self.src[m], 0) + 1
            for q in self.dsts[m]:
                touched[q] = touched.get(q, 0) + 1
            for ch in self.children[m]:
                freed[ch] = freed.get(ch, 0) + 1
        out = (tuple(touched.items()), tuple(freed.items()))
        self._effects[id(ms)] = (ms, out)
        return out

    def _group(self, ms: tuple[int, ...]) -> list[Launch]:
        if len(ms) == 1:
            m = ms[0]
            return [(self.alpha[m], self.frac[m], ((self.cls[m], 1, (m,)),), 1, (m,))]
        groups: dict[tuple[float, float], dict[FlowClass, list[int]]] = {}
        for m in ms:
            groups.setdefault((self.alpha[m], self.frac[m]), {}).setdefault(self.cls[m], []).append(m)
        out = []
        for (alpha, frac), by_class in groups.items():
            parts = tuple((c, len(g), tuple(g)) for c, g in by_class.items())
            out.append(
                (
                    alpha,
                    frac,
                    parts,
                    sum(k for _, k, _ in parts),
                    parts[0][2] if len(parts) == 1 else tuple(m for _, _, g in parts for m in g),
                )
            )
        return out


class CommState:
    """One Comm in flight; per-participant lists are indexed by position in `op.devices`."""

    __slots__ = (
        "k",
        "op",
        "devs",
        "pos",
        "shape",
        "bits",
        "gates_left",
        "joined",
        "done_at",
        "deps_left",
        "touches_left",
        "held",
        "dependents",
        "gated",
        "released",
        "launched",
    )

    def __init__(
        self, k: int, op: Comm, shape: CommShape, pos: dict[int, int], gates: list[int], dependents: list[list[int]]
    ):
        n = len(op.devices)
        self.k = k  # the op's index in the graph
        self.op, self.devs, self.shape, self.bits = op, op.devices, shape, float(op.bits)
        self.pos = pos  # device -> position
        self.gates_left = gates  # deps of the participant not done yet
        self.joined: list[float | None] = [None] * n
        self.done_at: list[float | None] = [None] * n  # complete at the participant
        self.deps_left = list(shape.n_deps)  # per message: deps not delivered (-1 once it left)
        self.touches_left = list(shape.touches)  # per participant: its messages not delivered
        self.held: dict[int, list[int]] | None = None  # participant -> messages waiting for it to join
        self.dependents = dependents  # Computes waiting for completion there
        self.gated: list[list[tuple[CommState, int]]] = []  # joins waiting for it (the run fills it)
        self.released: list[int] | None = None  # messages free to leave at this instant
        self.launched: dict[int, float] | None = None  # message -> launch time (timeline only)
