"""Request streams (astrasim/streams.py): arrivals, FIFO serving, latency percentiles, stability."""

from __future__ import annotations

import math

import networkx as nx
import pytest

from astrasim.errors import UserError
from astrasim.network.topology import build_topology
from astrasim.opgraph import Comm, Compute, OpGraph
from astrasim.scenario import load_scenario
from astrasim.streams import WorkloadPoint, arrival_times, run_stream

S = 0.01  # service time of the synthetic one-device request


def one_op(seconds: float = S) -> OpGraph:
    return OpGraph(1, [Compute("work", 0, seconds, name="work")])


def lone_device() -> nx.Graph:
    g = nx.Graph()
    g.add_node(0)
    return g


def stream(graph, topology, w: WorkloadPoint, speeds=None):
    from astrasim.pointrun import EngineInputs

    return run_stream(EngineInputs(graph, topology, speeds or [1.0] * graph.n_devices), arrival_times(w))[1]


def test_periodic_slower_than_service_gives_the_single_request_latency():
    st = stream(one_op(), lone_device(), WorkloadPoint("periodic", 1 / (1.5 * S), 50))
    assert all(lat == pytest.approx(S, rel=1e-9) for lat in st.latencies)
    cols = st.columns()
    assert cols["stable"] and cols["utilization"] == pytest.approx(1 / 1.5, rel=0.02)


def test_periodic_slower_than_service_on_a_real_point_gives_its_single_latency(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(
        "models: [vit-base]\ndevices: [4]\nstrategies: [{name: astra, groups: 32}]\n"
        "network: {topology: wifi, bandwidth_mbps: 100}\n"
        "workload: [{arrival: single}, {arrival: periodic, rate_per_s: 1.0, requests: 4}]\n"
    )
    from astrasim.pointrun import simulate_point

    one, many = (simulate_point(p) for p in load_scenario(sc, []).points())
    assert many["latency_p99_s"] == pytest.approx(one["latency_s"], rel=1e-9)
    assert many["latency_p50_s"] == pytest.approx(one["latency_s"], rel=1e-9)
    assert many["stable"] and one["stable"]
    assert one["latency_p99_s"] == one["latency_s"] and one["throughput_per_s"] == pytest.approx(1 / one["latency_s"])


def test_a_rate_above_the_service_rate_is_unstable_and_below_it_stable():
    over = stream(one_op(), lone_device(), WorkloadPoint("periodic", 1.2 / S, 200))
    under = stream(one_op(), lone_device(), WorkloadPoint("periodic", 0.8 / S, 200))
    assert not over.stable() and under.stable()
    assert over.columns()["throughput_per_s"] == pytest.approx(1 / S, rel=0.01)  # saturated at the service rate
    assert over.latencies[-1] > 10 * over.latencies[0]  # the queue grows


def test_a_saturated_network_is_unstable_though_no_device_is_busy():
    g = OpGraph(2, [Compute("a", 0, 1e-4), Comm("m", "p2p", (0, 1), 1e6, ("a",)), Compute("b", 1, 1e-4, ("m",))])
    topo = build_topology("switch", 2, 100.0)  # 1 Mbit at 100 Mbps: about 10 ms a message
    st = stream(g, topo, WorkloadPoint("periodic", 200.0, 200))
    assert st.load() < 0.1 and not st.stable()
    assert stream(g, topo, WorkloadPoint("periodic", 50.0, 200)).stable()


def test_poisson_on_one_device_matches_the_pollaczek_khinchine_mean_wait():
    """M/D/1 at rho = 0.6: mean wait W = rho S / (2 (1 - rho)); over 20000 requests within 8 %."""
    rho, n = 0.6, 20000
    st = stream(one_op(), lone_device(), WorkloadPoint("poisson", rho / S, n, seed=3))
    wait = math.fsum(st.latencies) / n - S
    assert wait == pytest.approx(rho * S / (2 * (1 - rho)), rel=0.08)
    assert st.stable()


def test_pipeline_stages_hold_different_requests_at_once():
    """Two stages of S each: FIFO serving overlaps them, so a rate of 0.9/S is sustained (2S each if serial)."""
    g = OpGraph(2, [Compute("s0", 0, S), Comm("x", "p2p", (0, 1), 8.0, ("s0",)), Compute("s1", 1, S, ("x",))])
    topo = build_topology("ideal", 2, 1e6)
    st = stream(g, topo, WorkloadPoint("periodic", 0.9 / S, 100))
    assert st.stable() and max(st.latencies) < 2.1 * S
    assert st.columns()["throughput_per_s"] == pytest.approx(0.9 / S, rel=0.05)


def test_poisson_is_deterministic_given_the_seed():
    a, b = (arrival_times(WorkloadPoint("poisson", 10.0, 50, seed=s)) for s in (1, 1))
    assert a == b and a[0] == 0.0 and a != arrival_times(WorkloadPoint("poisson", 10.0, 50, seed=2))
    assert all(y >= x for x, y in zip(a, a[1:]))


def test_trace_arrivals_are_read_shifted_to_zero(tmp_path):
    f = tmp_path / "arr.csv"
    f.write_text("arrival_s\n1.0\n1.5\n3.0\n")
    assert arrival_times(WorkloadPoint("trace", None, 2, trace=str(f))) == [0.0, 0.5]
    with pytest.raises(UserError, match="workload.requests"):
        arrival_times(WorkloadPoint("trace", None, 5, trace=str(f)))


BASE = "models: [vit-base]\ndevices: [4]\nstrategies: [single]\n"


@pytest.mark.parametrize(
    "workload, field",
    [
        ("{arrival: poisson, requests: 10}", "workload[0].rate_per_s"),
        ("{arrival: periodic, rate_per_s: -1}", "workload[0].rate_per_s"),
        ("{arrival: steady}", "workload[0].arrival"),
        ("{arrival: periodic, rate_per_s: 1, requests: 0}", "workload[0].requests"),
        ("{arrival: periodic, rate_per_s: 1, burst: 3}", "workload[0]"),
        ("{arrival: trace}", "workload[0].trace"),
        ("{arrival: trace, trace: nowhere.csv}", "workload[0].trace"),
    ],
)
def test_bad_workload_is_a_user_error_naming_the_field(tmp_path, workload, field):
    sc = tmp_path / "s.yaml"
    sc.write_text(BASE + f"workload: {workload}\n")
    with pytest.raises(UserError) as exc:
        load_scenario(sc, [])
    assert str(exc.value).startswith(field)


def test_a_workload_list_is_a_grid_axis_with_identity_columns(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(BASE + "workload: [{arrival: periodic, rate_per_s: [1]}]\n".replace("[1]", "1") + "")
    pts = load_scenario(sc, []).points()
    assert [p.workload.identity() for p in pts] == [
        {"arrival": "periodic", "rate_per_s": 1.0, "requests": 200, "seed": 0, "workload_trace": ""}
    ]
    default = load_scenario(sc, ["workload=[{arrival: single}, {arrival: poisson, rate_per_s: 2}]"]).points()
    assert [p.workload.arrival for p in default] == ["single", "poisson"]
    assert default[0].identity()["requests"] == 1 and default[0].single() == default[0]


def test_stream_rows_are_byte_identical_serial_and_in_workers(tmp_path):
    from astrasim.sweep import run_sweep

    sc = tmp_path / "s.yaml"
    sc.write_text(
        "name: s\nmodels: [vit-base]\ndevices: [2]\nstrategies: [single, sp]\n"
        "network: {topology: wifi, bandwidth_mbps: 200}\n"
        "workload: [{arrival: poisson, rate_per_s: 2, requests: 6, seed: 4}]\n"
    )
    run_sweep(sc, out=tmp_path / "serial.csv", progress=False)
    run_sweep(sc, out=tmp_path / "workers.csv", workers=2, progress=False)
    assert (tmp_path / "serial.csv").read_bytes() == (tmp_path / "workers.csv").read_bytes()
    text = (tmp_path / "serial.csv").read_text()
    assert "latency_p99_s" in text.splitlines()[0] and text.count("\n") == 3


def test_plan_for_a_rate_uses_p99_and_stability_and_finds_the_single_device_capacity(tmp_path):
    from astrasim.analysis.planning import format_report, load_plan, run_plan

    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "name: p\nmodel: vit-base\nlatency_target_s: 1.0\nrate_per_s: 15\n"
        "stream: {arrival: periodic, requests: 12}\ndevices: [jetson-orin-nano]\ndevice_counts: [1, 2]\n"
        "networks: [wifi-20mbps]\nstrategies: [single, {name: astra, groups: 32}]\n"
        "sweep: {hardware: {profile: cpu}}\n"
    )
    result = run_plan(load_plan(plan), progress=False)
    t = result.table
    assert (t["feasible"] == ((t["latency_p99_s"] <= 1.0) & t["stable"].astype(bool) & t["meets_accuracy"])).all()
    single = t[t["strategy"] == "single"].iloc[0]
    service = single["single_latency_s"]
    cap = {c.configuration: c.max_rate_per_s for c in result.capacity}
    assert 0.98 / service <= cap[single["configuration"]] < 1 / service  # rho < 1, bisection to ~1.5 %
    assert "maximum sustainable rate" in format_report(result)


def test_latency_vs_load_plot_is_written(tmp_path):
    from astrasim.analysis.load_plots import plot_latency_vs_load

    rows = [
        {
            "model": "m",
            "strategy": "single",
            "arrival": "poisson",
            "rate_per_s": r,
            "latency_p50_s": 0.1 * r,
            "latency_p99_s": 0.2 * r,
            "stable": r < 3,
        }
        for r in (1, 2, 3)
    ]
    import pandas as pd

    out = plot_latency_vs_load(pd.DataFrame(rows), tmp_path / "load.png", latency_target_s=0.5)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot_latency_vs_load(pd.DataFrame(rows).assign(arrival="single"), tmp_path / "x.png")


def test_cli_simulate_prints_the_stream_row_and_rejects_a_bad_workload_in_one_line(tmp_path):
    import json

    from typer.testing import CliRunner

    from astrasim.cli import app

    sc = tmp_path / "s.yaml"
    sc.write_text(BASE)
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(sc), "--set", "workload={arrival: periodic, rate_per_s: 1, requests: 3}"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output)
    assert row["requests"] == 3 and row["latency_p99_s"] == pytest.approx(row["single_latency_s"], rel=1e-9)
    bad = runner.invoke(app, ["simulate", str(sc), "--set", "workload={arrival: poisson}"])
    assert bad.exit_code == 2 and "workload[0].rate_per_s" in bad.output
