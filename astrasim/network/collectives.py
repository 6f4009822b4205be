"""Collectives decomposed into point-to-point messages with dependencies.

A plan is written over participant *positions* 0..n-1 (the order of ``Comm.devices``), so
one plan serves every layer's collective of the same shape. Message m goes from ``src[m]``
to ``dsts[m]`` (several destinations = one multicast flow, only with ``multicast=True``),
carries ``frac[m] * Comm.bits`` bits and may leave only after every message in ``deps[m]``
has been delivered (data it forwards or reduces). Reductions cost no device time.

One connection per pair, one message at a time: a message also waits for its sender's previous
message (in this plan) to any of its receivers to be delivered, as a TCP stream delivers in
order and MPI's sendrecv steps do. Without it a late joiner's ring steps, all ready at once,
would share its link and delay the step the ring waits for (issue 15: latency jumped 3x with
bandwidth). Only ring plans, the direct all-reduce and star plans send twice over a pair.

Algorithms (``bits`` = Comm.bits, see astrasim/opgraph.py for its meaning per collective):

* all_gather  ring:   n-1 steps; in step k position i sends to i+1 the chunk it received in
                      step k-1 (its own in step 0): n(n-1) messages of bits.
              direct: every position sends its chunk to every other: n(n-1) messages of
                      bits, or n multicasts of bits with ``multicast``.
* reduce_scatter ring: as the ring all-gather with chunks of bits/n (partial sums).
              direct: every position sends chunk j (bits/n) to position j.
* all_reduce  ring:   reduce-scatter ring then all-gather ring: 2(n-1) steps of bits/n.
              direct: reduce-scatter direct, then each position sends its reduced chunk
                      (bits/n) to every other (multicast with ``multicast``) once it has
                      received all n-1 partial chunks.
  star:   through `root` (how distributed-llama and TPI-LLM run tensor parallelism on Pi
                      clusters: workers talk only to the root node). Every other position
                      sends the root its full tensor (bits); once the root has all n-1, it
                      sends each other position the reduced tensor (bits; one multicast with
                      ``multicast``): 2(n-1) messages of bits.
* all_gather  star:   every other position sends its chunk (bits) to the root; once the root
                      has them all it sends each other position the n-1 chunks it lacks, one
                      message of (n-1)*bits (with ``multicast``: one multicast of the whole
                      n*bits, a receiver's own chunk included, as one frame serves everyone).
* reduce_scatter star: every other position sends its full tensor (bits) to the root; once
                      it has them all the root sends each other position its reduced chunk
                      (bits/n).
* all_to_all: every position sends bits to every other (no dependencies).
* gather:     every non-root sends bits to the root.
* broadcast:  the root sends bits to every other position (one multicast with ``multicast``).
* p2p:        position 0 sends bits to position 1.

A single participant sends nothing. "auto" is resolved by the caller (the topology's
``default_algorithm``); ring/direct/star only differ for all_gather, all_reduce, reduce_scatter.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

RING_CAPABLE = ("all_gather", "all_reduce", "reduce_scatter")
ALGORITHMS = ("ring", "direct", "star")  # the algorithms of RING_CAPABLE collectives (one home: schemas import it)


@dataclass(frozen=True, slots=True)
class Plan:
    n: int
    src: tuple[int, ...]
    dsts: tuple[tuple[int, ...], ...]
    frac: tuple[float, ...]
    deps: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.src)

    def levels(self) -> tuple[tuple[int, int], ...]:
        """Per message (senders, share): how many positions send in its step of the plan (step =
        the length of its longest dependency chain) and how many messages its own sender sends in
        that step. What a shared medium's contention depends on: a p2p is (1, 1), a ring step
        (n, 1), a direct all-gather (n, n - 1)."""
        depth: list[int] = []
        for deps in self.deps:
            depth.append(1 + max(depth[d] for d in deps) if deps else 0)
        senders: dict[int, set] = {}
        share: dict[tuple[int, int], int] = {}
        for m, s in enumerate(self.src):
            senders.setdefault(depth[m], set()).add(s)
            share[(depth[m], s)] = share.get((depth[m], s), 0) + 1
        return tuple((len(senders[depth[m]]), share[(depth[m], s)]) for m, s in enumerate(self.src))


class _Builder:
    def __init__(self) -> None:
        self.src: list[int] = []
        self.dsts: list[tuple[int, ...]] = []
        self.frac: list[float] = []
        self.deps: list[tuple[int, ...]] = []
        self._last: dict[tuple[int, int], int] = {}  # (src, dst) -> its latest message

    def add(self, src: int, dsts: tuple[int, ...], frac: float, deps: tuple[int, ...] = ()) -> int:
        """Message src -> dsts after `deps` (data it needs) and after src's previous message to
        any of dsts (one connection per pair, in order: see the module docstring)."""
        m = len(self.src)
        fifo = tuple(self._last[(src, d)] for d in dsts if (src, d) in self._last)
        self.src.append(src)
        self.dsts.append(dsts)
        self.frac.append(frac)
        self.deps.append(tuple(sorted(set(deps) | set(fifo))))
        for d in dsts:
            self._last[(src, d)] = m
        return m

    def plan(self, n: int) -> Plan:
        return Plan(n, tuple(self.src), tuple(self.dsts), tuple(self.frac), tuple(self.deps))


def _ring(b: _Builder, n: int, steps: int, frac: float) -> None:
    prev: list[int] = []
    for _ in range(steps):
        cur = [b.add(i, ((i + 1) % n,), frac, (prev[(i - 1) % n],) if prev else ()) for i in range(n)]
        prev = cur


def _fan_out(b: _Builder, n: int, src: int, frac: float, multicast: bool, deps: tuple[int, ...] = ()) -> list[int]:
    others = tuple(j for j in range(n) if j != src)
    if multicast and len(others) > 1:
        return [b.add(src, others, frac, deps)]
    return [b.add(src, (j,), frac, deps) for j in others]


def _star(b: _Builder, n: int, root: int, up: float, down: float, multicast: bool) -> None:
    """Every other position sends `up` to the root; then the root sends `down` to each of them
    (one multicast with `multicast`), after all of the uploads."""
    ups = tuple(b.add(i, (root,), up) for i in range(n) if i != root)
    _fan_out(b, n, root, down, multicast, ups)


@lru_cache(maxsize=4096)
def plan(collective: str, n: int, algorithm: str = "direct", root: int = 0, multicast: bool = False) -> Plan:
    """The messages of `collective` over n positions (`root` is a position)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS} (resolve auto first), got {algorithm!r}")
    b = _Builder()
    if n < 2:
        return b.plan(n)
    ring = algorithm == "ring"
    if algorithm == "star" and collective in RING_CAPABLE:
        if not 0 <= root < n:
            raise ValueError(f"root position {root} outside 0..{n - 1}")
        cast = multicast and n > 2 and collective != "reduce_scatter"
        down = {"all_gather": float(n if cast else n - 1), "all_reduce": 1.0, "reduce_scatter": 1.0 / n}[collective]
        _star(b, n, root, 1.0, down, cast)
    elif collective == "all_gather":
        if ring:
            _ring(b, n, n - 1, 1.0)
        else:
            for i in range(n):
                _fan_out(b, n, i, 1.0, multicast)
    elif collective == "reduce_scatter":
        if ring:
            _ring(b, n, n - 1, 1.0 / n)
        else:
            for i in range(n):
                _fan_out(b, n, i, 1.0 / n, False)
    elif collective == "all_reduce":
        if ring:
            _ring(b, n, 2 * (n - 1), 1.0 / n)
        else:
            received: list[list[int]] = [[] for _ in range(n)]
            for i in range(n):
                for m in _fan_out(b, n, i, 1.0 / n, False):
                    received[b.dsts[m][0]].append(m)
            for i in range(n):
                _fan_out(b, n, i, 1.0 / n, multicast, tuple(received[i]))
    elif collective == "all_to_all":
        for i in range(n):
            _fan_out(b, n, i, 1.0, False)
    elif collective == "gather":
        for i in range(n):
            if i != root:
                b.add(i, (root,), 1.0)
    elif collective == "broadcast":
        _fan_out(b, n, root, 1.0, multicast)
    elif collective == "p2p":
        if n != 2:
            raise ValueError("p2p needs exactly two participants")
        b.add(0, (1,), 1.0)
    else:
        raise ValueError(f"unknown collective {collective!r}")
    return b.plan(n)


def resolve_algorithm(collective: str, algorithm: str, default: str) -> str:
    """'auto' -> the topology default for ring-capable collectives; others are always direct."""
    if collective not in RING_CAPABLE:
        return "direct"
    if algorithm == "auto":
        return default
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; use auto, {', '.join(ALGORITHMS)}")
    return algorithm
