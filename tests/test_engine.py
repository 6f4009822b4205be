"""The engine: op-graph semantics, accounting, traces, deadlocks."""

import json

import pytest

from astrasim.engine import DeadlockError, SimResult, simulate
from astrasim.errors import UserError
from astrasim.network.topology import build_topology
from astrasim.opgraph import Comm, Compute, OpGraph

IDEAL = build_topology("ideal", 4, 10.0)  # s bits cost s / 1e7 seconds, nothing else


def graph(n, *ops):
    g = OpGraph(n)
    for op in ops:
        g.add(op)
    return g


def starts(res):
    return {e.op: e.start for e in res.timeline if e.kind == "compute"}


def test_compute_only_with_speed_factors():
    g = graph(2, Compute("a", 0, 1.0), Compute("b", 0, 2.0), Compute("c", 1, 3.0))
    r = simulate(g, IDEAL, speeds=[1.0, 2.0])
    assert r.latency_s == pytest.approx(3.0)
    assert r.compute_s == pytest.approx([3.0, 1.5])
    assert r.idle_s == pytest.approx([0.0, 1.5]) and r.exposed_comm_s == [0.0, 0.0]
    assert r.n_messages == 0 and r.comm_bits == 0


def test_one_compute_at_a_time_in_program_order_among_ready_ops():
    g = graph(1, Compute("x", 0, 1.0), Compute("y", 0, 1.0), Compute("z", 0, 1.0, deps=("x",)))
    r = simulate(g, IDEAL, record_timeline=True)
    assert starts(r) == {"x": 0.0, "y": 1.0, "z": 2.0}


def test_a_later_op_that_is_ready_runs_before_an_earlier_one_that_is_not():
    g = graph(
        2,
        Compute("s", 1, 0.5),
        Comm("m", "p2p", (1, 0), 1e6, deps=("s",)),
        Compute("a", 0, 1.0, deps=("m",)),
        Compute("b", 0, 2.0),
    )
    r = simulate(g, IDEAL, record_timeline=True)
    assert starts(r)["b"] == 0.0 and starts(r)["a"] == pytest.approx(2.0)


def test_ops_ready_at_the_same_instant_start_in_program_order():
    # at t = 1 both a (by a message) and b (by the end of c0) become ready: a comes first
    g = graph(
        2,
        Compute("c0", 0, 1.0),
        Compute("d1", 1, 0.5),
        Comm("m", "p2p", (1, 0), 5e6, deps=("d1",)),
        Compute("a", 0, 1.0, deps=("m",)),
        Compute("b", 0, 1.0, deps=("c0",)),
    )
    r = simulate(g, IDEAL, record_timeline=True)
    assert starts(r)["a"] == 1.0 and starts(r)["b"] == 2.0


def test_compute_overlaps_communication_as_dependencies_allow():
    g = graph(
        2,
        Compute("p", 0, 0.5),
        Comm("m", "p2p", (0, 1), 1e7, deps=("p",)),
        Compute("busy", 0, 2.0),
        Compute("use", 1, 0.5, deps=("m",)),
    )
    r = simulate(g, IDEAL)
    # message 0.5 .. 1.5 overlaps device 0's 'busy' (0.5 .. 2.5); device 1 waits 1.5 then computes
    assert r.latency_s == pytest.approx(2.5)
    assert r.compute_s == pytest.approx([2.5, 0.5])
    assert r.exposed_comm_s == pytest.approx([0.0, 1.5])
    assert r.idle_s == pytest.approx([0.0, 0.5])


def test_comm_deps_are_read_per_participant():
    g = graph(
        3,
        Compute("a0", 0, 1.0),
        Compute("a1", 1, 3.0),
        Compute("x2", 2, 5.0),
        Comm("ag", "all_gather", (0, 1), 1e7, deps=("a0", "a1", "x2")),
        Compute("b0", 0, 1.0, deps=("ag",)),
        Compute("b1", 1, 1.0, deps=("ag",)),
    )
    r = simulate(g, IDEAL, record_timeline=True)
    msgs = {e.device: (e.start, e.end) for e in r.timeline if e.kind == "message"}
    assert msgs == {0: (1.0, 2.0), 1: (3.0, 4.0)}  # x2 (device 2 is no participant) gates nobody
    assert starts(r) == {"a0": 0.0, "a1": 0.0, "x2": 0.0, "b0": 4.0, "b1": 4.0}
    comm = {e.device: (e.start, e.end) for e in r.timeline if e.kind == "comm"}
    assert comm == {0: (1.0, 4.0), 1: (3.0, 4.0)}


def test_comm_complete_per_device():
    # gather to 0: device 2 is done as soon as its own message is delivered
    g = graph(
        3,
        Compute("s1", 1, 2.0),
        Comm("g", "gather", (0, 1, 2), 1e7, deps=("s1",), root=0),
        Compute("after2", 2, 1.0, deps=("g",)),
        Compute("after0", 0, 1.0, deps=("g",)),
    )
    r = simulate(g, IDEAL, record_timeline=True)
    assert starts(r)["after2"] == pytest.approx(1.0) and starts(r)["after0"] == pytest.approx(3.0)


def test_a_comm_waiting_on_a_comm():
    g = graph(
        3,
        Comm("m1", "p2p", (0, 1), 1e7),
        Comm("m2", "p2p", (1, 2), 1e7, deps=("m1",)),
        Compute("end", 2, 1.0, deps=("m2",)),
    )
    assert simulate(g, IDEAL).latency_s == pytest.approx(3.0)


def test_cross_device_compute_dependency_is_honoured():
    g = graph(2, Compute("a", 0, 2.0), Compute("b", 1, 1.0, deps=("a",)))
    assert simulate(g, IDEAL).latency_s == pytest.approx(3.0)


def test_deadlock_when_a_device_waits_on_a_comm_it_does_not_join():
    g = graph(
        3,
        Compute("a0", 0, 1.0),
        Comm("m", "p2p", (0, 1), 1e6, deps=("a0",)),
        Compute("stuck", 2, 1.0, deps=("m",)),
        Compute("after", 2, 1.0, deps=("stuck",)),
    )
    with pytest.raises(DeadlockError) as err:
        simulate(g, IDEAL)
    assert err.value.devices == [2] and err.value.ops == ["stuck", "after"]
    assert "device 2 does not take part" in str(err.value) and isinstance(err.value, RuntimeError)


def test_deadlock_when_the_network_dies_forever():
    topo = build_topology("wifi", 2, 10.0, bandwidth_trace=[(0.0, 10.0), (0.5, 0.0)])
    g = graph(2, Comm("m", "p2p", (0, 1), 1e8), Compute("use", 1, 1.0, deps=("m",)))
    with pytest.raises(DeadlockError) as err:
        simulate(g, topo)
    assert err.value.devices == [0, 1] and err.value.ops == ["m", "use"]
    assert "never arrive" in str(err.value)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="later in program order"):
        simulate(graph(1, Compute("a", 0, 1.0, deps=("b",)), Compute("b", 0, 1.0)), IDEAL)
    with pytest.raises(UserError, match="speeds"):
        simulate(graph(2, Compute("a", 0, 1.0)), IDEAL, speeds=[1.0])
    with pytest.raises(UserError, match="speeds"):
        simulate(graph(2, Compute("a", 0, 1.0)), IDEAL, speeds=[1.0, 0.0])
    with pytest.raises(UserError, match="lacks device"):
        simulate(graph(6, Compute("a", 5, 1.0)), IDEAL)


def test_chrome_trace(tmp_path):
    g = graph(
        2,
        Compute("a", 0, 1.0, name="attn", layer=0),
        Comm("ag", "all_gather", (0, 1), 1e6, deps=("a",)),
        Compute("b", 1, 1.0, deps=("ag",), name="mlp", layer=0),
    )
    r = simulate(g, build_topology("wifi", 2, 10.0), record_timeline=True)
    tr = r.to_chrome_trace()
    xs = [e for e in tr["traceEvents"] if e["ph"] == "X"]
    assert [(e["name"], e["tid"], e["ts"], e["dur"]) for e in xs][0] == ("attn", 0, 0.0, 1e6)
    begins = [e for e in tr["traceEvents"] if e["ph"] == "b"]
    ends = [e for e in tr["traceEvents"] if e["ph"] == "e"]
    assert len(begins) == len(ends) == 2 + 2  # two comm spans, two messages
    assert max(e["ts"] for e in ends) == pytest.approx(r.latency_s * 1e6 - 1e6)
    path = tmp_path / "t.json"
    r.write_chrome_trace(path)
    assert json.loads(path.read_text())["traceEvents"] == json.loads(json.dumps(tr["traceEvents"]))
    with pytest.raises(ValueError, match="record_timeline"):
        simulate(g, IDEAL).to_chrome_trace()


def test_result_fields_match_the_interface():
    r = simulate(graph(2, Comm("m", "p2p", (0, 1), 1e6)), build_topology("switch", 2, 10.0))
    assert isinstance(r, SimResult) and r.timeline is None
    assert r.comm_bits == 1e6 and r.n_messages == 1
    assert r.link_bits == {"0->switch": 1e6, "switch->0": 0.0, "1->switch": 0.0, "switch->1": 1e6}


def test_heterogeneous_devices_speed_factor():
    g = graph(2, Compute("a", 0, 1.0), Compute("b", 1, 1.0), Comm("ag", "all_gather", (0, 1), 0.0, deps=("a", "b")))
    assert simulate(g, IDEAL, speeds=[0.5, 4.0]).latency_s == pytest.approx(2.0)


def test_waiting_on_another_devices_compute_is_idle_not_exposed_comm():
    g = graph(2, Compute("a", 0, 2.0), Compute("b", 1, 1.0, deps=("a",)))
    r = simulate(g, IDEAL)
    assert r.exposed_comm_s == [0.0, 0.0] and r.idle_s == pytest.approx([1.0, 2.0])


def test_exposed_comm_counts_only_while_not_computing():
    # device 1 computes 1 s while its message (2 s) is in flight: 1 s of it is exposed
    g = graph(2, Comm("m", "p2p", (0, 1), 2e7), Compute("w", 1, 1.0), Compute("u", 1, 1.0, deps=("m",)))
    r = simulate(g, IDEAL)
    assert r.latency_s == pytest.approx(3.0)
    # device 0 has no compute: waiting for its own message to get through is exposed, then idle
    assert r.exposed_comm_s == pytest.approx([2.0, 1.0]) and r.idle_s == pytest.approx([1.0, 0.0])


def test_waiting_for_a_last_collective_is_exposed_comm_not_idle():
    # tp's shape: the run ends with an all-reduce that no compute consumes (issue 10)
    g = graph(2, Compute("a0", 0, 1.0), Compute("a1", 1, 0.5), Comm("ar", "all_reduce", (0, 1), 2e7, deps=("a0", "a1")))
    r = simulate(g, IDEAL)
    assert r.latency_s == pytest.approx(1.0 + 2 * 1e7 / 1e7)  # two steps of S/2 each
    # device 1 joined at 0.5: from then on it waits on the collective, as a Compute consuming it would
    assert r.exposed_comm_s == pytest.approx([2.0, 2.5]) and r.idle_s == pytest.approx([0.0, 0.0])


class _FlatCosts:
    def seconds(self, *args, **kwargs):
        return 0.01  # every op of every strategy


@pytest.mark.parametrize("strategy", ["tp", "sp"])
@pytest.mark.parametrize("kind", ["switch", "wifi"])
def test_homogeneous_tp_and_sp_have_no_idle_time(strategy, kind):
    from astrasim.models import get_model
    from astrasim.strategies import build_graph

    g = build_graph(strategy, get_model("gpt2-s"), _FlatCosts(), 4, 256)
    r = simulate(g, build_topology(kind, 4, 50.0))
    assert sum(r.exposed_comm_s) > 0
    assert r.idle_s == pytest.approx([0.0] * 4, abs=1e-9 * r.latency_s)
