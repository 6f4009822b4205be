"""Collectives as messages: plans, bits and closed-form times on the presets."""

import pytest

from astrasim.engine import simulate
from astrasim.network.collectives import plan, resolve_algorithm
from astrasim.network.topology import build_topology
from astrasim.opgraph import Comm, OpGraph

ALPHA, MBPS = 0.002, 10.0
B = MBPS * 1e6


def run(
    collective, n, bits, kind="switch", algorithm="auto", root=None, broadcast=False, devices=None, latency_s=ALPHA
):
    devices = tuple(range(n)) if devices is None else devices
    g = OpGraph(n)
    g.add(Comm("c", collective, devices, bits, root=root, algorithm=algorithm))
    topo = build_topology(kind, n, MBPS, latency_s=latency_s, efficiency=1.0, broadcast=broadcast)
    return simulate(g, topo)


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_ring_all_gather_on_a_switch(n):
    c = 1e6
    r = run("all_gather", n, c, algorithm="ring")
    assert r.latency_s == pytest.approx((n - 1) * (ALPHA + c / B), rel=1e-12)
    assert r.n_messages == n * (n - 1) and r.comm_bits == pytest.approx(n * (n - 1) * c)


@pytest.mark.parametrize("n", [2, 4, 6])
def test_direct_all_gather_on_a_switch(n):
    c = 1e6
    r = run("all_gather", n, c, algorithm="direct")
    assert r.latency_s == pytest.approx(ALPHA + (n - 1) * c / B, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 5])
def test_ring_all_reduce_is_reduce_scatter_then_all_gather(n):
    s = 4e6
    ar = run("all_reduce", n, s, algorithm="ring")
    rs = run("reduce_scatter", n, s, algorithm="ring")
    assert rs.latency_s == pytest.approx((n - 1) * (ALPHA + s / n / B), rel=1e-12)
    assert ar.latency_s == pytest.approx(2 * (n - 1) * (ALPHA + s / n / B), rel=1e-12)
    assert ar.comm_bits == pytest.approx(2 * (n - 1) * s)


@pytest.mark.parametrize("n", [2, 4, 5])
def test_direct_all_reduce(n):
    s = 4e6
    r = run("all_reduce", n, s, algorithm="direct")
    assert r.latency_s == pytest.approx(2 * (ALPHA + (n - 1) * s / n / B), rel=1e-12)
    assert r.comm_bits == pytest.approx(2 * (n - 1) * s)


def test_all_to_all_gather_broadcast_p2p_on_a_switch():
    n, s = 5, 1e6
    assert run("all_to_all", n, s).latency_s == pytest.approx(ALPHA + (n - 1) * s / B)
    assert run("gather", n, s, root=2).latency_s == pytest.approx(ALPHA + (n - 1) * s / B)  # root's port
    assert run("broadcast", n, s, root=2).latency_s == pytest.approx(ALPHA + (n - 1) * s / B)
    assert run("broadcast", n, s, root=2, broadcast=True).latency_s == pytest.approx(ALPHA + s / B)
    assert run("p2p", n, s, devices=(3, 1)).latency_s == pytest.approx(ALPHA + s / B)


def test_broadcast_to_a_subset_is_a_multicast():
    r = run("broadcast", 6, 1e6, root=4, devices=(1, 4, 5))
    assert r.n_messages == 2 and r.link_bits["switch->0"] == 0 and r.link_bits["switch->5"] == 1e6


def test_wifi_broadcast_option_costs_one_airtime_per_transmitter():
    n, s, c = 4, 1e6, MBPS * 1e6
    plain = run("broadcast", n, s, kind="wifi", root=0)
    cast = run("broadcast", n, s, kind="wifi", root=0, broadcast=True)
    assert plain.latency_s == pytest.approx(2 * ALPHA + (n - 1) * 2 * s / c)
    assert cast.latency_s == pytest.approx(2 * ALPHA + 2 * s / c)  # station -> AP, AP -> all
    assert cast.comm_bits == s and cast.n_messages == 1
    ag = run("all_gather", n, s, kind="wifi-adhoc", broadcast=True)
    assert ag.latency_s == pytest.approx(ALPHA + n * s / c)  # n transmissions share the air
    assert ag.n_messages == n


def test_wifi_all_gather_is_airtime_bound():
    n, s = 4, 1e6
    r = run("all_gather", n, s, kind="wifi")
    assert r.latency_s == pytest.approx(2 * ALPHA + n * (n - 1) * 2 * s / B)
    assert r.link_bits == {"wifi": pytest.approx(n * (n - 1) * 2 * s)}


def test_ideal_all_gather_is_the_papers_size_over_bandwidth():
    r = run("all_gather", 4, 3e6, kind="ideal", latency_s=None)
    assert r.latency_s == pytest.approx(3e6 / B)


def test_single_participant_sends_nothing():
    r = run("all_reduce", 3, 1e6, devices=(1,))
    assert r.latency_s == 0.0 and r.n_messages == 0


@pytest.mark.parametrize(
    "collective, algorithm, count, sent",
    [
        ("all_gather", "ring", 12, 12.0),
        ("all_gather", "direct", 12, 12.0),
        ("reduce_scatter", "ring", 12, 3.0),
        ("reduce_scatter", "direct", 12, 3.0),
        ("all_reduce", "ring", 24, 6.0),
        ("all_reduce", "direct", 24, 6.0),
        ("all_gather", "star", 6, 12.0),
        ("reduce_scatter", "star", 6, 3.75),
        ("all_reduce", "star", 6, 6.0),
        ("all_to_all", "direct", 12, 12.0),
        ("gather", "direct", 3, 3.0),
        ("broadcast", "direct", 3, 3.0),
    ],
)
def test_plan_sizes(collective, algorithm, count, sent):
    p = plan(collective, 4, algorithm)
    assert len(p) == count
    assert sum(f * len(d) for f, d in zip(p.frac, p.dsts)) == pytest.approx(sent)
    assert all(all(d < m for d in deps) for m, deps in enumerate(p.deps))  # deps come earlier


def test_ring_dependencies_forward_what_was_received_one_message_at_a_time():
    p = plan("all_gather", 4, "ring")
    for m, deps in enumerate(p.deps):
        if m < 4:
            assert deps == ()
        else:
            received, previous = sorted(deps, key=lambda d: p.src[d] == p.src[m])
            assert p.dsts[received] == (p.src[m],)  # forwards the chunk it received one step earlier
            assert (p.src[previous], p.dsts[previous]) == (p.src[m], p.dsts[m])  # after its own last send


@pytest.mark.parametrize(
    "collective, algorithm",
    [(c, a) for c in ("all_gather", "all_reduce", "reduce_scatter") for a in ("ring", "direct", "star")],
)
def test_a_pair_carries_one_message_of_a_collective_at_a_time(collective, algorithm):
    """Every message waits for the sender's previous message to any of its receivers."""
    for multicast in (False, True):
        p = plan(collective, 5, algorithm, multicast=multicast)
        last: dict[tuple[int, int], int] = {}
        for m in range(len(p)):
            for q in p.dsts[m]:
                if (p.src[m], q) in last:
                    assert last[(p.src[m], q)] in p.deps[m]
                last[(p.src[m], q)] = m


def test_multicast_plans():
    assert len(plan("all_gather", 5, "direct", multicast=True)) == 5
    assert plan("broadcast", 4, "direct", root=2, multicast=True).dsts == ((0, 1, 3),)
    ar = plan("all_reduce", 3, "direct", multicast=True)
    assert len(ar) == 6 + 3 and all(len(d) == 2 + 2 for d in ar.deps[6:])  # received parts, own sends


def test_auto_resolution():
    assert resolve_algorithm("all_gather", "auto", "ring") == "ring"
    assert resolve_algorithm("all_reduce", "direct", "ring") == "direct"
    assert resolve_algorithm("gather", "ring", "ring") == "direct"
    with pytest.raises(ValueError):
        resolve_algorithm("all_gather", "tree", "ring")
    assert build_topology("switch", 2, 1.0).graph["default_algorithm"] == "ring"
    assert build_topology("wifi", 2, 1.0).graph["default_algorithm"] == "direct"


# ------------------------------------------------------------------ star: everything through a root
@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_star_all_reduce_on_a_switch(n):
    """Gather: n-1 full tensors share the root's downlink; then n-1 copies share its uplink."""
    s = 4e6
    r = run("all_reduce", n, s, algorithm="star")
    assert r.latency_s == pytest.approx(2 * (ALPHA + (n - 1) * s / B), rel=1e-12)
    assert r.n_messages == 2 * (n - 1) and r.comm_bits == pytest.approx(2 * (n - 1) * s)
    assert r.link_bits["switch->0"] == pytest.approx((n - 1) * s)  # everything goes through the root


@pytest.mark.parametrize("n", [3, 4, 6])
def test_star_all_reduce_on_a_switch_with_multicast_sends_the_result_once(n):
    s = 4e6
    r = run("all_reduce", n, s, algorithm="star", broadcast=True)
    assert r.latency_s == pytest.approx(ALPHA + (n - 1) * s / B + ALPHA + s / B, rel=1e-12)
    assert r.n_messages == n


@pytest.mark.parametrize("n", [2, 3, 5])
def test_star_all_gather_and_reduce_scatter_on_a_switch(n):
    c = 1e6
    ag = run("all_gather", n, c, algorithm="star")  # up: n-1 chunks; down: n-1 messages of (n-1) chunks
    assert ag.latency_s == pytest.approx(2 * ALPHA + (n - 1) * c / B + (n - 1) ** 2 * c / B, rel=1e-12)
    assert ag.comm_bits == pytest.approx((n - 1) * c + (n - 1) ** 2 * c)
    s = 4e6
    rs = run("reduce_scatter", n, s, algorithm="star")  # up: full tensors; down: one chunk each
    assert rs.latency_s == pytest.approx(2 * ALPHA + (n - 1) * s / B + (n - 1) * s / n / B, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 7])
def test_star_on_the_ideal_network(n):
    """Every pair its own link, no alpha: the root's n-1 links carry the uploads side by side."""
    s = 3e6
    assert run("all_reduce", n, s, kind="ideal", algorithm="star", latency_s=None).latency_s == pytest.approx(2 * s / B)
    assert run("all_gather", n, s, kind="ideal", algorithm="star", latency_s=None).latency_s == pytest.approx(n * s / B)
    # direct all-reduce moves 1/n of the tensor per pair: star is n times slower where links are private
    direct = run("all_reduce", n, s, kind="ideal", algorithm="direct", latency_s=None).latency_s
    assert direct == pytest.approx(2 * s / n / B)


def test_star_root_is_the_comms_root():
    n, s = 4, 1e6
    r = run("all_reduce", n, s, algorithm="star", root=2)
    assert r.link_bits["switch->2"] == pytest.approx((n - 1) * s) and r.link_bits["switch->0"] == pytest.approx(s)
    p = plan("all_reduce", n, "star", root=2)
    assert [p.src[m] for m in range(n - 1)] == [0, 1, 3] and all(p.dsts[m] == (2,) for m in range(n - 1))
    assert all(set(p.deps[m]) >= {0, 1, 2} for m in range(n - 1, len(p)))  # root sends after every upload
    with pytest.raises(ValueError):
        plan("all_reduce", 3, "star", root=3)


def test_star_on_wifi_moves_the_same_air_bits_as_direct_in_fewer_frames():
    """On one shared channel a star all-reduce carries exactly direct's bits over the air (both move
    2(n-1) tensors' worth, each crossing twice via the AP) in 2(n-1) frames instead of 2n(n-1): with a
    constant efficiency it is 4 alphas + 4(n-1)s/c; with the 802.11 airtime model (per-frame overhead)
    it is no slower than direct."""
    n, s = 4, 1e6
    star = run("all_reduce", n, s, kind="wifi", algorithm="star")
    direct = run("all_reduce", n, s, kind="wifi", algorithm="direct")
    assert star.latency_s == pytest.approx(4 * ALPHA + 4 * (n - 1) * s / B, rel=1e-12)
    assert star.link_bits["wifi"] == pytest.approx(direct.link_bits["wifi"])
    g_star, g_direct = OpGraph(n), OpGraph(n)
    g_star.add(Comm("c", "all_reduce", tuple(range(n)), s, algorithm="star"))
    g_direct.add(Comm("c", "all_reduce", tuple(range(n)), s, algorithm="direct"))
    air = build_topology("wifi", n, 100.0)  # the 802.11 airtime model
    t_star, t_direct = simulate(g_star, air).latency_s, simulate(g_direct, air).latency_s
    assert t_star <= t_direct
    assert t_star > 4 * (n - 1) * s / 100e6  # never faster than the bare air bits at the PHY rate
    assert resolve_algorithm("all_reduce", "star", "ring") == "star"
    assert resolve_algorithm("gather", "star", "ring") == "direct"


def test_star_levels_for_wifi_contention():
    """Uploads: the n-1 workers send at once, one message each; then the root alone sends n-1."""
    assert plan("all_reduce", 4, "star").levels() == ((3, 1),) * 3 + ((1, 3),) * 3
    assert plan("all_reduce", 4, "star", multicast=True).levels() == ((3, 1),) * 3 + ((1, 1),)
