"""A compiled Program: one compile, many runs, each exactly the run `simulate` makes; the network
knows nothing of the engine's clock."""

import subprocess
import sys

import pytest

from astrasim.engine import compile, simulate
from astrasim.engine.cores import Placement
from astrasim.network.topology import build_topology
from astrasim.opgraph import Comm, Compute, OpGraph


def ring_layers(n: int, layers: int) -> OpGraph:
    g = OpGraph(n)
    prev = [None] * n
    for layer in range(layers):
        for d in range(n):
            prev[d] = g.add(Compute(f"c{layer}.{d}", d, 1e-3 * (1 + d), deps=(prev[d],) if prev[d] else ()))
        ag = g.add(Comm(f"ag{layer}", "all_gather", tuple(range(n)), 8e4, deps=tuple(prev)))
        for d in range(n):
            prev[d] = g.add(Compute(f"u{layer}.{d}", d, 2e-3, deps=(ag,)))
    return g


@pytest.mark.parametrize("kind", ["switch", "wifi", "mesh"])
def test_runs_of_one_program_equal_fresh_simulate_calls_in_any_order(kind):
    g, topo = ring_layers(4, 3), build_topology(kind, 4, 50.0)
    program = compile(g, topo)
    options = [
        dict(speeds=[1.0, 0.7, 1.3, 0.9]),
        dict(),
        dict(speeds=[2.0, 1.0, 1.0, 0.5], record_timeline=True),
        dict(placement=Placement.of(4, 2, 1), message_cpu_s=1e-4, op_overhead_s=1e-4),
    ]
    fresh = [simulate(g, topo, **kw) for kw in options]
    again = [program.run(**kw) for kw in reversed(options)][::-1]  # other order: no state carried over
    for a, b in zip(fresh, again):
        assert (
            a.latency_s,
            a.compute_s,
            a.exposed_comm_s,
            a.idle_s,
            a.comm_bits,
            a.link_bits,
            a.n_messages,
            a.timeline,
        ) == (b.latency_s, b.compute_s, b.exposed_comm_s, b.idle_s, b.comm_bits, b.link_bits, b.n_messages, b.timeline)
    assert fresh[0].latency_s != fresh[1].latency_s  # the speeds reached the run


def test_a_program_keeps_the_graph_as_compiled():
    g, topo = ring_layers(2, 1), build_topology("ideal", 2, 10.0)
    program = compile(g, topo)
    before = program.run().latency_s
    g.add(Compute("late", 0, 5.0, deps=("u0.0", "u0.1")))  # the graph changes after compiling: the program does not
    assert program.run().latency_s == before
    assert simulate(g, topo).latency_s == pytest.approx(before + 5.0)


def test_the_network_imports_nothing_of_the_engine():
    code = (
        "import sys, astrasim.network.flows, astrasim.network.topology; "
        "print(any(m.startswith('astrasim.engine') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_op_ends_are_the_timeline_s_last_end_of_each_op():
    g, topo = ring_layers(3, 2), build_topology("wifi", 3, 20.0)
    program = compile(g, topo)
    timed, ends = program.run(record_timeline=True), program.run(record_op_ends=True)
    last: dict[str, float] = {}
    for e in timed.timeline:
        if e.kind != "message":
            last[e.op] = max(last.get(e.op, 0.0), e.end)
    assert ends.op_end_s == [last[op.id] for op in g.ops]
    assert ends.timeline is None and timed.op_end_s is None


def test_a_chained_compute_starts_at_its_predecessor_s_end_unless_an_earlier_op_is_ready():
    ideal = build_topology("ideal", 2, 10.0)
    g = OpGraph(1)
    for op in (Compute("a", 0, 1.0), Compute("b", 0, 2.0, deps=("a",)), Compute("s", 0, 0.5, deps=("b",))):
        g.add(op)
    program = compile(g, build_topology("ideal", 1, 10.0))
    assert program.chain_next == [1, 2, -1]  # b only waits for a, which only b waits for; s the same
    r = program.run(record_timeline=True)
    assert {e.op: e.start for e in r.timeline} == {"a": 0.0, "b": 1.0, "s": 3.0}
    # device 1 runs w, x, y in program order; y is x's chained successor, but w (earlier in program
    # order) becomes ready at x's end (1.0, with c's end on device 0): w runs first, then y
    g2 = OpGraph(2)
    for op in (
        Compute("c", 0, 1.0),
        Compute("w", 1, 1.0, deps=("c",)),
        Compute("x", 1, 1.0),
        Compute("y", 1, 1.0, deps=("x",)),
    ):
        g2.add(op)
    program2 = compile(g2, ideal)
    assert program2.chain_next[2] == 3
    r2 = program2.run(record_timeline=True)
    assert {e.op: e.start for e in r2.timeline} == {"c": 0.0, "x": 0.0, "w": 1.0, "y": 2.0}
