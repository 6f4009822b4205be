"""Plots of sweep results (matplotlib, Agg backend; PNG).

* plot_latency_vs_bandwidth(df, path): latency (s, log) against bandwidth (Mbps, log), one line
  per strategy variant, one panel per (model setting, device count); the single device is the
  dashed black line.
* plot_speedup(df, path): per model setting, a heat map of devices x bandwidth whose cells hold
  the best multi-device strategy's speedup over one device (colour and text) and its name.

A "model setting" is a distinct (model, tokens, hardware, network); other knobs that vary in the
frame (element bits, loss, speed, ...) are added to the line labels, and the heat map takes the
best over them.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from astrasim.fileio import atomic_path  # noqa: E402
from astrasim.strategies import STRATEGIES, label_of  # noqa: E402

SETTING = ["model", "tokens", "hardware", "network"]
EXTRA_KNOBS = ["element_bits", "loss_rate", "speed", "speeds", "efficiency", "latency_param_s", "trace",
               "broadcast", "causal_skip", "algorithm"]
STRATEGY_ORDER = list(STRATEGIES)


def _with_labels(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["label"] = [label_of(r) for r in df.to_dict("records")]
    varying = [k for k in EXTRA_KNOBS if k in df.columns and df[k].astype(str).nunique() > 1]
    for k in varying:
        df["label"] += " " + k + "=" + df[k].astype(str)
    df["order"] = [(STRATEGY_ORDER.index(s) if s in STRATEGY_ORDER else 99, int(g), int(nb))
                   for s, g, nb in zip(df["strategy"], df["groups"], df["nb"])]
    return df


def _setting_title(key: tuple) -> str:
    model, tokens, hardware, network = key
    return f"{model}, T={int(tokens)}, {hardware}, {network}"


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_latency_vs_bandwidth(df: pd.DataFrame, path: str | Path) -> Path:
    """Latency against bandwidth, one line per strategy variant (see module docstring). With a
    single bandwidth in the frame, a bar chart of the latency per strategy variant instead."""
    df = _with_labels(df)
    if df["bandwidth_mbps"].nunique() <= 1:
        return _latency_bars(df, path)
    settings = list(dict.fromkeys(map(tuple, df[SETTING].itertuples(index=False))))
    ns = sorted(int(n) for n in df.loc[df["strategy"] != "single", "devices"].unique()) or [1]
    fig, axes = plt.subplots(len(settings), len(ns), figsize=(4.6 * len(ns), 3.6 * len(settings)),
                             squeeze=False, sharex=True)
    labels = sorted(df.loc[df["strategy"] != "single", "label"].unique(),
                    key=lambda lab: (df.loc[df["label"] == lab, "order"].iloc[0], lab))
    colors = {lab: plt.cm.tab20(i % 20) for i, lab in enumerate(labels)}
    for r, key in enumerate(settings):
        sub = df[(df[SETTING].apply(tuple, axis=1)) == key]
        single = sub[sub["strategy"] == "single"].sort_values("bandwidth_mbps")
        for c, n in enumerate(ns):
            ax = axes[r][c]
            for lab in labels:
                line = sub[(sub["label"] == lab) & (sub["devices"] == n)].sort_values("bandwidth_mbps")
                if not line.empty:
                    ax.plot(line["bandwidth_mbps"], line["latency_s"], marker="o", ms=3, lw=1.4,
                            color=colors[lab], label=lab)
            for lab in single["label"].unique():
                s = single[single["label"] == lab]
                ax.plot(s["bandwidth_mbps"], s["latency_s"], "k--", lw=1.2,
                        label="one device" + lab.removeprefix("single"))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{_setting_title(key)}\nN = {n} devices", fontsize=9)
            if r == len(settings) - 1:
                ax.set_xlabel("bandwidth (Mbps)")
            if c == 0:
                ax.set_ylabel("latency per forward pass (s)")
    handles, names = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in names:
                handles.append(h)
                names.append(lab)
    fig.legend(handles, names, loc="upper center", ncol=min(6, len(names)), fontsize=8,
               bbox_to_anchor=(0.5, 1.0 + 0.12 / len(settings)), frameon=False)
    fig.suptitle("Latency vs bandwidth", y=1.0 + 0.2 / len(settings), fontsize=11)
    return _save(fig, path)


def _latency_bars(df: pd.DataFrame, path: str | Path) -> Path:
    settings = list(dict.fromkeys(map(tuple, df[SETTING].itertuples(index=False))))
    ns = sorted(int(n) for n in df.loc[df["strategy"] != "single", "devices"].unique()) or [1]
    n_labels = df["label"].nunique()
    fig, axes = plt.subplots(len(settings), len(ns), figsize=(5.5 * len(ns), 0.8 + 0.24 * n_labels * len(settings)),
                             squeeze=False)
    bw = df["bandwidth_mbps"].iloc[0]
    for r, key in enumerate(settings):
        sub = df[(df[SETTING].apply(tuple, axis=1)) == key]
        for c, n in enumerate(ns):
            ax = axes[r][c]
            bars = sub[(sub["devices"] == n) | (sub["strategy"] == "single")].sort_values(["order", "label"])
            colors = [STRATEGIES[s].color for s in bars["strategy"]]
            ax.barh(range(len(bars)), bars["latency_s"], color=colors)
            ax.set_yticks(range(len(bars)), [lab.replace("single", "one device") for lab in bars["label"]],
                         fontsize=7)
            ax.invert_yaxis()
            ax.set_xscale("log")
            ax.grid(True, axis="x", which="both", alpha=0.3)
            ax.set_xlabel("latency per forward pass (s)")
            ax.set_title(f"{_setting_title(key)}, {bw:g} Mbps\nN = {n} devices", fontsize=9)
    fig.suptitle("Latency per strategy", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def plot_speedup(df: pd.DataFrame, path: str | Path) -> Path:
    """Heat map devices x bandwidth of the best strategy's speedup over one device, per model."""
    df = _with_labels(df)
    multi = df[df["strategy"] != "single"]
    settings = list(dict.fromkeys(map(tuple, multi[SETTING].itertuples(index=False)))) or [None]
    cols = min(2, len(settings))
    rows = math.ceil(len(settings) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[len(settings):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, settings):
        if key is None:
            ax.text(0.5, 0.5, "no multi-device points", ha="center", va="center")
            ax.axis("off")
            continue
        sub = multi[(multi[SETTING].apply(tuple, axis=1)) == key]
        best = sub.loc[sub.groupby(["devices", "bandwidth_mbps"])["speedup_vs_single"].idxmax()]
        ns = sorted(best["devices"].unique())
        bws = sorted(best["bandwidth_mbps"].unique())
        grid = np.full((len(ns), len(bws)), np.nan)
        names = [[""] * len(bws) for _ in ns]
        for _, b in best.iterrows():
            i, j = ns.index(b["devices"]), bws.index(b["bandwidth_mbps"])
            grid[i, j] = b["speedup_vs_single"]
            names[i][j] = label_of(b)
        vmax = max(2.0, float(np.nanmax(grid)))
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="RdYlGn",
                       norm=matplotlib.colors.TwoSlopeNorm(vmin=min(0.5, float(np.nanmin(grid))), vcenter=1.0,
                                                           vmax=vmax))
        for i in range(len(ns)):
            for j in range(len(bws)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2f}x\n{names[i][j]}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(bws)), [f"{b:g}" for b in bws])
        ax.set_yticks(range(len(ns)), [str(int(n)) for n in ns])
        ax.set_xlabel("bandwidth (Mbps)")
        ax.set_ylabel("devices N")
        ax.set_title(_setting_title(key), fontsize=9)
        fig.colorbar(im, ax=ax, label="best speedup vs one device (x)")
    fig.suptitle("Best strategy's speedup over one device (>1 = faster)", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
