"""The placement search (astrasim/placement): exhaustive optimum, analytic bounds, pipeline stages,
energy, the inventory plan's bad input and `astrasim whatif`."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from astrasim.placement.candidates import distinct_orders, subsets
from astrasim.placement.inventory import parse_plan
from astrasim.placement.stages import best_stages

ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "name": "small",
    "model": "gpt2-s",
    "tokens": 1024,
    "inventory": {"jetson-orin-nano": 1, "raspberry-pi-5": 3},
    "networks": ["wifi5-1x1-80mhz"],
    "strategies": ["single", "tp", "sp", "pp", {"name": "astra", "groups": 32}],
    "sweep": {"hardware": {"profile": "cpu"}},
}


def _search(data, **kw):
    from astrasim.placement.search import run_search

    return run_search(parse_plan(data, ROOT), progress=False, **kw)


# ------------------------------------------------------------------------------ candidates
def test_distinct_orders_and_subsets_count_the_multiset():
    orders = list(distinct_orders({"a": 1, "b": 3}))
    assert len(orders) == 4 and len(set(orders)) == 4  # 4! / 3!
    assert len(list(distinct_orders({"a": 2, "b": 2}))) == 6
    assert len(list(subsets({"a": 1, "b": 3}))) == 2 * 4 - 1


# ------------------------------------------------------------------------------ pipeline stages
def _brute(cost, transfer, cap, per, end, mid, layers, objective):
    n = len(cost)
    best, arg = math.inf, None
    for cut in itertools.combinations(range(1, layers), n - 1):
        sizes = [b - a for a, b in zip((0, *cut), (*cut, layers))]
        fixed = [end if s in (0, n - 1) else mid for s in range(n)]
        if any(cap[s] is not None and sizes[s] * per + fixed[s] > cap[s] for s in range(n)):
            continue
        parts = [sizes[s] * cost[s] + transfer[s] for s in range(n)]
        v = sum(parts) if objective == "sum" else max(parts)
        if v < best - 1e-12:
            best, arg = v, sizes
    return best, arg


def test_stages_closed_form():
    # one request: everything on the fast device except the one layer each other stage must hold
    assert best_stages([1.0, 3.0, 3.0], [0, 0, 0], [None] * 3, 1.0, 0.0, 0.0, 12) == [10, 1, 1]
    # its memory holds 6 layers: the rest goes to the next cheapest
    assert best_stages([1.0, 2.0, 3.0], [0, 0, 0], [6.0, None, None], 1.0, 0.0, 0.0, 12) == [6, 5, 1]
    # a stream: the slowest stage binds, layers in inverse proportion to the per-layer cost
    assert best_stages([1.0, 2.0], [0, 0], [None, None], 1.0, 0.0, 0.0, 12, "max") == [8, 4]
    assert best_stages([1.0, 1.0], [0, 0], [3.0, 3.0], 1.0, 0.0, 0.0, 12) is None  # nothing fits


def test_stages_match_brute_force():
    rng = random.Random(4)
    for _ in range(200):
        n, layers = rng.randint(2, 4), rng.randint(4, 10)
        cost = [rng.uniform(0.5, 4) for _ in range(n)]
        transfer = [rng.uniform(0, 2) for _ in range(n - 1)] + [0.0]
        cap = [rng.choice([None, rng.uniform(2, 9)]) for _ in range(n)]
        per, end, mid = 1.0, rng.uniform(0, 1.5), rng.uniform(0, 0.5)
        for objective in ("sum", "max"):
            want, arg = _brute(cost, transfer, cap, per, end, mid, layers, objective)
            got = best_stages(cost, transfer, cap, per, end, mid, layers, objective)
            if arg is None:
                assert got is None
                continue
            parts = [got[s] * cost[s] + transfer[s] for s in range(n)]
            assert (sum(parts) if objective == "sum" else max(parts)) == pytest.approx(want)


def test_pp_stages_knob_places_layers():
    from astrasim.compute.sources import costs_for
    from astrasim.models import get_model
    from astrasim.strategies import build_graph, get
    from astrasim.strategies.base import KnobError
    from astrasim.strategies.synthetic import synthetic_profile  # noqa: F401 - the strategies load

    spec, pp = get_model("gpt2-s"), get("pp")
    g = build_graph("pp", spec, costs_for("profiles/cpu.csv", None), 2, 1024, pp.knobs(stages="3,9"))
    layers = {d: {op.layer for op in g.ops if getattr(op, "device", None) == d} for d in (0, 1)}
    assert layers[0] == set(range(3)) and layers[1] == set(range(3, 12))
    with pytest.raises(KnobError):
        pp.check(spec, 2, 1024, pp.knobs(stages="3,8"))


# ------------------------------------------------------------------------------ the search
def test_pruned_search_returns_the_exhaustive_optimum_and_bounds_hold():
    full = _search(SMALL, exhaustive=True)
    pruned = _search({**SMALL, "search": {"exhaustive_max": 0, "batch": 2}})
    assert full.counts["pruned"] == 0 and pruned.counts["pruned"] > 0
    assert pruned.counts["simulated"] < full.counts["simulated"]
    assert pruned.best["placement"] == full.best["placement"]
    assert pruned.best["latency_s"] == full.best["latency_s"]
    sim = full.table[full.table["status"] == "simulated"]
    assert (sim["bound_s"] <= sim["latency_s"] * (1 + 1e-9)).all()  # every bound is a lower bound
    # the search finds the README's answer: the Jetson last beats the order written (Jetson first)
    assert full.best["latency_s"] < full.given["latency_s"]


@pytest.mark.parametrize("objective", ["e2e", "tpot"])
def test_generation_bounds_hold_on_tpot_and_e2e(objective):
    """Including ASTRA on a mixed fleet, whose last device starts decoding while the first still
    finishes its prefill (the first decode step overlaps the prefill's tail)."""
    data = {
        **SMALL,
        "tokens": 256,
        "output_tokens": 4,
        "objective": objective,
        "inventory": {"jetson-orin-nano": 1, "raspberry-pi-5": 1},
        "strategies": ["tp", "sp", "pp", "astra"],
    }
    res = _search(data, exhaustive=True)
    sim = res.table[res.table["status"] == "simulated"]
    assert len(sim) >= 8 and (sim["bound_s"] <= sim[f"{objective}_s"] * (1 + 1e-9)).all()


def test_a_target_nothing_meets_names_the_binding_constraint():
    res = _search({**SMALL, "latency_target_s": 0.01})
    assert res.best is None and any("latency target binds" in b for b in res.binding)


# ------------------------------------------------------------------------------ energy
def _point(strategy, n, topology, bw=100.0):
    from astrasim.scenario import from_dict

    sc = from_dict(
        {
            "name": "e",
            "models": ["gpt2-s"],
            "tokens": [256],
            "devices": [n],
            "strategies": [{"name": strategy}],
            "hardware": {"profile": "cpu"},
            "network": {"topology": topology, "bandwidth_mbps": [bw]},
        }
    )
    return next(p for p in sc.points() if p.strategy == strategy)


def test_energy_of_one_device_is_active_power_times_latency():
    from astrasim.placement.energy import run_energy
    from astrasim.pointrun import run_point

    p = _point("single", 1, "ideal")
    res, g = run_point(p)
    (dev,) = run_energy(p, res, g, power=lambda name: (2.0, 10.0))
    assert dev.busy_s == pytest.approx(res.latency_s)
    assert dev.total_j == pytest.approx(10.0 * res.latency_s) and dev.radio_j == 0.0


def test_radio_airtime_is_what_the_engine_charges_a_lone_message():
    """One p2p message over infrastructure Wi-Fi: sender's tx + receiver's rx = the run's latency
    (the medium carries it twice: up to the AP, down to the receiver); energy follows exactly."""
    from astrasim.engine import simulate
    from astrasim.network.wifi_config import WifiConfig
    from astrasim.opgraph import Comm, OpGraph
    from astrasim.placement.energy import run_energy
    from astrasim.pointrun import build_network

    p = _point("sp", 2, "wifi", 50.0)
    g = OpGraph(2, [Comm("m", "p2p", (0, 1), 8e6)])
    res = simulate(g, build_network(p))
    devs = run_energy(p, res, g, power=lambda name: (3.0, 7.0))
    assert devs[0].tx_s + devs[1].rx_s == pytest.approx(res.latency_s, rel=1e-9)
    w = WifiConfig()
    t = devs[0].tx_s
    assert devs[0].radio_j == pytest.approx(w.radio_tx_w * t + w.radio_idle_w * (res.latency_s - t))
    assert devs[0].idle_j == pytest.approx(3.0 * res.latency_s)


# ------------------------------------------------------------------------------ bad input (CLI)
def _cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "astrasim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    "change, field",
    [
        ({"inventory": {"no-such-board": 1}}, "plan.inventory"),
        ({"inventory": {"raspberry-pi-5": 0}}, "plan.inventory"),
        ({"inventory": {}}, "plan.inventory"),
    ],
)
def test_bad_inventory_is_one_line_and_writes_nothing(tmp_path, change, field):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**SMALL, **change}))
    out = tmp_path / "out.csv"
    r = _cli("plan", str(plan), "--out", str(out), "--no-progress")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}")
    assert not out.exists()


@pytest.mark.parametrize(
    "args, field",
    [
        (["--add", "no-such-board"], "--add"),
        (["--add", "raspberry-pi-5=0"], "--add"),
        (["--remove", "raspberry-pi-5=4"], "--remove"),
        (["--remove", "jetson-orin-nano", "--remove", "raspberry-pi-5=3"], "--remove"),
        ([], "whatif"),
        (["--network", "no-such-net"], "--network"),
    ],
)
def test_whatif_bad_change_is_refused(tmp_path, args, field):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "after.csv"
    r = _cli("whatif", str(plan), *args, "--out", str(out), "--no-progress")
    assert r.returncode == 2 and r.stderr.strip().startswith(f"error: {field}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_search_on_local_workers_matches_serial():
    data = {**SMALL, "inventory": {"jetson-orin-nano": 1, "raspberry-pi-5": 1}, "strategies": ["single", "sp", "pp"]}
    one, two = _search(data), _search(data, workers=2)
    assert one.best["placement"] == two.best["placement"] and one.best["latency_s"] == two.best["latency_s"]
    assert one.counts == two.counts


def test_whatif_reports_before_after_and_a_reason(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**SMALL, "inventory": {"raspberry-pi-5": 1}, "strategies": ["single", "sp"]}))
    r = _cli("whatif", str(plan), "--add", "raspberry-pi-5", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "before:" in r.stdout and "after:" in r.stdout and "adding 1 x raspberry-pi-5" in r.stdout


def test_a_target_nothing_meets_exits_0_with_the_verdict(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**SMALL, "latency_target_s": 0.01, "strategies": ["single", "sp"]}))
    r = _cli("plan", str(plan), "--no-progress")
    assert r.returncode == 0 and "latency target binds" in r.stdout


def test_critical_path_splits_a_chain_into_compute_and_communication():
    """d0 computes 1 s, sends 1e8 bits over an ideal 100 Mbps link (1 s), d1 computes 2 s: 3 s of
    compute and 1 s of communication on the path, nothing waiting; the path is the latency."""
    from astrasim.engine import simulate
    from astrasim.network.topology import build_topology
    from astrasim.opgraph import Comm, Compute, OpGraph
    from astrasim.placement.critical import critical_path

    g = OpGraph(
        2,
        [
            Compute("a", 0, 1.0),
            Comm("m", "p2p", (0, 1), 1e8, ("a",)),
            Compute("b", 1, 2.0, ("m",)),
            Compute("side", 0, 0.5),
        ],
    )
    res = simulate(g, build_topology("ideal", 2, 100.0), record_timeline=True)
    cp = critical_path(g, res)
    assert (cp.compute_s, cp.comm_s, cp.wait_s, cp.messages) == pytest.approx((3.0, 1.0, 0.0, 1))
    assert cp.total_s == pytest.approx(res.latency_s)


def test_stream_plan_ranks_by_p99_and_its_bound_holds():
    data = {
        **SMALL,
        "rate_per_s": 1.0,
        "stream": {"requests": 12},
        "inventory": {"jetson-orin-nano": 1, "raspberry-pi-5": 1},
        "strategies": ["single", "pp", {"name": "astra", "groups": 32}],
        "networks": ["ethernet-1g"],
    }
    res = _search(data, exhaustive=True)
    assert res.metric == "latency_p99_s"
    sim = res.table[res.table["status"] == "simulated"]
    assert (sim["bound_s"] <= sim["latency_p99_s"]).all()
    assert res.best["latency_p99_s"] == sim["latency_p99_s"].min()


def test_search_on_dask_matches_serial():
    from distributed import LocalCluster

    data = {
        **SMALL,
        "inventory": {"jetson-orin-nano": 1, "raspberry-pi-5": 2},
        "networks": ["ethernet-1g"],
        "strategies": ["single", "sp", "pp"],
        "search": {"exhaustive_max": 0, "batch": 4},
    }
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        on_dask = _search(data, dask_address=cluster.scheduler_address)
    serial = _search(data)
    assert on_dask.best["placement"] == serial.best["placement"]
    assert on_dask.best["latency_s"] == serial.best["latency_s"] and on_dask.counts == serial.counts


def test_devices_to_buy_next_to_the_owned_ones_within_a_budget():
    data = {
        **SMALL,
        "inventory": {"raspberry-pi-5": 1},
        "buy": {"jetson-orin-nano": 1},
        "networks": ["ethernet-1g"],
        "strategies": ["single", "sp", {"name": "astra", "groups": 32}],
    }
    tight = _search({**data, "budget_usd": 100})
    assert tight.counts["over budget"] > 0
    assert "jetson-orin-nano" not in tight.best["order"] and tight.best["buy_usd"] == 0
    ample = _search({**data, "budget_usd": 600})
    assert ample.counts["over budget"] == 0 and ample.best["buy"] == "1 x jetson-orin-nano"
    assert ample.best["latency_s"] < tight.best["latency_s"]
