"""Property tests (hypothesis): invariants of the engine on random layered programs."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrasim.engine import simulate
from astrasim.network.topology import Fabric, build_topology
from astrasim.opgraph import Comm, Compute, OpGraph

KINDS = ["mesh", "switch", "wifi", "wifi-adhoc", "ideal"]
HOPS = {"mesh": 1, "ideal": 1, "switch": 2, "wifi": 2, "wifi-adhoc": 1}  # link crossings per message
COLLECTIVES = ["all_gather", "all_reduce", "reduce_scatter", "all_to_all", "gather", "broadcast", "p2p"]


@st.composite
def programs(draw):
    """Per layer: a compute per device, one collective over a random subset, a compute after it."""
    n = draw(st.integers(2, 5))
    g = OpGraph(n)
    last = [None] * n
    for layer in range(draw(st.integers(1, 4))):
        for d in range(n):
            last[d] = g.add(
                Compute(f"L{layer}.pre{d}", d, draw(st.floats(0, 0.02)), deps=(last[d],) if last[d] else ())
            )
        coll = draw(st.sampled_from(COLLECTIVES))
        k = 2 if coll == "p2p" else draw(st.integers(2, n))
        devs = tuple(draw(st.permutations(range(n)))[:k])
        root = draw(st.sampled_from(devs)) if coll in ("gather", "broadcast") else None
        c = g.add(
            Comm(
                f"L{layer}.c",
                coll,
                devs,
                draw(st.floats(0, 2e6)),
                root=root,
                algorithm=draw(st.sampled_from(["auto", "ring", "direct"])),
                deps=tuple(last[d] for d in devs),
            )
        )
        for d in devs:
            last[d] = g.add(Compute(f"L{layer}.post{d}", d, draw(st.floats(0, 0.02)), deps=(c, last[d])))
    return g


@st.composite
def dags(draw):
    """Random DAGs: computes depend on any earlier compute or on a comm their device joins;
    comms depend on any earlier ops (deps of non-participants gate nobody)."""
    n = draw(st.integers(2, 4))
    g = OpGraph(n)
    computes, comms = [], []
    for k in range(draw(st.integers(1, 14))):
        earlier = computes + comms
        if draw(st.booleans()) or not computes:
            d = draw(st.integers(0, n - 1))
            pool = computes + [c.id for c in comms if d in c.devices]
            deps = tuple(sorted(set(draw(st.lists(st.sampled_from(pool), max_size=3))))) if pool else ()
            computes.append(g.add(Compute(f"c{k}", d, draw(st.floats(0, 0.02)), deps=deps)))
        else:
            coll = draw(st.sampled_from(COLLECTIVES))
            m = 2 if coll == "p2p" else draw(st.integers(1, n))
            devs = tuple(draw(st.permutations(range(n)))[:m])
            root = devs[0] if coll in ("gather", "broadcast") else None
            ids = [e if isinstance(e, str) else e.id for e in earlier]
            deps = tuple(sorted(set(draw(st.lists(st.sampled_from(ids), max_size=3))))) if ids else ()
            op = Comm(
                f"m{k}",
                coll,
                devs,
                draw(st.floats(0, 1e6)),
                root=root,
                deps=deps,
                algorithm=draw(st.sampled_from(["auto", "ring", "direct"])),
            )
            g.add(op)
            comms.append(op)
    return g


networks = st.tuples(st.sampled_from(KINDS), st.floats(1.0, 1000.0), st.floats(0.0, 5e-3), st.booleans())
SETTINGS = settings(
    max_examples=int(os.environ.get("ASTRASIM_HYPOTHESIS_EXAMPLES", 150)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def topo(net, n, scale=1.0):
    kind, mbps, alpha, bcast = net
    return build_topology(kind, n, mbps * scale, latency_s=alpha, broadcast=bcast)


@SETTINGS
@given(st.one_of(programs(), dags()), networks, st.floats(1.0, 20.0))
def test_more_bandwidth_never_increases_latency(g, net, factor):
    slow = simulate(g, topo(net, g.n_devices)).latency_s
    fast = simulate(g, topo(net, g.n_devices, factor)).latency_s
    assert fast <= slow * (1 + 1e-9) + 1e-12


@SETTINGS
@given(programs(), networks)
def test_bits_delivered_equal_bits_sent_and_links_carry_them(g, net):
    t = topo(net, g.n_devices)
    r = simulate(g, t)
    assert r.meta["bits_delivered"] == pytest.approx(r.comm_bits, rel=1e-9, abs=1e-6)
    if not net[3]:  # unicast only: every message crosses a fixed number of links
        assert sum(r.link_bits.values()) == pytest.approx(HOPS[net[0]] * r.comm_bits, rel=1e-9, abs=1e-6)


@SETTINGS
@given(programs(), networks, st.lists(st.floats(0.25, 4.0), min_size=5, max_size=5))
def test_latency_is_at_least_the_bottleneck_bound_and_accounting_adds_up(g, net, speeds):
    t = topo(net, g.n_devices)
    speeds = speeds[: g.n_devices]
    r = simulate(g, t, speeds=speeds)
    fabric = Fabric(t)
    media = t.graph.get("media", {})

    def floor_bps(res):  # a lone Wi-Fi message may beat its bulk share (no backoff), never the PHY rate
        return res.capacity_bps / media[res.name]["efficiency"] if res.overhead_s else res.capacity_bps

    busiest_link = max((r.link_bits[res.name] / floor_bps(res) for res in fabric.resources), default=0.0)
    work = [
        sum(op.seconds for op in g.ops if isinstance(op, Compute) and op.device == d) / speeds[d]
        for d in range(g.n_devices)
    ]
    assert r.latency_s >= busiest_link * (1 - 1e-9)
    assert r.latency_s >= max(work) * (1 - 1e-9)
    assert r.compute_s == pytest.approx(work)
    for c, e, i in zip(r.compute_s, r.exposed_comm_s, r.idle_s):
        assert e >= -1e-12 and i >= -1e-12
        assert c + e + i == pytest.approx(r.latency_s, rel=1e-9, abs=1e-12)


@SETTINGS
@given(programs(), networks)
def test_results_are_deterministic(g, net):
    a = simulate(g, topo(net, g.n_devices), record_timeline=True)
    b = simulate(g, topo(net, g.n_devices), record_timeline=True)
    assert a == b
    assert a.to_chrome_trace() == b.to_chrome_trace()


@SETTINGS
@given(dags(), networks)
def test_random_dags_run_deterministically_and_account_for_every_bit(g, net):
    t = topo(net, g.n_devices)
    a = simulate(g, t, record_timeline=True)
    assert a == simulate(g, t, record_timeline=True)
    assert a.meta["bits_delivered"] == pytest.approx(a.comm_bits, rel=1e-9, abs=1e-6)
    for c, e, i in zip(a.compute_s, a.exposed_comm_s, a.idle_s):
        assert c + e + i == pytest.approx(a.latency_s, rel=1e-9, abs=1e-12)
    done = {e.op for e in a.timeline if e.kind in ("compute", "comm")}
    assert done == {op.id for op in g.ops}
