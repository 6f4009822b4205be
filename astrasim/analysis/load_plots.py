"""Latency against offered load (the hockey stick): one curve per strategy variant, p99 solid and
p50 dashed, the latency target as a line; points judged unstable (astrasim.streams) hollow.

    rows = stream_rates(scenario, [2, 4, 8, 12, 16])   # one sweep row per variant and rate
    plot_latency_vs_load(rows, "results/streams_load.png", latency_target_s=0.25)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from astrasim.analysis.plots import _save  # noqa: E402  (same PNG settings and atomic write)
from astrasim.strategies import get, label_of  # noqa: E402


def stream_rates(scenario, rates: list[float], *, arrival: str = "poisson", requests: int = 200, seed: int = 0,
                 out: str | Path | None = None, workers: int = 1) -> pd.DataFrame:
    """Sweep `scenario` (a path or Scenario) with one workload per rate; the sweep's rows."""
    from astrasim.sweep import run_sweep

    workload = [{"arrival": arrival, "rate_per_s": float(r), "requests": requests, "seed": seed} for r in rates]
    override = "workload=" + repr(workload).replace("'", "")
    return run_sweep(scenario, out=out, workers=workers, progress=False, overrides=[override])


def _shade(color: str, k: int):
    rgb = matplotlib.colors.to_rgb(color)
    f = min(0.55, 0.3 * k)
    return tuple(c + (1 - c) * f for c in rgb)


def plot_latency_vs_load(df: pd.DataFrame, path: str | Path, *, latency_target_s: float | None = None,
                         title: str | None = None) -> Path:
    """p50 and p99 latency (log) against the offered rate per strategy variant (registry colour and
    marker); one panel per model."""
    df = df[df["arrival"] != "single"].copy()
    if df.empty:
        raise ValueError("no stream rows (arrival single only): sweep with a workload at several rates")
    df["label"] = [label_of(r) for r in df.to_dict("records")]
    models = list(dict.fromkeys(df["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(6.4 * len(models), 4.4), squeeze=False)
    for ax, model in zip(axes[0], models):
        part = df[df["model"] == model]
        seen: dict[str, int] = {}
        for label, rows in part.groupby("label", sort=False):
            s = get(str(rows["strategy"].iloc[0]))
            k = seen[s.name] = seen.get(s.name, -1) + 1
            color = _shade(s.color, k)  # variants of one strategy: its colour, lighter each time
            rows = rows.sort_values("rate_per_s")
            stable = rows["stable"].astype(str).str.lower().isin(["true", "1"])
            ax.plot(rows["rate_per_s"], rows["latency_p99_s"], color=color, lw=1.6, label=f"{label} p99")
            ax.plot(rows["rate_per_s"], rows["latency_p50_s"], color=color, lw=1.0, ls="--", alpha=0.8)
            ax.scatter(rows.loc[stable, "rate_per_s"], rows.loc[stable, "latency_p99_s"], color=color,
                       marker=s.marker, s=34, zorder=3)
            ax.scatter(rows.loc[~stable, "rate_per_s"], rows.loc[~stable, "latency_p99_s"], facecolors="none",
                       edgecolors=color, marker=s.marker, s=34, zorder=3)
        if latency_target_s is not None:
            ax.axhline(latency_target_s, color="crimson", lw=1, ls=":", label=f"target {latency_target_s:g} s")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (requests/s)")
        ax.set_ylabel("latency, arrival to completion (s)")
        ax.set_title(model)
        ax.grid(True, which="both", alpha=0.25)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       title="solid p99, dashed p50; hollow = unstable", title_fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
