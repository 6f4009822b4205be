"""Write notebooks/pareto.ipynb and notebooks/capacity_planning.ipynb (no outputs).

    python notebooks/build_notebooks.py

Both notebooks start from scenarios/wifi.yaml and run top to bottom headless. Environment:
ASTRASIM_NOTEBOOK_QUICK=1 shrinks the grid (the tests use it), ASTRASIM_NOTEBOOK_OUT sets where
results and PNGs go (default results/notebooks/).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import os
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
os.chdir(ROOT)
QUICK = os.environ.get("ASTRASIM_NOTEBOOK_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("ASTRASIM_NOTEBOOK_OUT", "results/notebooks"))
OUT.mkdir(parents=True, exist_ok=True)
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)
print(f"repository: {ROOT}; quick grid: {QUICK}; outputs: {OUT}")"""

PROFILE = """\
# Compute times come from the measured CPU profile (profiles/cpu.csv). On a checkout without it,
# fall back to the analytic roofline profile, and say so: its numbers are not measurements.
from astrasim.errors import UserError
from astrasim.compute.profiles import resolve_profile_path

try:
    PROFILE_NOTE = f"measured profile {resolve_profile_path('cpu')}"
except UserError:
    from astrasim.models import get_model
    from astrasim.strategies.synthetic import synthetic_profile

    tmp = Path(tempfile.mkdtemp())
    synthetic_profile([get_model("vit-base"), get_model("gpt2-s")], devices=(2, 4, 8)).to_csv(tmp / "cpu.csv", index=False)
    os.environ["ASTRASIM_PROFILES"] = str(tmp)
    PROFILE_NOTE = "ANALYTIC roofline profile (profiles/cpu.csv is missing; measure it with `astrasim profile`)"
print("compute times:", PROFILE_NOTE)"""


def pareto() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("""\
# Latency, accuracy, bits and cost: Pareto frontiers over the Wi-Fi sweep

Starts from `scenarios/wifi.yaml` (ViT-Base and GPT2-S over one Wi-Fi access point), runs the sweep
(or loads `results/wifi.csv` when `astrasim sweep scenarios/wifi.yaml` already wrote it), joins the
accuracy tables and draws the frontiers. A point is on the frontier when no other point is at
least as good on both axes and better on one; dominated points are drawn hollow, not dropped.
Points whose accuracy is unknown (ASTRA G=16 and block parallelism were not published) are
counted, never invented. `ASTRASIM_NOTEBOOK_QUICK=1` runs a reduced grid (4 devices, 20 and
100 Mbps)."""),
        new_code_cell(SETUP),
        new_code_cell(PROFILE),
        new_markdown_cell("## 1. The sweep"),
        new_code_cell("""\
from astrasim.scenario import load_scenario
from astrasim.sweep import run_sweep

overrides = ["devices=[4]", "network.bandwidth_mbps=[20, 100]"] if QUICK else []
scenario = load_scenario("scenarios/wifi.yaml", overrides)
saved = Path("results/wifi.csv")
if saved.exists() and not QUICK:
    results = pd.read_csv(saved)
    print(f"loaded {saved}")
else:
    results = run_sweep(scenario, out=OUT / "wifi.csv", progress=False)
values = lambda col: sorted(results[col].unique().tolist())  # plain Python values, not np.int64(1)
print(f"{len(results)} points: models {values('model')}, devices {values('devices')}, "
      f"bandwidths {values('bandwidth_mbps')} Mbps")"""),
        new_code_cell("""\
from astrasim.analysis.plots import plot_latency_vs_bandwidth, plot_speedup

display(Image(str(plot_latency_vs_bandwidth(results, OUT / "latency_vs_bandwidth.png"))))
display(Image(str(plot_speedup(results, OUT / "speedup.png"))))"""),
        new_markdown_cell("""\
## 2. Join the accuracy data

`profiles/accuracy.csv` holds the paper's published numbers (arXiv 2505.19342): single, tp and sp
are exact, so they carry the original model's accuracy; ASTRA G=32 and G=1 as published; G=16
and block parallelism are missing. Join rule: model + strategy + groups (groups only for astra),
one task per model (its first in the file: CIFAR-100 top-1 for ViT-Base, zero-shot perplexity for
GPT2-S)."""),
        new_code_cell("""\
from astrasim.analysis.accuracy_data import join_accuracy, load_accuracy

accuracy = load_accuracy(["profiles/accuracy.csv"])
joined = join_accuracy(results, accuracy)
joined.groupby(["model", "strategy", "groups"])[["accuracy", "accuracy_metric"]].first()"""),
        new_markdown_cell(
            "## 3. Frontiers at 20 Mbps with 4 devices: accuracy vs latency, vs bits sent, vs hardware cost"
        ),
        new_code_cell("""\
from astrasim.analysis.pareto import mark_accuracy_pareto
from astrasim.analysis.pareto_plots import plot_accuracy_frontiers
from astrasim.analysis.planning import add_cost_energy, load_devices, load_networks

BW, N = 20.0, 4
at = joined[(joined.bandwidth_mbps == BW) & joined.devices.isin([1, N])].copy()
at["network_option"] = "wifi-20mbps"           # price of the Wi-Fi gear: profiles/networks.yaml
at = add_cost_energy(at, load_devices(), load_networks())
marked = mark_accuracy_pareto(at, "latency_s", by=["model"])
cols = ["model", "strategy", "groups", "nb", "devices", "latency_s", "comm_bits", "cost_usd", "accuracy", "pareto"]
marked[cols].sort_values(["model", "latency_s"])"""),
        new_code_cell("""\
title = f"{BW:g} Mbps Wi-Fi, {N} devices ({PROFILE_NOTE.split(' (')[0]})"
for x, name in [("latency_s", "latency"), ("comm_bits", "bits"), ("cost_usd", "cost")]:
    # one device sends nothing and is exact, so it would dominate every bits frontier: compare the
    # multi-device strategies there
    rows = at[at.devices > 1] if x == "comm_bits" else at
    display(Image(str(plot_accuracy_frontiers(rows, OUT / f"pareto_accuracy_vs_{name}.png", x=x,
                                                logx=x != "cost_usd", title=title))))"""),
        new_markdown_cell("""\
## 4. Measured accuracy for every G (`astrasim accuracy`)

The paper gives no G=16 number. `astrasim accuracy` measures every G on a small real task
(a tiny ViT on scikit-learn's digits, fine-tuned with the real ASTRA kernels); these rows are a
*different model and task*, so they are shown here and never joined onto ViT-Base or GPT2-S."""),
        new_code_cell("""\
from astrasim.accuracy.train import ablation_table, grid_table
from astrasim.analysis.pareto_plots import plot_measured_accuracy

measured = pd.read_csv("profiles/accuracy_measured.csv")
display(grid_table(measured).round(2))
display(ablation_table(measured).round(2))
display(Image(str(plot_measured_accuracy(measured, OUT / "measured_accuracy.png"))))"""),
        new_markdown_cell("## 5. The answer"),
        new_code_cell("""\
from astrasim.strategies import label_of

def answer(model: str) -> str:
    rows = marked[(marked.model == model) & (marked.pareto != "missing")]
    metric = {"top1_pct": "top-1 %"}.get(rows.accuracy_metric.iloc[0], rows.accuracy_metric.iloc[0])
    best_acc = rows.accuracy.max() if rows.accuracy_higher_is_better.iloc[0] else rows.accuracy.min()
    exact = rows[rows.accuracy == best_acc].sort_values("latency_s").iloc[0]
    fastest = rows.sort_values("latency_s").iloc[0]
    name = label_of  # the registry's label of a row's variant ("astra G=32", "sp")
    text = f"{model} at {BW:g} Mbps with {N} devices: "
    if fastest.name == exact.name:
        return text + (f"{name(fastest)} is the fastest configuration with a known {metric} ({fastest.latency_s:.3f} s) "
                       f"and keeps the original model's {metric} ({best_acc:g}): nothing on the frontier trades "
                       "accuracy for speed here.")
    return text + (f"the fastest configuration with a known {metric} is {name(fastest)} ({fastest.latency_s:.3f} s, "
                   f"{metric} {fastest.accuracy:g}); the fastest at the original model's {metric} ({best_acc:g}) is "
                   f"{name(exact)} ({exact.latency_s:.3f} s), so the frontier trades "
                   f"{abs(fastest.accuracy - best_acc):.2f} {metric} for a {exact.latency_s / fastest.latency_s:.1f}x "
                   "lower latency.")

for m in sorted(marked.model.unique()):
    print(answer(m))"""),
    ]
    return new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )


def capacity() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("""\
# Capacity planning: the cheapest setup for GPT2-S prefill under 1 s at 20 Mbps Wi-Fi

Starts from `scenarios/wifi.yaml` (its strategies and GPT2-S at 1024 tokens) and asks
`astrasim.analysis.planning` for the cheapest devices x count x strategy on the 20 Mbps Wi-Fi of
`profiles/networks.yaml` that serves a 1024-token prefill in under 1 s with zero-shot perplexity
no worse than 80 (ASTRA G=32 publishes 76.24, the original model 58.91). Devices and prices:
`profiles/devices.yaml`; cost = devices x price + network; energy = active power x busy + idle power x the rest + Wi-Fi radio airtime (astrasim.placement.energy).
`ASTRASIM_NOTEBOOK_QUICK=1` runs a reduced grid."""),
        new_code_cell(SETUP),
        new_code_cell(PROFILE),
        new_code_cell("""\
from astrasim.analysis.planning import PlanScenario, format_report, load_devices, run_plan
from astrasim.scenario import load_scenario

wifi = load_scenario("scenarios/wifi.yaml")
# the wifi scenario's strategies with their knob lists (QUICK: the last value of each list only)
strategies = [{"name": e.name, **{k: (v[-1:] if QUICK else v) for k, v in e.knobs.items()}} for e in wifi.strategies]
catalog = load_devices()
candidates = ["raspberry-pi-5", "jetson-orin-nano"] if QUICK else ["raspberry-pi-5", "jetson-orin-nano", "jetson-agx-orin"]
print(pd.DataFrame([catalog[d].model_dump() for d in candidates])[["name", "price_usd", "active_power_w", "mem_read_gbs", "matmul_gflops"]])

plan = PlanScenario(name="gpt2s-prefill-20mbps", model="gpt2-s", tokens=1024, latency_target_s=1.0,
                    accuracy={"floor": 80, "task": "zeroshot"}, devices=candidates,
                    device_counts=[1, 2, 4] if QUICK else [1, 2, 4, 8], networks=["wifi-20mbps"],
                    strategies=strategies,
                    sweep={"hardware": {"profile": wifi.hardware.profile or "cpu"}})
result = run_plan(plan, progress=False)
print(format_report(result, top=8))"""),
        new_code_cell("""\
from astrasim.analysis.pareto_plots import plot_plan

# every configuration: latency against cost per device and network, the 1 s target, the chosen one ringed
display(Image(str(plot_plan(result, OUT / "plan_cost_vs_latency.png"))))
result.table[["configuration", "cost_usd", "latency_s", "accuracy", "energy_j", "feasible"]].head(12)"""),
        new_markdown_cell("## The answer"),
        new_code_cell("""\
def say(result) -> str:
    c = result.cheapest
    if c is None:
        return "Nothing meets the constraints: " + " ".join(result.binding)
    single = result.feasible[result.feasible.strategy == "single"]
    text = (f"The cheapest setup that serves GPT2-S 1024-token prefill in under {result.plan.latency_target_s:g} s "
            f"on 20 Mbps Wi-Fi is {c.configuration}: ${c.cost_usd:,.0f}, {c.latency_s:.2f} s, "
            f"perplexity {c.accuracy:g}, {c.energy_j:.3g} J per inference.")
    if not single.empty and single.iloc[0].name != c.name:
        s = single.iloc[0]
        text += (f" The cheapest single device that does it alone is {s.configuration} "
                 f"(${s.cost_usd:,.0f}, {s.latency_s:.2f} s, perplexity {s.accuracy:g}).")
    elif single.empty:
        text += " No single candidate device is fast enough alone."
    return text

print(say(result))"""),
        new_markdown_cell("""\
### What exactness costs

The same question with the floor at the original model's perplexity (58.91): only exact strategies
(single, tp, sp) qualify, and over 20 Mbps the exact multi-device ones pay for full-precision
traffic."""),
        new_code_cell("""\
exact = run_plan(plan.model_copy(update={"accuracy": plan.accuracy.model_copy(update={"floor": 58.91})}),
                 progress=False)
print(say(exact))"""),
        new_markdown_cell("### A target nothing meets: which constraint binds, and by how much"),
        new_code_cell("""\
target = float(f"{result.table.latency_s.min() / 2:.2g}")  # half the fastest configuration's latency
tight = run_plan(plan.model_copy(update={"latency_target_s": target}), progress=False)
print("\\n".join(tight.binding) if tight.cheapest is None else say(tight))"""),
    ]
    return new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )


def main() -> None:
    for name, nb in (("pareto.ipynb", pareto()), ("capacity_planning.ipynb", capacity())):
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
