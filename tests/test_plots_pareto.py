"""Pareto and capacity-plan plots follow the same rules as the sweep plots: registry looks per
variant, legend outside the data, plain ticks, latency never inverted; the plan plot draws the
latency target and rings the chosen configuration."""

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import astrasim.analysis.pareto_plots as pp
from astrasim.analysis.pareto import mark_pareto
from astrasim.analysis.planning import NO_NETWORK, PlanResult, PlanScenario
from astrasim.strategies import STRATEGIES
from astrasim.strategies.registry import knob_columns, single_device_strategy

SINGLE = single_device_strategy()
MULTI = next(s.name for s in STRATEGIES.values() if not s.single_device)


@pytest.fixture
def figures(capture_figures):
    return capture_figures(pp)


def plan_table() -> pd.DataFrame:
    """Every strategy at 1 (single) or 2 and 4 devices on one network: cost grows with N, latency
    with the strategy's rank; the cheapest feasible one is first, as evaluate() ranks them."""
    rows = []
    for i, s in enumerate(STRATEGIES.values()):
        for n in [1] if s.single_device else [2, 4]:
            lat = 2.0 if s.single_device else 0.2 * (i + 1) * (4 / n)
            net = NO_NETWORK if s.single_device else "wifi-20mbps"
            rows.append(
                {
                    "strategy": s.name,
                    **knob_columns(s.name, s.Knobs()),
                    "devices": n,
                    "hardware": "dev",
                    "network_option": net,
                    "cost_usd": 100.0 * n + (0 if n == 1 else 30),
                    "latency_s": lat,
                    "configuration": f"{n} x dev, {s.label()}",
                    "device_cost_usd": 100.0 * n,
                    "network_cost_usd": 0 if n == 1 else 30,
                    "accuracy": np.nan,
                    "energy_j": 1.0 * n,
                    "comm_bits": 0.0 if n == 1 else 1e6,
                }
            )
    t = pd.DataFrame(rows)
    t["feasible"] = t["latency_s"] <= 1.0
    t["pareto"] = "dominated"
    return t.sort_values(["feasible", "cost_usd", "latency_s"], ascending=[False, True, True]).reset_index(drop=True)


def plan_result(table=None, target=1.0, budget=None) -> PlanResult:
    plan = PlanScenario(
        name="t", model="gpt2-s", latency_target_s=target, budget_usd=budget, devices=["dev"], networks=["wifi-20mbps"]
    )
    return PlanResult(plan=plan, table=plan_table() if table is None else table, metric=None, higher_is_better=True)


def _hex(c):
    return mcolors.to_hex(np.asarray(c).ravel()[:3])


def test_plan_plot_target_line_upright_axis_chosen_ringed_legend_outside(figures, tmp_path):
    result = plan_result(budget=450)
    pp.plot_plan(result, tmp_path / "plan.png")
    fig = figures[0]
    ax = next(a for a in fig.axes if a.collections)
    lo, hi = ax.get_ylim()
    assert lo < hi, "latency axis not inverted"
    assert any(np.allclose(ln.get_ydata(), [1.0, 1.0]) for ln in ax.get_lines()), "latency target line"
    assert any(np.allclose(ln.get_xdata(), [450, 450]) for ln in ax.get_lines()), "budget line"
    chosen = result.cheapest
    rings = [
        c
        for c in ax.collections
        if np.allclose(c.get_offsets(), [[chosen.cost_usd, chosen.latency_s]]) and c.get_sizes()[0] > 200
    ]
    assert rings, "the chosen configuration is ringed"
    assert "chosen: " + chosen.configuration in fig._suptitle.get_text()
    assert ax.get_legend() is None and fig.legends
    assert fig.legends[0].get_window_extent().x0 >= max(a.get_window_extent().x1 for a in fig.axes) - 1


def test_plan_plot_points_carry_registry_colours_and_faded_infeasible(figures, tmp_path):
    result = plan_result()
    pp.plot_plan(result, tmp_path / "plan.png")
    ax = next(a for a in figures[0].axes if a.collections)
    edges = {_hex(c.get_edgecolor()) for c in ax.collections if c.get_sizes()[0] < 200}
    assert {mcolors.to_hex(s.color) for s in STRATEGIES.values()} <= edges
    alphas = {c.get_alpha() for c in ax.collections if c.get_sizes()[0] < 200}
    assert pp.FADED in alphas and (None in alphas or 1.0 in alphas)
    texts = [t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels()) if t.get_text()]
    assert any(t.startswith("$") for t in texts) and any(t.endswith(" s") for t in texts)
    assert not any("^" in t or "e+" in t for t in texts)


def test_plan_plot_with_nothing_feasible_says_so(figures, tmp_path):
    t = plan_table().assign(feasible=False)
    pp.plot_plan(plan_result(t), tmp_path / "plan.png")
    assert "nothing meets every constraint" in figures[0]._suptitle.get_text()


def test_plot_pareto_does_not_invert_latency_and_uses_variant_looks(figures, tmp_path):
    t = mark_pareto(plan_table(), {"cost_usd": "min", "latency_s": "min"})
    pp.plot_pareto(t, "cost_usd", "latency_s", tmp_path / "p.png", y_sense="min", logx=True, logy=True)
    ax = figures[0].axes[0]
    lo, hi = ax.get_ylim()
    assert lo < hi
    assert ax.get_legend() is None and figures[0].legends
    legend = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert legend[0] == "one device" and len(legend) == len(STRATEGIES)


def test_accuracy_frontiers_keep_looks_and_plain_ticks(figures, tmp_path):
    t = plan_table().assign(
        model="m",
        accuracy=[80.0 + i for i in range(len(plan_table()))],
        accuracy_metric="top1_pct",
        accuracy_higher_is_better=True,
        accuracy_task="t",
    )
    pp.plot_accuracy_frontiers(t, tmp_path / "a.png", x="latency_s")
    ax = figures[0].axes[0]
    edges = {_hex(c.get_edgecolor()) for c in ax.collections if len(c.get_offsets())}
    assert {mcolors.to_hex(s.color) for s in STRATEGIES.values()} <= edges
    assert all(t.get_text().endswith(" s") for t in ax.get_xticklabels() if t.get_text())


def test_cli_plan_plot_option_writes_a_png(tmp_path, monkeypatch):
    """`astrasim plan --plot PATH` draws the plan's result (the simulation itself is test_plan's)."""
    import astrasim.analysis.planning as planning
    from astrasim.cli import app

    monkeypatch.setattr(planning, "run_plan", lambda *a, **k: plan_result())
    plan = {
        "name": "t",
        "model": "gpt2-s",
        "latency_target_s": 1.0,
        "devices": ["jetson-orin-nano"],
        "networks": ["ethernet-1g"],
        "strategies": [SINGLE.name, MULTI],
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    out = tmp_path / "plan.png"
    r = CliRunner().invoke(app, ["plan", str(tmp_path / "plan.yaml"), "--no-progress", "--plot", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot -> {out}" in r.output
