"""Pareto-frontier plots (matplotlib, Agg, PNG). Latency vs bandwidth and the speedup heat map are
in astrasim.analysis.plots.

* plot_pareto(df, x, y, path): one panel per ``panel`` group; frontier points filled and joined by
  a step line, dominated points hollow and faded (marked, not dropped); rows with a missing
  objective are counted in the panel's note.
* plot_accuracy_frontiers(joined, path, x=...): accuracy (y) against latency, bits sent or cost,
  one panel per model (its own metric and direction).
* plot_measured_accuracy(rows, path): ``astrasim accuracy`` results: top-1 against bits per token
  per device count, and the ablations as mean ± std bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from astrasim.analysis.pareto import DOMINATED, FRONTIER, MISSING, mark_accuracy_pareto  # noqa: E402
from astrasim.analysis.plots import _save  # noqa: E402  (same PNG settings and atomic write)
from astrasim.strategies import STRATEGIES, label_of  # noqa: E402

AXIS_LABELS = {
    "latency_s": "latency per inference (s)",
    "comm_bits": "bits sent per inference (bit)",
    "cost_usd": "hardware cost (USD)",
    "energy_j": "energy per inference (J)",
    "accuracy": "accuracy",
}
STRATEGY_COLORS = {name: s.color for name, s in STRATEGIES.items()}


def point_labels(df: pd.DataFrame) -> list[str]:
    """'astra G=16', 'bp-ag Nb=4', ... with the device count when it varies."""
    labels = [label_of(r) for r in df.to_dict("records")]
    if "devices" in df.columns and df["devices"].nunique() > 1:
        labels = [f"{lab}, N={int(n)}" for lab, n in zip(labels, df["devices"])]
    return labels


def _panel(ax, part: pd.DataFrame, x: str, y: str, x_sense: str, y_sense: str, annotate: bool) -> None:
    known = part[part["pareto"] != MISSING]
    for strategy, rows in known.groupby("strategy", sort=False):
        color = STRATEGY_COLORS.get(str(strategy), "tab:gray")
        front = rows[rows["pareto"] == FRONTIER]
        dom = rows[rows["pareto"] == DOMINATED]
        ax.scatter(dom[x], dom[y], facecolors="none", edgecolors=color, alpha=0.45, s=28)
        ax.scatter(front[x], front[y], color=color, s=44, zorder=3)
        ax.scatter([], [], color=color, label=str(strategy))  # one legend entry per strategy
    front = known[known["pareto"] == FRONTIER].sort_values(x, ascending=x_sense == "min")
    if len(front):
        ax.step(front[x], front[y], where="post", color="0.3", lw=1, zorder=2)
        if annotate:
            for (_, r), lab in zip(front.iterrows(), point_labels(front)):
                ax.annotate(lab, (r[x], r[y]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    missing = int((part["pareto"] == MISSING).sum())
    note = f"hollow = dominated; {missing} point(s) with a missing value not shown" if missing else "hollow = dominated"
    ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=7, color="0.35", va="bottom")
    if y_sense == "min":
        ax.invert_yaxis()  # better is up
    ax.grid(alpha=0.3)


def plot_pareto(df: pd.DataFrame, x: str, y: str, path: str | Path, *, x_sense: str = "min",
                y_sense: str = "max", panel: Sequence[str] = (), xlabel: str | None = None,
                ylabel: str | None = None, logx: bool = False, logy: bool | str = False, annotate: bool = True,
                title: str = "") -> Path:
    """Scatter of ``y`` against ``x`` for rows already marked by ``mark_pareto`` (column ``pareto``).
    ``logy``: True = log axis, "symlog" = symmetric log, so zeros (one device sends no bits) stay visible."""
    if "pareto" not in df.columns:
        raise ValueError("mark the frame with mark_pareto first (column 'pareto')")
    groups = [((), df)] if not panel else list(df.groupby(list(panel), sort=True))
    cols = min(3, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4 * rows), squeeze=False)
    for ax, (key, part) in zip(axes.flat, groups):
        _panel(ax, part, x, y, x_sense, y_sense, annotate)
        if logx:
            ax.set_xscale("log")
        if logy == "symlog":
            ax.set_yscale("symlog", linthresh=1e3)
        elif logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel or AXIS_LABELS.get(x, x))
        ax.set_ylabel(ylabel or AXIS_LABELS.get(y, y))
        key = key if isinstance(key, tuple) else (key,)
        ax.set_title(", ".join(f"{c}={v}" for c, v in zip(panel, key)), fontsize=9)
        ax.legend(fontsize=7, title="strategy (filled = frontier)", title_fontsize=7, loc="best")
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_accuracy_frontiers(joined: pd.DataFrame, path: str | Path, *, x: str = "latency_s",
                            logx: bool = True, title: str = "") -> Path:
    """Accuracy against ``x`` (latency_s, comm_bits, cost_usd...), one panel per model, frontier per
    model with the accuracy direction of its metric (perplexity: lower is better, axis flipped)."""
    marked = mark_accuracy_pareto(joined, x, by=["model"])
    models = sorted(marked["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(5.6 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes.flat, models):
        part = marked[marked["model"] == model]
        metric = part["accuracy_metric"].dropna()
        metric = str(metric.iloc[0]) if len(metric) else "accuracy"
        hib = part["accuracy_higher_is_better"].dropna()
        sense = "max" if (hib.iloc[0] if len(hib) else True) else "min"
        _panel(ax, part, x, "accuracy", "min", sense, annotate=True)
        if logx:  # symlog keeps zeros visible (one device sends no bits)
            if (part[x] <= 0).any():
                ax.set_xscale("symlog", linthresh=max(float(part.loc[part[x] > 0, x].min()), 1e-12))
                ax.set_xlim(left=0)
            else:
                ax.set_xscale("log")
        task = part["accuracy_task"].dropna()
        ax.set_title(f"{model}" + (f" ({task.iloc[0]})" if len(task) else ""), fontsize=10)
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        ax.set_ylabel({"top1_pct": "top-1 accuracy (%)", "perplexity": "perplexity (lower is better)"}.get(metric, metric))
        ax.legend(fontsize=7, title="strategy (filled = frontier)", title_fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_measured_accuracy(rows: pd.DataFrame, path: str | Path) -> Path:
    """Left: top-1 (%) against bits per token (log) for each device count, mean over seeds, with the
    original model as a dashed line. Right: the ablations as mean ± std bars."""
    from astrasim.accuracy.train import ablation_table

    astra = rows[(rows["strategy"] == "astra") & (rows["variant"] == "default")]
    original = rows[rows["strategy"] == "single"]["value"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for n, part in astra.groupby("devices"):
        s = part.groupby("bits_per_token")["value"].agg(["mean", "std"]).reset_index()
        left.errorbar(s["bits_per_token"], s["mean"], yerr=s["std"].fillna(0), marker="o", capsize=3,
                      label=f"ASTRA, N={int(n)}")
        if n == astra["devices"].min():
            for _, r in part.drop_duplicates("groups").iterrows():
                left.annotate(f"G={int(r['groups'])}", (r["bits_per_token"], s["mean"].min()), fontsize=7,
                              textcoords="offset points", xytext=(0, -12), ha="center", color="0.4")
    if len(original):
        left.axhline(original.mean(), color="black", ls="--", lw=1, label=f"original ({original.mean():.1f} %)")
    left.set_xscale("log", base=2)
    left.set_xlabel("bits sent per token (G x log2 K)")
    left.set_ylabel("test top-1 accuracy (%)")
    left.set_title("TinyViT on scikit-learn digits, after ASTRA fine-tuning", fontsize=10)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    abl = ablation_table(rows)
    if abl.empty:
        right.axis("off")
    else:
        names = [f"{r.variant}\nlambda={r.noise_lambda:g}\n{r.cls} CLS" for r in abl.itertuples()]
        right.bar(range(len(abl)), abl["mean"], yerr=abl["std"].fillna(0), capsize=5,
                  color=["tab:red", "tab:gray", "tab:blue"][: len(abl)])
        right.set_xticks(range(len(abl)), names, fontsize=7)
        lo = float((abl["mean"] - abl["std"].fillna(0)).min())
        right.set_ylim(max(0.0, lo - 3), min(100.0, float((abl["mean"] + abl["std"].fillna(0)).max()) + 2))
        right.set_ylabel("test top-1 accuracy (%)")
        right.set_title(f"ablations at G={int(abl['groups'].iloc[0])}, N={int(abl['devices'].iloc[0])} "
                        f"(mean ± std, n={int(abl['n'].min())} seeds)", fontsize=10)
        right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return _save(fig, path)
