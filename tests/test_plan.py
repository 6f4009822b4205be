"""Capacity planning: cost, energy, feasibility, ranking, binding constraints, bad input (exit 2)."""

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from astrasim.analysis.planning import (
    PlanScenario,
    binding_constraints,
    check_names,
    evaluate,
    load_devices,
    load_networks,
    load_plan,
    plan_accuracy,
    run_plan,
)
from astrasim.cli import app
from astrasim.errors import UserError
from astrasim.models import get_model
from astrasim.strategies.synthetic import synthetic_profile

ROOT = Path(__file__).resolve().parents[1]
PLAN = {
    "name": "t",
    "model": "gpt2-s",
    "tokens": 1024,
    "latency_target_s": 1.0,
    "accuracy": {"floor": 80, "task": "zeroshot"},
    "devices": ["raspberry-pi-5", "jetson-orin-nano"],
    "device_counts": [1, 2, 4],
    "networks": ["wifi-20mbps", "ethernet-1g"],
    "strategies": ["single", "sp", {"name": "astra", "groups": [1, 32]}],
    "sweep": {"hardware": {"profile": "cpu"}},
}


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    """A synthetic profile installed as id 'cpu' (the catalog devices scale from it)."""
    d = tmp_path_factory.mktemp("profiles")
    synthetic_profile([get_model("gpt2-s")], devices=(2, 4, 8)).to_csv(d / "cpu.csv", index=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("ASTRASIM_PROFILES", str(d))
    yield d
    mp.undo()


def _write(tmp_path, **changes) -> Path:
    data = {**PLAN, **changes}
    p = tmp_path / "plan.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_shipped_catalogs_and_plan_scenario_load():
    nets = load_networks()
    assert {"wifi-20mbps", "wifi5-1x1-80mhz", "ethernet-1g"} <= set(nets)
    assert all(n.source and n.price_usd >= 0 for n in nets.values())
    plan = load_plan(ROOT / "scenarios" / "plan.yaml")
    check_names(plan, load_devices(), nets)


def test_plan_ranks_by_cost_with_energy_and_frontier(profiles, tmp_path):
    plan = load_plan(_write(tmp_path))
    result = run_plan(plan, progress=False)
    t = result.table
    devices, nets = load_devices(), load_networks()
    # cost = devices x price + network (+ per-device cables); single pays no network
    for _, r in t.iterrows():
        net = 0.0 if r["network_option"] == "none" else nets[r["network_option"]].cost(r["devices"])
        assert r["cost_usd"] == pytest.approx(r["devices"] * devices[r["hardware"]].price_usd + net)
        # energy = active power x busy + idle power x the rest (+ Wi-Fi radio airtime on a wireless network;
        # astrasim.placement.energy, tested in tests/test_placement.py); compute_s is the per-device mean
        dev = devices[r["hardware"]]
        busy, span = r["compute_s"] * r["devices"], r["latency_s"] * r["devices"]
        boards = dev.active_power_w * busy + dev.idle_power_w * (span - busy)
        if r["network_option"] == "none" or r["devices"] == 1:
            assert r["energy_j"] == pytest.approx(boards)
        else:
            assert r["energy_j"] >= boards * (1 - 1e-9)
    assert set(t.loc[t["strategy"] == "single", "network_option"]) == {"none"}
    feasible = t[(t["latency_s"] <= 1.0) & (t["accuracy"] <= 80)]
    assert set(feasible.index) == set(result.feasible.index)
    assert result.cheapest is not None
    assert result.cheapest["cost_usd"] == feasible["cost_usd"].min()
    assert list(result.feasible["cost_usd"]) == sorted(result.feasible["cost_usd"])
    # unpublished G=1 perplexity cannot certify the floor
    assert not t.loc[(t["strategy"] == "astra") & (t["groups"] == 1), "feasible"].any()
    # the frontier is feasible and nothing feasible beats a frontier row on all three axes
    for _, f in result.frontier.iterrows():
        better = result.feasible[
            (result.feasible["cost_usd"] <= f["cost_usd"])
            & (result.feasible["latency_s"] <= f["latency_s"])
            & (result.feasible["accuracy"] <= f["accuracy"])
        ]
        assert (
            (better["cost_usd"] == f["cost_usd"])
            & (better["latency_s"] == f["latency_s"])
            & (better["accuracy"] == f["accuracy"])
        ).all()
    assert set(t.loc[~t["feasible"], "pareto"]) == {"infeasible"}


def test_cli_prints_cheapest_and_writes_table(profiles, tmp_path):
    out = tmp_path / "plan.csv"
    r = CliRunner().invoke(app, ["plan", str(_write(tmp_path)), "--no-progress", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "cheapest:" in r.output and "frontier" in r.output and "J per inference" in r.output
    table = pd.read_csv(out)
    assert {"cost_usd", "energy_j", "accuracy", "feasible", "pareto", "latency_s"} <= set(table.columns)


def test_infeasible_names_the_binding_constraint(profiles, tmp_path):
    r = CliRunner().invoke(app, ["plan", str(_write(tmp_path, latency_target_s=1e-4)), "--no-progress"])
    assert r.exit_code == 2
    assert "nothing is feasible" in r.output and "latency target binds" in r.output and "over the 0.0001 s" in r.output
    r = CliRunner().invoke(
        app,
        [
            "plan",
            str(_write(tmp_path, latency_target_s=0.12, accuracy={"floor": 70, "task": "zeroshot"})),
            "--no-progress",
        ],
    )
    assert r.exit_code == 2 and "accuracy floor binds" in r.output and "6.24 above the floor 70" in r.output


def test_binding_budget_and_joint_case():
    df = pd.DataFrame(
        {
            "configuration": ["a", "b"],
            "latency_s": [0.5, 2.0],
            "accuracy": [70.0, 60.0],
            "cost_usd": [500.0, 100.0],
            "meets_latency": [True, False],
            "meets_accuracy": [True, True],
            "meets_budget": [False, True],
        }
    )
    plan = PlanScenario(**{**PLAN, "budget_usd": 200})
    view = plan_accuracy(plan)
    lines = binding_constraints(df, plan, view)
    assert any("budget binds" in s and "$300 over" in s for s in lines)
    assert any("latency target binds" in s and "(b)" in s for s in lines)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"devices": ["raspberry-pi-9"]}, "unknown device 'raspberry-pi-9'"),
        ({"networks": ["wifi-7"]}, "unknown network 'wifi-7'"),
        ({"accuracy": {"floor": 50, "task": "zeroshot"}}, "constraints contradict"),
        ({"accuracy": {"floor": 50, "task": "no-such-task"}}, "no accuracy rows"),
        ({"latency_target_s": -1}, "latency_target_s"),
        ({"device_counts": [1], "strategies": ["sp"]}, "need 2 or more devices"),
        ({"budget_usd": 10}, "below the cheapest single device"),
        ({"strategies": ["pipeline"]}, "unknown strategy"),
        ({"strategies": [{"name": "astra", "groups": [7]}]}, "G=7 does not divide"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(profiles, tmp_path, change, message):
    r = CliRunner().invoke(app, ["plan", str(_write(tmp_path, **change)), "--no-progress"])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_user_accuracy_rows_must_match_a_result(profiles, tmp_path):
    bad = tmp_path / "mine.csv"
    bad.write_text(
        "model,task,strategy,groups,metric,value,higher_is_better,source\n"
        "gpt2-s,zeroshot,astra,16,perplexity,70,false,my run\n"
    )
    r = CliRunner().invoke(app, ["plan", str(_write(tmp_path)), "--no-progress", "--accuracy", str(bad)])
    assert r.exit_code == 2 and "matches no result" in r.output and "groups=16" in r.output
    good = tmp_path / "good.csv"
    good.write_text(bad.read_text().replace("astra,16", "astra,1"))
    r = CliRunner().invoke(app, ["plan", str(_write(tmp_path)), "--no-progress", "--accuracy", str(good)])
    assert r.exit_code == 0, r.output


def test_evaluate_rejects_empty_results():
    plan = PlanScenario(**PLAN)
    with pytest.raises(UserError, match="no configuration"):
        evaluate(pd.DataFrame(), plan, load_devices(), load_networks(), plan_accuracy(plan))
