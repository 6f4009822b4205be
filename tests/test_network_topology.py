"""Topologies: presets, custom graphs from dicts, traces, routes and what each message costs."""

import networkx as nx
import pytest

from astrasim.engine import simulate
from astrasim.errors import UserError
from astrasim.network.topology import DEFAULTS, Fabric, build_topology, load_bandwidth_trace, topology_from_dict
from astrasim.opgraph import Comm, OpGraph


def p2p_time(topo, src=0, dst=1, bits=1e6, n=None):
    g = OpGraph(n or topo.graph["n_devices"])
    g.add(Comm("m", "p2p", (src, dst), bits))
    return simulate(g, topo)


@pytest.mark.parametrize(
    "kind, nodes, edges", [("mesh", 4, 6), ("ideal", 4, 6), ("switch", 5, 4), ("wifi", 5, 4), ("wifi-adhoc", 4, 6)]
)
def test_preset_shapes(kind, nodes, edges):
    g = build_topology(kind, 4, 100.0)
    assert isinstance(g, nx.Graph)
    assert (g.number_of_nodes(), g.number_of_edges()) == (nodes, edges)
    assert all(g.nodes[d]["device"] for d in range(4))
    assert g.graph["kind"] == kind and g.graph["n_devices"] == 4 and g.graph["broadcast"] is False


def test_defaults_are_applied_and_overridable():
    g = build_topology("switch", 2, 100.0)
    e = g.edges[0, "switch"]
    assert e["efficiency"] == DEFAULTS["switch"]["efficiency"]
    assert e["latency_s"] == DEFAULTS["switch"]["latency_s"] / 2  # two port links per message
    g = build_topology("wifi", 2, 100.0, latency_s=0.002, efficiency=0.5, loss_rate=0.1)
    assert g.graph["media"]["wifi"] == {
        "bandwidth_mbps": 100.0,
        "latency_s": 0.002,
        "efficiency": 0.5,
        "loss_rate": 0.1,
        "bandwidth_trace": None,
        "airtime": None,
    }


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"kind": "token-ring"}, "kind"),
        ({"bandwidth_mbps": 0}, "bandwidth_mbps"),
        ({"bandwidth_mbps": -5}, "bandwidth_mbps"),
        ({"bandwidth_mbps": float("nan")}, "bandwidth_mbps"),
        ({"efficiency": 0.0}, "efficiency"),
        ({"efficiency": 1.5}, "efficiency"),
        ({"loss_rate": 1.0}, "loss_rate"),
        ({"loss_rate": -0.1}, "loss_rate"),
        ({"latency_s": -1e-3}, "latency_s"),
        ({"n_devices": 0}, "n_devices"),
        ({"bandwidth_trace": [(0, 10), (0, 5)]}, "bandwidth_trace"),
        ({"bandwidth_trace": [(0, -10)]}, "bandwidth_trace"),
        ({"bandwidth_trace": []}, "bandwidth_trace"),
    ],
)
def test_bad_values_raise_user_errors_naming_the_field(kwargs, field):
    args = {"kind": "wifi", "n_devices": 4, "bandwidth_mbps": 100.0, **kwargs}
    with pytest.raises(UserError) as err:
        build_topology(args.pop("kind"), args.pop("n_devices"), args.pop("bandwidth_mbps"), **args)
    assert field in str(err.value)


@pytest.mark.parametrize("kind", ["mesh", "switch", "wifi-adhoc", "ideal"])
def test_single_message_pays_alpha_plus_size_over_goodput(kind):
    r = p2p_time(build_topology(kind, 3, 10.0, latency_s=0.004, efficiency=0.8), bits=2e6)
    assert r.latency_s == pytest.approx(0.004 + 2e6 / (10e6 * 0.8), rel=1e-12)


def test_ideal_is_size_over_bandwidth_and_nothing_else():
    r = p2p_time(build_topology("ideal", 4, 20.0), bits=5e6)
    assert r.latency_s == pytest.approx(5e6 / 20e6, rel=1e-12)


def test_wifi_station_to_station_costs_twice_station_to_ap():
    # the access point is a device (an edge server): 1 -> 0 crosses the air once, 1 -> 2 twice
    topo = topology_from_dict(
        {
            "media": {"air": {"bandwidth_mbps": 50, "latency_s": 0.001, "efficiency": 0.6}},
            "edges": [{"u": 1, "v": 0, "medium": "air"}, {"u": 2, "v": 0, "medium": "air"}],
        },
        3,
    )
    to_ap = p2p_time(topo, 1, 0, 3e6).latency_s
    to_sta = p2p_time(topo, 1, 2, 3e6).latency_s
    assert to_ap == pytest.approx(0.001 + 3e6 / 30e6)
    assert to_sta == pytest.approx(2 * to_ap, rel=1e-12)
    # the preset: stations only, the access point forwards; same cost as the custom one
    preset = build_topology("wifi", 3, 50.0, latency_s=0.001, efficiency=0.6)
    assert p2p_time(preset, 1, 2, 3e6).latency_s == pytest.approx(to_sta, rel=1e-12)
    assert p2p_time(preset, 1, 2, 3e6).link_bits == {"wifi": 6e6}


def test_adhoc_crosses_once():
    r = p2p_time(build_topology("wifi-adhoc", 3, 50.0, latency_s=0.001, efficiency=0.6), 0, 2, 3e6)
    assert r.latency_s == pytest.approx(0.001 + 3e6 / 30e6)


def test_loss_rate_reduces_goodput_by_one_minus_p():
    r = p2p_time(build_topology("mesh", 2, 10.0, latency_s=0.0, efficiency=1.0, loss_rate=0.2), bits=4e6)
    assert r.latency_s == pytest.approx(4e6 / (10e6 * 0.8))


def test_preset_trace_applies_to_every_link():
    topo = build_topology("mesh", 2, 10.0, latency_s=0.0, efficiency=1.0, bandwidth_trace=[(0.0, 10.0), (1.0, 5.0)])
    assert p2p_time(topo, bits=15e6).latency_s == pytest.approx(2.0)


def test_trace_csv(tmp_path):
    p = tmp_path / "trace.csv"
    p.write_text("time_s,bandwidth_mbps\n0,20\n0.5,10\n2.0,40\n")
    assert load_bandwidth_trace(p) == [(0.0, 20.0), (0.5, 10.0), (2.0, 40.0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("t,bw\n0,20\n")
    with pytest.raises(UserError, match="time_s"):
        load_bandwidth_trace(bad)
    with pytest.raises(UserError, match="not found"):
        load_bandwidth_trace(tmp_path / "missing.csv")
    worse = tmp_path / "worse.csv"
    worse.write_text("time_s,bandwidth_mbps\n1,20\n0.5,x\n")
    with pytest.raises(UserError, match="not a number"):
        load_bandwidth_trace(worse)


def test_custom_graph_routes_by_shortest_path_and_half_duplex_is_shared():
    topo = topology_from_dict(
        {
            "nodes": [0, 1, 2, "r"],
            "edges": [
                {"u": 0, "v": "r", "bandwidth_mbps": 10},
                {"u": 1, "v": "r", "bandwidth_mbps": 10},
                {"u": 2, "v": "r", "bandwidth_mbps": 10, "latency_s": 0.01},
                {"u": 0, "v": 1, "bandwidth_mbps": 1, "duplex": "half"},
            ],
        },
        3,
    )
    f = Fabric(topo)
    assert f.path(0, 1) == [0, 1]  # one hop beats two, whatever the bandwidth
    assert f.route(0, (2,)).alpha == pytest.approx(0.01)
    # a half-duplex link: both directions share 1 Mbps
    g = OpGraph(3)
    g.add(Comm("a", "p2p", (0, 1), 1e6))
    g.add(Comm("b", "p2p", (1, 0), 1e6))
    assert simulate(g, topo).latency_s == pytest.approx(2.0)


def test_custom_station_phy_rate_scales_airtime():
    topo = topology_from_dict(
        {
            "media": {"air": {"bandwidth_mbps": 100}},
            "edges": [{"u": 0, "v": "ap", "medium": "air"}, {"u": 1, "v": "ap", "medium": "air", "bandwidth_mbps": 25}],
        },
        2,
    )
    # 0 -> ap at 100 Mbps, ap -> 1 at 25 Mbps: airtime 1e6/100e6 + 1e6/25e6
    assert p2p_time(topo, 0, 1, 1e6).latency_s == pytest.approx(0.01 + 0.04)


@pytest.mark.parametrize(
    "data, field",
    [
        ({"edges": []}, "network.custom.edges"),
        ({"edges": [{"u": 0, "v": 1}]}, "edges[0].bandwidth_mbps"),
        ({"edges": [{"u": 0, "v": 1, "medium": "air"}]}, "edges[0].medium"),
        ({"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 10, "duplex": "simplex"}]}, "edges[0].duplex"),
        ({"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 10, "colour": "red"}]}, "edges[0]"),
        ({"edges": [{"u": 0, "v": 2, "bandwidth_mbps": 10}]}, "not nodes"),
        ({"edges": [{"u": 0, "v": 1, "bandwidth_mbps": 10}, {"u": 2, "v": 3, "bandwidth_mbps": 10}]}, "not connected"),
        ({"media": {"air": {"latency_s": 0}}, "edges": [{"u": 0, "v": 1, "medium": "air"}]}, "media.air"),
        ({"default_algorithm": "tree", "edges": [{"u": 0, "v": 1, "bandwidth_mbps": 1}]}, "default_algorithm"),
    ],
)
def test_custom_graph_errors_name_the_field(data, field):
    n = 4 if "not connected" in field else 3 if "not nodes" in field else 2
    with pytest.raises(UserError) as err:
        topology_from_dict(data, n)
    assert field in str(err.value)


def test_multicast_routes():
    wifi = Fabric(build_topology("wifi", 4, 100.0, broadcast=True))
    assert wifi.route(0, (1, 2, 3)).usage == ((0, 2.0, 2),)  # up to the AP once, down once
    adhoc = Fabric(build_topology("wifi-adhoc", 4, 100.0, broadcast=True))
    assert adhoc.route(0, (1, 2, 3)).usage == ((0, 1.0, 1),)
    sw = Fabric(build_topology("switch", 4, 100.0, broadcast=True))
    names = {sw.resources[rid].name for rid, _, _ in sw.route(0, (1, 2, 3)).usage}
    assert names == {"0->switch", "switch->1", "switch->2", "switch->3"}


@pytest.mark.parametrize("k", [1, 3, 10])
def test_k_messages_on_one_link_finish_together(k):
    g = OpGraph(2)
    for i in range(k):
        g.add(Comm(f"m{i}", "p2p", (0, 1), 1e6))
    r = simulate(g, build_topology("mesh", 2, 10.0, latency_s=0.003, efficiency=1.0), record_timeline=True)
    ends = {e.end for e in r.timeline if e.kind == "message"}
    assert len(ends) == 1 and r.latency_s == pytest.approx(0.003 + k * 1e6 / 10e6, rel=1e-12)
