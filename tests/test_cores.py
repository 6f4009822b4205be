"""Hosts with cores: processor sharing of compute (astrasim/engine/cores.py) and the per-op
dispatch cost, exact small cases."""

from __future__ import annotations

import pytest

from astrasim.engine import simulate
from astrasim.engine.cores import Placement
from astrasim.network.topology import build_topology
from astrasim.opgraph import Comm, Compute, OpGraph


def _independent(n: int, seconds: float = 1.0) -> OpGraph:
    return OpGraph(n, [Compute(f"c{d}", d, seconds) for d in range(n)])


def _run(graph, hosts, cores, **kw):
    topo = build_topology("ideal", graph.n_devices, 100.0)
    return simulate(graph, topo, placement=Placement.of(graph.n_devices, hosts, cores), **kw)


def test_two_devices_on_one_core_finish_at_two_seconds():
    res = _run(_independent(2), hosts=1, cores=1)
    assert res.latency_s == pytest.approx(2.0)
    assert res.compute_s == pytest.approx([2.0, 2.0])  # busy (at half a core) the whole time


def test_one_device_alone_runs_at_full_speed():
    assert _run(_independent(1), hosts=1, cores=1).latency_s == pytest.approx(1.0)
    assert _run(_independent(2), hosts=1, cores=2).latency_s == pytest.approx(1.0)  # a core each


def test_no_placement_is_a_processor_per_device():
    g = _independent(4)
    topo = build_topology("ideal", 4, 100.0)
    assert simulate(g, topo).latency_s == simulate(g, topo, placement=Placement.of(4, 4, 1)).latency_s == 1.0


def test_sharing_rerates_when_a_compute_ends():
    """Four devices on two cores, computes of 1, 1, 2, 2 s: all at half speed until t = 2 (the
    short ones end), then the long ones have 1 s left at a full core each: end at 3 s."""
    g = OpGraph(4, [Compute(f"c{d}", d, s) for d, s in enumerate((1.0, 1.0, 2.0, 2.0))])
    res = _run(g, hosts=1, cores=2, record_timeline=True)
    ends = {e.device: e.end for e in res.timeline if e.kind == "compute"}
    assert ends == pytest.approx({0: 2.0, 1: 2.0, 2: 3.0, 3: 3.0})


def test_hosts_are_contiguous_blocks_and_share_only_within():
    assert Placement.of(4, 2, 1).host_of == (0, 0, 1, 1)
    assert _run(_independent(4), hosts=2, cores=1).latency_s == pytest.approx(2.0)


def test_a_waiting_device_leaves_its_core_to_the_others():
    """One core, two devices. Device 1 waits for a's message: a runs alone at full speed (ends at
    1 s), then b (device 1) and c (device 0) share the core: both end at 3 s."""
    g = OpGraph(
        2,
        [
            Compute("a", 0, 1.0),
            Comm("m", "p2p", (0, 1), 0.0, ("a",)),
            Compute("b", 1, 1.0, ("m",)),
            Compute("c", 0, 1.0, ("a",)),
        ],
    )
    assert _run(g, hosts=1, cores=1).latency_s == pytest.approx(3.0)
    assert simulate(g, build_topology("ideal", 2, 100.0)).latency_s == pytest.approx(2.0)


def test_op_overhead_is_added_to_every_compute():
    g = OpGraph(1, [Compute("a", 0, 1.0), Compute("b", 0, 1.0, ("a",))])
    topo = build_topology("ideal", 1, 100.0)
    assert simulate(g, topo, op_overhead_s=0.1).latency_s == pytest.approx(2.2)
    assert simulate(g, topo, op_overhead_s=0.0).latency_s == 2.0


def test_scenario_hosts_reach_the_engine():
    """hardware.hosts / cores_per_host / op_overhead_s / message_cpu_s go from the scenario to the
    engine inputs."""
    from astrasim.pointrun import engine_inputs
    from astrasim.scenario.grid import expand
    from astrasim.scenario.loading import from_dict

    sc = from_dict(
        {
            "name": "cores",
            "models": ["gpt2-s"],
            "strategies": [{"name": "tp"}],
            "devices": [4],
            "hardware": {"hosts": 1, "cores_per_host": 2, "op_overhead_s": 1e-4, "message_cpu_s": 2e-4},
            "network": {"topology": "ideal"},
        }
    )
    inputs = engine_inputs(expand(sc)[0])
    assert inputs.placement == Placement((0, 0, 0, 0), (2,)) and inputs.op_overhead_s == 1e-4
    assert inputs.message_cpu_s == 2e-4


# ---------------------------------------------------------------- messages cost CPU (message_cpu_s)
def _computing_while_messaging(messages: int) -> OpGraph:
    """Both devices compute 1 s; meanwhile a chain of p2p messages of no size goes back and forth."""
    ops = [Compute("c0", 0, 1.0), Compute("c1", 1, 1.0)]
    ops += [Comm(f"m{k}", "p2p", (k % 2, 1 - k % 2), 0.0, (f"m{k - 1}",) if k else ()) for k in range(messages)]
    return OpGraph(2, ops)


def test_each_message_slows_its_computing_sender_and_receiver():
    """4 messages at 1 ms alpha (all inside the computes): each device sends 2 and receives 2, so
    each compute takes 4 x 10 ms longer (the burst shares the core with it)."""
    topo = build_topology("switch", 2, 100.0, latency_s=1e-3)
    res = simulate(_computing_while_messaging(4), topo, message_cpu_s=0.01, record_timeline=True)
    ends = {e.op: e.end for e in res.timeline if e.kind == "compute"}
    assert ends == pytest.approx({"c0": 1.04, "c1": 1.04})
    assert simulate(_computing_while_messaging(4), topo).latency_s == pytest.approx(1.0)


def test_an_idle_host_absorbs_the_message_cost():
    """The send's cost falls on device 0's core after its compute (idle: nothing waits); the
    receive's cost shares device 1's core with b, which starts at the same instant: 10 ms later."""
    g = OpGraph(2, [Compute("a", 0, 1.0), Comm("m", "p2p", (0, 1), 0.0, ("a",)), Compute("b", 1, 1.0, ("m",))])
    topo = build_topology("ideal", 2, 100.0)
    assert simulate(g, topo, message_cpu_s=0.01).latency_s == pytest.approx(2.01)  # b shares with the receive
    assert simulate(g, topo).latency_s == pytest.approx(2.0)


def test_message_cost_on_a_shared_core_is_shared_by_its_devices():
    """Devices 0 and 1 on one core compute 1 s each (2 s together); device 2 (own host) sends them
    a message each: 2 bursts on the shared core, 20 ms more for both."""
    ops = [Compute("c0", 0, 1.0), Compute("c1", 1, 1.0), Comm("a", "p2p", (2, 0), 0.0), Comm("b", "p2p", (2, 1), 0.0)]
    topo = build_topology("switch", 3, 100.0, latency_s=1e-3)
    res = simulate(OpGraph(3, ops), topo, placement=Placement((0, 0, 1), (1, 1)), message_cpu_s=0.01)
    assert res.latency_s == pytest.approx(2.02)


def test_message_cpu_must_be_finite_and_not_negative():
    from astrasim.errors import UserError

    topo = build_topology("ideal", 2, 100.0)
    for bad in (-1e-3, float("inf")):
        with pytest.raises(UserError, match="message_cpu_s"):
            simulate(_computing_while_messaging(2), topo, message_cpu_s=bad)
