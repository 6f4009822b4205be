"""Pareto-frontier and capacity-plan plots (matplotlib, Agg, PNG). Latency vs bandwidth and the
speedup heat map are in astrasim.analysis.plots; colours, markers and tick labels come from
astrasim.analysis.style (one look per strategy variant, plain numbers), legends sit outside
the data and no latency axis is inverted (lower is better, and the axis label says so).

* plot_pareto(df, x, y, path): one panel per ``panel`` group; frontier points in full colour and
  joined by a step line, dominated points faded (marked, not dropped); rows with a missing
  objective are counted in the panel's note.
* plot_accuracy_frontiers(joined, path, x=...): accuracy (y) against latency, bits sent or cost,
  one panel per model (its own metric and direction; perplexity runs downward so better is up).
* plot_plan(result, path): `astrasim plan`'s answer: latency against cost for every configuration,
  one panel per device and network, the latency target (and budget) as lines, configurations that
  miss a constraint faded, the chosen (cheapest feasible) one ringed and named.
* plot_measured_accuracy(rows, path): ``astrasim accuracy`` results: top-1 against bits per token
  per device count, and the ablations as mean ± std bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from astrasim.analysis.pareto import DOMINATED, FRONTIER, MISSING, mark_accuracy_pareto  # noqa: E402
from astrasim.analysis.plots import _save, legend_outside  # noqa: E402  (same PNG settings and atomic write)
from astrasim.analysis.style import LINESTYLES, Looks, bits, lighten, number, plain_axis, seconds, usd, variant_labels  # noqa: E402
from astrasim.strategies import STRATEGIES, label_of  # noqa: E402
from astrasim.strategies.registry import single_device_strategy  # noqa: E402

AXIS_LABELS = {
    "latency_s": "latency per inference (lower is better)",
    "comm_bits": "bits sent per inference (bit)",
    "cost_usd": "hardware cost (USD)",
    "energy_j": "energy per inference (J)",
    "accuracy": "accuracy",
}
TICKS = {"latency_s": seconds, "cost_usd": usd, "comm_bits": bits}
FADED = 0.45  # opacity of dominated / infeasible points


def point_labels(df: pd.DataFrame) -> list[str]:
    """'astra G=16', 'bp-ag Nb=4', ... with the device count when it varies."""
    labels = [label_of(r) for r in df.to_dict("records")]
    if "devices" in df.columns and df["devices"].nunique() > 1:
        labels = [f"{lab}, N={int(n)}" for lab, n in zip(labels, df["devices"])]
    return labels


def _scatter(ax, looks: Looks, rows: pd.DataFrame, x: str, y: str, alpha: float = 1.0, size: float = 1.0) -> None:
    for lab, part in rows.groupby("label", sort=False):
        ax.scatter(part[x], part[y], alpha=alpha, **looks[lab].scatter(size))


def _panel(ax, looks: Looks, part: pd.DataFrame, x: str, y: str, x_sense: str, annotate: bool) -> None:
    known = part[part["pareto"] != MISSING]
    _scatter(ax, looks, known[known["pareto"] == DOMINATED], x, y, alpha=FADED, size=0.8)
    _scatter(ax, looks, known[known["pareto"] == FRONTIER], x, y)
    front = known[known["pareto"] == FRONTIER].sort_values(x, ascending=x_sense == "min")
    if len(front):
        ax.step(front[x], front[y], where="post", color="0.3", lw=1, zorder=1.5)
        if annotate:
            for (_, r), lab in zip(front.iterrows(), point_labels(front)):
                ax.annotate(lab, (r[x], r[y]), textcoords="offset points", xytext=(5, 4), fontsize=7)
    missing = int((part["pareto"] == MISSING).sum())
    note = "faded = dominated" + (f"; {missing} point(s) with a missing value not shown" if missing else "")
    ax.text(0.01, 1.01, note, transform=ax.transAxes, fontsize=7, color="0.35", va="bottom")
    ax.grid(alpha=0.3)


def _plain_ticks(ax, x: str, y: str) -> None:
    plain_axis(ax, "x", TICKS.get(x, number))
    plain_axis(ax, "y", TICKS.get(y, number))


def plot_pareto(
    df: pd.DataFrame,
    x: str,
    y: str,
    path: str | Path,
    *,
    x_sense: str = "min",
    y_sense: str = "max",
    panel: Sequence[str] = (),
    xlabel: str | None = None,
    ylabel: str | None = None,
    logx: bool = False,
    logy: bool | str = False,
    annotate: bool = True,
    title: str = "",
) -> Path:
    """Scatter of ``y`` against ``x`` for rows already marked by ``mark_pareto`` (column ``pareto``).
    ``logy``: True = log axis, "symlog" = symmetric log, so zeros (one device sends no bits) stay visible.
    Axes are never inverted: the labels say which way is better."""
    if "pareto" not in df.columns:
        raise ValueError("mark the frame with mark_pareto first (column 'pareto')")
    df = df.assign(label=variant_labels(df))
    looks = Looks(df, df["label"])
    groups = [((), df)] if not panel else list(df.groupby(list(panel), sort=True))
    cols = min(3, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 4 * rows), squeeze=False, layout="constrained")
    for ax, (key, part) in zip(axes.flat, groups):
        _panel(ax, looks, part, x, y, x_sense, annotate)
        if logx:
            ax.set_xscale("log")
        if logy == "symlog":
            ax.set_yscale("symlog", linthresh=1e3)
        elif logy:
            ax.set_yscale("log")
        _plain_ticks(ax, x, y)
        ax.set_xlabel(xlabel or AXIS_LABELS.get(x, x))
        ax.set_ylabel(ylabel or AXIS_LABELS.get(y, y))
        key = key if isinstance(key, tuple) else (key,)
        ax.set_title(", ".join(f"{c}={v}" for c, v in zip(panel, key)), fontsize=9, pad=14)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    legend_outside(fig, looks, df["label"].unique())
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_accuracy_frontiers(
    joined: pd.DataFrame, path: str | Path, *, x: str = "latency_s", logx: bool = True, title: str = ""
) -> Path:
    """Accuracy against ``x`` (latency_s, comm_bits, cost_usd...), one panel per model, frontier per
    model with the accuracy direction of its metric (perplexity: lower is better, drawn downward)."""
    marked = mark_accuracy_pareto(joined, x, by=["model"])
    marked = marked.assign(label=variant_labels(marked))
    looks = Looks(marked, marked["label"])
    models = sorted(marked["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.2), squeeze=False, layout="constrained")
    for ax, model in zip(axes.flat, models):
        part = marked[marked["model"] == model]
        metric = part["accuracy_metric"].dropna()
        metric = str(metric.iloc[0]) if len(metric) else "accuracy"
        hib = part["accuracy_higher_is_better"].dropna()
        higher_is_better = bool(hib.iloc[0]) if len(hib) else True
        _panel(ax, looks, part, x, "accuracy", "min", annotate=True)
        if not higher_is_better:
            ax.invert_yaxis()  # perplexity: better is up, as for top-1
        if logx:  # symlog keeps zeros visible (one device sends no bits)
            if (part[x] <= 0).any():
                ax.set_xscale("symlog", linthresh=max(float(part.loc[part[x] > 0, x].min()), 1e-12))
                ax.set_xlim(left=0)
            else:
                ax.set_xscale("log")
        _plain_ticks(ax, x, "accuracy")
        task = part["accuracy_task"].dropna()
        ax.set_title(f"{model}" + (f" ({task.iloc[0]})" if len(task) else ""), fontsize=10, pad=14)
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        ax.set_ylabel(
            {"top1_pct": "top-1 accuracy (%)", "perplexity": "perplexity (lower is better, drawn downward)"}.get(
                metric, metric
            )
        )
    legend_outside(fig, looks, marked.loc[marked["pareto"] != MISSING, "label"].unique())
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_plan(result, path: str | Path, *, above_target: float = 20.0) -> Path:
    """Latency against cost of every configuration of a PlanResult, one panel per (device, network);
    one-device configurations appear in each network's panel of their device. The latency axis
    stops at `above_target` times the target (slower configurations are counted in the title)."""
    from astrasim.analysis.planning import NO_NETWORK

    table = result.table.assign(label=variant_labels(result.table))
    target, budget = result.plan.latency_target_s, result.plan.budget_usd
    looks = Looks(table, table["label"])
    single = table["network_option"] == NO_NETWORK
    nets = list(dict.fromkeys(table.loc[~single, "network_option"])) or list(dict.fromkeys(table["network_option"]))
    hardware = list(dict.fromkeys(table["hardware"]))
    chosen = result.cheapest
    lo = 0.7 * float(table["latency_s"].min())
    hi = min(float(table["latency_s"].max()) * 1.3, target * above_target)
    hi = max(hi, target * 1.5)
    panels = [(hw, net) for hw in hardware for net in nets]
    cols = len(nets) if len(nets) > 1 else min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False, sharex=True, sharey=True, layout="constrained"
    )
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    for k, (hw, net) in enumerate(panels):
        r, c = divmod(k, cols)
        ax = axes[r][c]
        part = table[(table["hardware"] == hw) & ((table["network_option"] == net) | single)]
        _scatter(ax, looks, part[~part["feasible"]], "cost_usd", "latency_s", alpha=FADED, size=0.8)
        _scatter(ax, looks, part[part["feasible"]], "cost_usd", "latency_s")
        ax.axhspan(target, hi * 10, color="0.93", zorder=0)
        ax.axhline(target, color="#CC0000", ls="--", lw=1.3, zorder=1)
        if budget is not None:
            ax.axvline(budget, color="#CC0000", ls=":", lw=1.3, zorder=1)
        if chosen is not None and chosen.name in part.index:
            ax.scatter(
                [chosen["cost_usd"]],
                [chosen["latency_s"]],
                s=420,
                facecolors="none",
                edgecolors="black",
                linewidths=2.2,
                zorder=10,
            )
            ax.annotate(
                "chosen",
                (chosen["cost_usd"], chosen["latency_s"]),
                textcoords="offset points",
                xytext=(0, 13),
                ha="center",
                fontsize=8,
                fontweight="bold",
                zorder=11,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        _plain_ticks(ax, "cost_usd", "latency_s")
        ax.grid(alpha=0.3, which="major")
        slow = int((part["latency_s"] > hi).sum())
        ax.set_title(
            f"{hw} on {net}" + (f"\n{slow} slower configuration(s) above the scale" if slow else ""), fontsize=8.5
        )
        if k + cols >= len(panels):
            ax.set_xlabel(AXIS_LABELS["cost_usd"])
            ax.xaxis.set_tick_params(labelbottom=True)
        if c == 0:
            ax.set_ylabel(AXIS_LABELS["latency_s"])
    extra = [
        (Line2D([], [], color="#CC0000", ls="--"), f"latency target {seconds(target)}"),
        (Line2D([], [], marker="o", ls="", mfc="none", mec="black", mew=2, ms=14), "chosen (cheapest feasible)"),
        (Line2D([], [], marker="o", ls="", color="0.5", alpha=FADED), "faded: misses a constraint"),
    ]
    if budget is not None:
        extra.insert(1, (Line2D([], [], color="#CC0000", ls=":"), f"budget {usd(budget)}"))
    legend_outside(fig, looks, table["label"].unique(), extra)
    answer = (
        "nothing meets every constraint"
        if chosen is None
        else f"chosen: {chosen['configuration']}, {usd(chosen['cost_usd'])}, {seconds(chosen['latency_s'])}"
    )
    fig.suptitle(
        f"{result.plan.name}: {result.plan.model} latency against hardware cost (grey: slower than the "
        f"target)\n{answer}",
        fontsize=10,
    )
    return _save(fig, path)


def plot_measured_accuracy(rows: pd.DataFrame, path: str | Path) -> Path:
    """Left: top-1 (%) against bits per token (log) for each device count, mean over seeds, with the
    original model as a dashed line. Right: the ablations as mean ± std bars."""
    from astrasim.accuracy.train import ablation_table

    reference = single_device_strategy().name
    method = rows[(rows["strategy"] != reference) & (rows["variant"] == "default")]
    original = rows[rows["strategy"] == reference]["value"]
    base = STRATEGIES[str(method["strategy"].iloc[0])].color if len(method) else "0.3"
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    counts = sorted(method["devices"].unique())
    for i, (n, part) in enumerate(method.groupby("devices")):
        s = part.groupby("bits_per_token")["value"].agg(["mean", "std"]).reset_index()
        left.errorbar(
            s["bits_per_token"],
            s["mean"],
            yerr=s["std"].fillna(0),
            marker="o",
            capsize=3,
            color=lighten(base, 0.5 * i / max(1, len(counts) - 1)),
            ls=LINESTYLES[i % len(LINESTYLES)],
            label=f"{part['strategy'].iloc[0]}, N={int(n)}",
        )
        if n == counts[0]:
            for _, r in part.drop_duplicates("groups").iterrows():
                left.annotate(
                    f"G={int(r['groups'])}",
                    (r["bits_per_token"], s["mean"].min()),
                    fontsize=7,
                    textcoords="offset points",
                    xytext=(0, -12),
                    ha="center",
                    color="0.4",
                )
    if len(original):
        left.axhline(original.mean(), color="black", ls="--", lw=1, label=f"original ({original.mean():.1f} %)")
    left.set_xscale("log", base=2)
    plain_axis(left, "x", number, values=method["bits_per_token"].unique())
    left.set_xlabel("bits sent per token (G x log2 K)")
    left.set_ylabel("test top-1 accuracy (%)")
    left.set_title("TinyViT on scikit-learn digits, after fine-tuning", fontsize=10)
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    abl = ablation_table(rows)
    if abl.empty:
        right.axis("off")
    else:
        names = [f"{r.variant}\nlambda={r.noise_lambda:g}\n{r.cls} CLS" for r in abl.itertuples()]
        bars = right.bar(
            range(len(abl)),
            abl["mean"],
            yerr=abl["std"].fillna(0),
            capsize=5,
            edgecolor=base,
            color=[lighten(base, 0.6 * i / max(1, len(abl) - 1)) for i in range(len(abl))],
        )
        for i, patch in enumerate(bars):
            patch.set_hatch(["", "//", "..", "xx"][i % 4])
        right.set_xticks(range(len(abl)), names, fontsize=7)
        lo = float((abl["mean"] - abl["std"].fillna(0)).min())
        right.set_ylim(max(0.0, lo - 3), min(100.0, float((abl["mean"] + abl["std"].fillna(0)).max()) + 2))
        right.set_ylabel("test top-1 accuracy (%)")
        right.set_title(
            f"ablations at G={int(abl['groups'].iloc[0])}, N={int(abl['devices'].iloc[0])} "
            f"(mean ± std, n={int(abl['n'].min())} seeds)",
            fontsize=10,
        )
        right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return _save(fig, path)
