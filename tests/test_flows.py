"""The max-min fair flow model on SimPy, driven directly (exact closed forms)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrasim.engine.clock import Clock
from astrasim.network.flows import FlowNetwork
from astrasim.network.topology import Resource

MBPS = 1e6


def _net(*resources):
    env = Clock()
    done = {}
    net = FlowNetwork(env, list(resources), lambda tag, payload: done.setdefault(payload, env.now))
    return env, net, done


def test_single_transfer_takes_alpha_plus_size_over_bandwidth():
    env, net, done = _net(Resource("l", 10 * MBPS))
    net.send(net.flow_class(((0, 1.0, 1),)), 3e6, 0.25, "m")
    env.run()
    assert done["m"] == pytest.approx(0.25 + 0.3, rel=1e-12)


@pytest.mark.parametrize("k", [1, 2, 7, 100])
def test_k_flows_on_one_link_finish_together(k):
    env, net, done = _net(Resource("l", 8 * MBPS))
    cls = net.flow_class(((0, 1.0, 1),))
    for i in range(k):
        net.send(cls, 2e6, 0.01, i)
    env.run()
    assert len(set(done.values())) == 1  # one instant, not k nearly-equal ones
    assert done[0] == pytest.approx(0.01 + k * 2e6 / 8e6, rel=1e-12)
    assert net.recomputes <= 2  # start and finish, not once per flow


def test_unequal_flows_share_then_the_survivor_speeds_up():
    env, net, done = _net(Resource("l", 10 * MBPS))
    cls = net.flow_class(((0, 1.0, 1),))
    net.send(cls, 1e6, 0.0, "small")
    net.send(cls, 4e6, 0.0, "big")
    env.run()
    assert done["small"] == pytest.approx(0.2)  # 5 Mbps each until 1e6 bits
    assert done["big"] == pytest.approx(0.2 + 3e6 / 10e6)  # then all 10 Mbps


def test_late_flow_joins_midway():
    env, net, done = _net(Resource("l", 10 * MBPS))
    cls = net.flow_class(((0, 1.0, 1),))
    net.send(cls, 2e6, 0.0, "a")
    net.send(cls, 1e6, 0.1, "b")  # arrives after a has 1e6 bits through
    env.run()
    # from 0.1: both at 5 Mbps; both have 1e6 left -> 0.3
    assert done["a"] == pytest.approx(0.3) and done["b"] == pytest.approx(0.3)


def test_max_min_over_two_links():
    # A uses r0 (10 Mbps); B uses r0 and r1; C uses r1 (4 Mbps). r1 is the bottleneck:
    # B = C = 2 Mbps, A gets the rest of r0: 8 Mbps.
    env, net, done = _net(Resource("r0", 10 * MBPS), Resource("r1", 4 * MBPS))
    net.send(net.flow_class(((0, 1.0, 1),)), 8e6, 0.0, "A")
    net.send(net.flow_class(((0, 1.0, 1), (1, 1.0, 1))), 2e6, 0.0, "B")
    net.send(net.flow_class(((1, 1.0, 1),)), 2e6, 0.0, "C")
    env.run()
    assert done["A"] == pytest.approx(1.0)
    assert done["B"] == pytest.approx(1.0)
    assert done["C"] == pytest.approx(1.0)


def test_max_min_rates_change_when_a_bottleneck_flow_leaves():
    env, net, done = _net(Resource("r0", 10 * MBPS), Resource("r1", 4 * MBPS))
    net.send(net.flow_class(((0, 1.0, 1),)), 9e6, 0.0, "A")
    net.send(net.flow_class(((0, 1.0, 1), (1, 1.0, 1))), 4e6, 0.0, "B")
    net.send(net.flow_class(((1, 1.0, 1),)), 1e6, 0.0, "C")
    env.run()
    # phase 1: B = C = 2, A = 8; C done at 0.5 (A 4e6, B 1e6 through).
    # phase 2: B limited by r1 = 4 but r0 fair share 5 -> B = 4, A = 6; B needs 3e6 -> 0.75 s.
    # A: 4e6 + 6*0.75 = 8.5e6 at 1.25; last 0.5e6 alone at 10 Mbps -> 1.30.
    assert done["C"] == pytest.approx(0.5)
    assert done["B"] == pytest.approx(1.25)
    assert done["A"] == pytest.approx(1.30)


def test_a_medium_crossed_twice_costs_twice_the_airtime():
    env, net, done = _net(Resource("air", 6 * MBPS))
    net.send(net.flow_class(((0, 2.0, 2),)), 3e6, 0.0, "twice")
    env.run()
    assert done["twice"] == pytest.approx(1.0)
    assert net.link_bits() == {"air": 6e6}


def test_bandwidth_trace_halving_mid_transfer():
    # 10 Mbps until t = 1, then 5 Mbps. 15e6 bits starting at alpha = 0.5:
    # 0.5 s at 10 Mbps (5e6 bits, until t = 1) then 10e6 at 5 Mbps (2 s): done at 3.0.
    trace = ((0.0, 10 * MBPS), (1.0, 5 * MBPS))
    env, net, done = _net(Resource("l", 10 * MBPS, trace))
    net.send(net.flow_class(((0, 1.0, 1),)), 15e6, 0.5, "m")
    env.run()
    assert done["m"] == pytest.approx(3.0, rel=1e-12)


def test_trace_outage_stalls_then_resumes():
    trace = ((0.0, 10 * MBPS), (0.1, 0.0), (0.6, 10 * MBPS))
    env, net, done = _net(Resource("l", 10 * MBPS, trace))
    net.send(net.flow_class(((0, 1.0, 1),)), 2e6, 0.0, "m")
    env.run()
    assert done["m"] == pytest.approx(0.7)


def test_trace_outage_forever_leaves_flow_undelivered_and_queue_empty():
    trace = ((0.0, 10 * MBPS), (0.1, 0.0))
    env, net, done = _net(Resource("l", 10 * MBPS, trace))
    net.send(net.flow_class(((0, 1.0, 1),)), 2e6, 0.0, "m")
    env.run()  # returns: nothing left to happen
    assert "m" not in done and net.active_flows == 1


def test_zero_bit_message_costs_alpha_only():
    env, net, done = _net(Resource("l", 10 * MBPS))
    net.send(net.flow_class(((0, 1.0, 1),)), 0.0, 0.003, "z")
    env.run()
    assert done["z"] == pytest.approx(0.003)


def test_group_send_is_k_flows():
    env, net, done = _net(Resource("l", 10 * MBPS))
    cls = net.flow_class(((0, 1.0, 1),))
    net.send(cls, 1e6, 0.0, "group", count=4)
    net.send(cls, 1e6, 0.0, "single")
    env.run()
    assert done["group"] == pytest.approx(0.5) and done["single"] == pytest.approx(0.5)
    assert net.bits_delivered == pytest.approx(5e6)


def test_many_classes_heap_progressive_filling():
    # 50 private links of 1 Mbps feeding one 10 Mbps shared link: everyone gets 0.2 Mbps.
    res = [Resource("shared", 10 * MBPS)] + [Resource(f"p{i}", 1 * MBPS) for i in range(50)]
    env, net, done = _net(*res)
    for i in range(50):
        net.send(net.flow_class(((0, 1.0, 1), (i + 1, 1.0, 1))), 0.2e6, 0.0, i)
    env.run()
    assert sorted(done.values()) == pytest.approx([1.0] * 50)


# ---------------------------------------------------------------- against a plain reference
def reference_finish_times(caps, flows):
    """Straightforward fluid simulation: per-flow progressive filling recomputed at every event."""
    pending = sorted(range(len(flows)), key=lambda f: flows[f][0])
    remaining = {f: flows[f][1] for f in range(len(flows))}
    active, finish, t = set(), {}, 0.0
    while pending or active:
        rates = {}
        unfrozen = set(active)
        used = {r: 0.0 for r in range(len(caps))}
        while unfrozen:
            level, bottleneck = math.inf, None
            for r in range(len(caps)):
                w = sum(flows[f][2].get(r, 0.0) for f in unfrozen)
                if w > 0 and (caps[r] - used[r]) / w < level:
                    level, bottleneck = (caps[r] - used[r]) / w, r
            for f in [f for f in unfrozen if bottleneck in flows[f][2]]:
                rates[f] = level
                unfrozen.discard(f)
                for r, a in flows[f][2].items():
                    used[r] += a * level
        t_next = flows[pending[0]][0] if pending else math.inf
        for f in active:
            if rates[f] > 0:
                t_next = min(t_next, t + remaining[f] / rates[f])
        for f in active:
            remaining[f] -= rates[f] * (t_next - t)
        t = t_next
        for f in list(active):
            if remaining[f] <= 1e-9 * flows[f][1]:
                active.discard(f)
                finish[f] = t
        while pending and flows[pending[0]][0] <= t:
            f = pending.pop(0)
            if flows[f][1] == 0:
                finish[f] = t
            else:
                active.add(f)
    return finish


flow_sets = st.integers(1, 4).flatmap(
    lambda n_res: st.tuples(
        st.lists(st.floats(1e6, 1e8), min_size=n_res, max_size=n_res),
        st.lists(
            st.tuples(
                st.sampled_from([0.0, 0.0, 0.1, 0.25, 0.3]),
                st.sampled_from([0.0, 1e6, 2e6, 5e6, 3.3e6]),
                st.dictionaries(
                    st.integers(0, n_res - 1), st.sampled_from([1.0, 2.0, 0.5]), min_size=1, max_size=n_res
                ),
            ),
            min_size=1,
            max_size=12,
        ),
    )
)


@settings(max_examples=300, deadline=None)
@given(flow_sets)
def test_incremental_max_min_matches_a_plain_reference(case):
    caps, flows = case
    env, net, done = _net(*[Resource(f"r{i}", c) for i, c in enumerate(caps)])
    for f, (start, bits, usage) in enumerate(flows):
        net.send(net.flow_class(tuple((r, a, 1) for r, a in sorted(usage.items()))), bits, start, f)
    env.run()
    ref = reference_finish_times(caps, flows)
    assert sorted(done) == sorted(ref)
    for f in ref:
        assert done[f] == pytest.approx(ref[f], rel=1e-7, abs=1e-12)


# ---------------------------------------------------------------- lockstep bundles
def _bundle_net(*resources):
    env = Clock()
    done = {}
    net = FlowNetwork(env, list(resources), lambda tag, payload: done.setdefault(payload, env.now))
    return env, net, done


def test_a_fan_out_over_free_links_moves_as_one_bundle():
    env, net, done = _bundle_net(*[Resource(f"l{i}", 10 * MBPS) for i in range(3)])
    parts = tuple((net.flow_class(((i, 1.0, 1),)), 1, f"p{i}") for i in range(3))
    net.send_parts(parts, 2e6, 0.01, None, "whole")
    env.run()
    assert done == {"whole": pytest.approx(0.01 + 0.2, rel=1e-12)}  # one delivery, not three
    assert net.link_bits() == {"l0": 2e6, "l1": 2e6, "l2": 2e6}


def test_a_bundle_splits_when_a_flow_joins_one_of_its_links():
    # three 1e6-bit messages on three 10 Mbps links from t = 0; at t = 0.05 a 1e6-bit flow joins
    # link 0: from then its member shares l0 (5 Mbps each), the other two finish alone at 0.1.
    env, net, done = _bundle_net(*[Resource(f"l{i}", 10 * MBPS) for i in range(3)])
    parts = tuple((net.flow_class(((i, 1.0, 1),)), 1, f"p{i}") for i in range(3))
    net.send_parts(parts, 1e6, 0.0, None, "whole")
    net.send(net.flow_class(((0, 1.0, 1),)), 1e6, 0.05, "late")
    env.run()
    assert "whole" not in done
    assert done["p1"] == pytest.approx(0.1) and done["p2"] == pytest.approx(0.1)
    assert done["p0"] == pytest.approx(0.05 + 2 * 0.5e6 / 10e6)  # its last 0.5e6 bits at half rate
    assert done["late"] == pytest.approx(0.15 + 0.5e6 / 10e6)


def test_members_with_a_lighter_bottleneck_do_not_bundle():
    # member A crosses l0 and l1, member B only l1: B's bottleneck (l1, load 2) is A's too, but a
    # member C on l2 alone (load 1) would run faster: the three may not move in lockstep.
    env, net, done = _bundle_net(*[Resource(f"l{i}", 10 * MBPS) for i in range(3)])
    a = net.flow_class(((0, 1.0, 1), (1, 1.0, 1)))
    b = net.flow_class(((1, 1.0, 1),))
    c = net.flow_class(((2, 1.0, 1),))
    net.send_parts(((a, 1, "A"), (b, 1, "B"), (c, 1, "C")), 1e6, 0.0, None, "whole")
    env.run()
    assert done == {"A": pytest.approx(0.2), "B": pytest.approx(0.2), "C": pytest.approx(0.1)}


bundle_sets = st.integers(1, 4).flatmap(
    lambda n_res: st.tuples(
        st.lists(st.floats(1e6, 1e8), min_size=n_res, max_size=n_res),
        st.lists(
            st.tuples(
                st.sampled_from([0.0, 0.0, 0.1, 0.25]),
                st.sampled_from([1e6, 2e6, 3.3e6]),
                st.lists(
                    st.tuples(
                        st.dictionaries(
                            st.integers(0, n_res - 1), st.sampled_from([1.0, 2.0]), min_size=1, max_size=n_res
                        ),
                        st.integers(1, 3),
                    ),
                    min_size=1,
                    max_size=4,
                ),
            ),
            min_size=1,
            max_size=6,
        ),
        st.booleans(),
    )
)


@settings(max_examples=150, deadline=None)
@given(bundle_sets)
def test_bundles_and_their_splits_match_the_plain_reference(case):
    caps, sends, equal_caps = case
    if equal_caps:
        caps = [caps[0]] * len(caps)
    env, net, done = _bundle_net(*[Resource(f"r{i}", c) for i, c in enumerate(caps)])
    flows, owner = [], []
    for i, (start, bits, parts) in enumerate(sends):
        net_parts = []
        for j, (usage, k) in enumerate(parts):
            net_parts.append((net.flow_class(tuple((r, a, 1) for r, a in sorted(usage.items()))), k, (i, j)))
            for _ in range(k):
                flows.append((start, bits, usage))
                owner.append((i, j))
        net.send_parts(tuple(net_parts), bits, start, None, (i, "all"))
    env.run()
    ref = reference_finish_times(caps, flows)
    for f, (i, j) in enumerate(owner):
        got = done[(i, j)] if (i, j) in done else done[(i, "all")]
        assert got == pytest.approx(ref[f], rel=1e-7, abs=1e-12)
    assert net.bits_delivered == pytest.approx(sum(b for _, b, _ in flows), rel=1e-9)


# ---------------------------------------------------------------- per-message overhead
def test_a_resource_may_charge_per_message_overhead_airtime():
    """overhead_s(b): extra seconds per crossing at the nominal capacity, so a message of b bits
    alone takes b / C + crossings * overhead_s(b); two at once take twice as long."""
    air = Resource("air", 10 * MBPS, overhead_s=lambda bits, together=1: 1e-3 + bits / 1e8)
    env, net, done = _bundle_net(air)
    cls = net.flow_class(((0, 2.0, 2),))  # station -> AP -> station
    net.send(cls, 1e6, 0.0, "one")
    env.run()
    per_crossing = 1e6 / 10e6 + 1e-3 + 1e6 / 1e8
    assert done["one"] == pytest.approx(2 * per_crossing, rel=1e-12)
    env, net, done = _bundle_net(air)
    cls = net.flow_class(((0, 2.0, 2),))
    net.send(cls, 1e6, 0.0, "a")
    net.send(cls, 1e6, 0.0, "b")
    net.send(cls, 0.0, 0.002, "empty")  # no payload: alpha only, no overhead
    env.run()
    assert done["a"] == done["b"] == pytest.approx(4 * per_crossing, rel=1e-12)
    assert done["empty"] == pytest.approx(0.002)
    assert net.link_bits() == {"air": 4e6}  # payload bits per crossing: overhead is airtime, not bits


def test_overhead_makes_small_and_large_messages_different_classes():
    """Small messages pay relatively more airtime: a 1e5-bit and a 1e6-bit message sharing the
    channel get equal payload rates but the small one loads it 1 + 0.01 / 0.01 = 2x per bit."""
    air = Resource("air", 10 * MBPS, overhead_s=lambda bits, together=1: 1e-3)
    env, net, done = _bundle_net(air)
    cls = net.flow_class(((0, 1.0, 1),))
    net.send(cls, 1e5, 0.0, "small")  # airtime per bit: (1 + 1e-3 * 1e7 / 1e5) / C = 1.1 / C
    net.send(cls, 1e6, 0.0, "large")  # (1 + 1e-3 * 1e7 / 1e6) / C = 1.01 / C
    env.run()
    x = 10e6 / (1.1 + 1.01)  # equal payload rate x while both flow: 1.1 x + 1.01 x = C
    t_small = 1e5 / x
    assert done["small"] == pytest.approx(t_small, rel=1e-12)
    assert done["large"] == pytest.approx(t_small + (1e6 - 1e5) * 1.01 / 10e6, rel=1e-12)
