"""The message-CPU microbenchmark's fit (astrasim/validation/interference.py): the simulator, run on
the microbenchmark's own graphs, recovers a known per-message cost from chain delays."""

from __future__ import annotations

import pytest

from astrasim.engine import simulate
from astrasim.engine.cores import Placement
from astrasim.network.topology import build_topology
from astrasim.opgraph import Comm
from astrasim.validation.interference import CHAIN_OPS, chain_graph, fit_message_cpu, lockstep_graph, measured_delay_s


def _records(n: int, quiet_s: float, delay_s: float, messages: int = 40, pairs: int = 5) -> list[dict]:
    return [{"quiet": [quiet_s] * pairs, "busy": [quiet_s + delay_s] * pairs, "messages": messages} for _ in range(n)]


def test_chain_graph_pairs_ranks_across_the_halves():
    g = chain_graph(4, 6, seconds=0.01)
    comms = [op for op in g.ops if isinstance(op, Comm)]
    assert len(comms) == 12 and {c.devices for c in comms} == {(0, 2), (2, 0), (1, 3), (3, 1)}
    assert sum(op.seconds for op in g.ops if not isinstance(op, Comm)) == pytest.approx(4 * CHAIN_OPS * 0.01)


@pytest.mark.parametrize("n, hosts, share, per_core", [(2, 2, 1.0, 1), (4, 2, 0.5, 2)])
def test_fit_recovers_the_cost_per_message(n, hosts, share, per_core):
    """A rank sends or receives 40 messages; with k ranks per core its chain waits for the bursts
    of all k: delay = k x 40 x cost."""
    cost = 1e-4
    topo = build_topology("switch", n, 1000.0, latency_s=2e-4)
    records = _records(n, 0.08 * per_core, per_core * 40 * cost)
    assert measured_delay_s(records) == pytest.approx(per_core * 40 * cost)
    fitted = fit_message_cpu(records, topo, Placement.of(n, hosts, 1), [share] * n)
    assert fitted == pytest.approx(cost, rel=0.05)


def test_no_delay_fits_no_cost():
    topo = build_topology("switch", 2, 1000.0, latency_s=2e-4)
    records = _records(2, 0.08, -0.001)  # faster while messaging: noise, not a negative cost
    assert fit_message_cpu(records, topo, Placement.of(2, 2, 1), [1.0, 1.0]) == 0.0


def test_lockstep_graph_exchanges_after_every_op_and_waits_for_the_peer():
    g = lockstep_graph(4, True, seconds=0.01)
    comms = [op for op in g.ops if isinstance(op, Comm)]
    assert len(comms) == 4 * (CHAIN_OPS - 1) and {c.devices for c in comms} == {(0, 2), (2, 0), (1, 3), (3, 1)}
    second = next(op for op in g.ops if op.id == "d0.w1")
    assert set(second.deps) == {"d0.w0", "x2.0.m0"}
    assert not any(isinstance(op, Comm) for op in lockstep_graph(4, False, seconds=0.01).ops)


@pytest.mark.parametrize("n, hosts, share", [(2, 2, 1.0), (4, 2, 0.5)])
def test_lockstep_fit_recovers_the_cost_beyond_the_latency(n, hosts, share):
    """Records made by the simulator itself at a known cost (the messages' latency alone delays a
    lockstep chain too): the fit gives that cost back, and no delay beyond the latency gives 0."""
    cost, op_s = 3e-4, 0.005
    topo = build_topology("switch", n, 100.0, latency_s=5e-4)
    placement = Placement.of(n, hosts, 1)

    def chain_s(busy: bool, c: float) -> list[float]:
        res = simulate(lockstep_graph(n, busy, op_s), topo, placement=placement, message_cpu_s=c, record_timeline=True)
        return [max(e.end for e in res.timeline if e.kind == "compute" and e.device == d) for d in range(n)]

    def records(c: float) -> list[dict]:
        return [
            {"quiet": [q] * 5, "busy": [b] * 5, "messages": 40, "lockstep": True}
            for q, b in zip(chain_s(False, 0.0), chain_s(True, c))
        ]

    assert fit_message_cpu(records(cost), topo, placement, [share] * n) == pytest.approx(cost, rel=0.05)
    assert fit_message_cpu(records(0.0), topo, placement, [share] * n) == pytest.approx(0.0, abs=1e-6)
