"""Latency against offered load (the hockey stick): one curve per strategy variant, p99 solid and
p50 dashed, the latency target as a line; points judged unstable (astrasim.streams) hollow.
Variant looks come from astrasim.analysis.style (registry colour and marker).

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
from astrasim.analysis.style import Looks, number, plain_axis, seconds, variant_labels  # noqa: E402


def stream_rates(
    scenario,
    rates: list[float],
    *,
    arrival: str = "poisson",
    requests: int = 200,
    seed: int = 0,
    out: str | Path | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Sweep `scenario` (a path or Scenario) with one workload per rate; the sweep's rows."""
    from astrasim.sweep import run_sweep

    workload = [{"arrival": arrival, "rate_per_s": float(r), "requests": requests, "seed": seed} for r in rates]
    override = "workload=" + repr(workload).replace("'", "")
    return run_sweep(scenario, out=out, workers=workers, progress=False, overrides=[override])


def plot_latency_vs_load(
    df: pd.DataFrame, path: str | Path, *, latency_target_s: float | None = None, title: str | None = None
) -> Path:
    """p50 and p99 latency (log) against the offered rate per strategy variant (its look from
    astrasim.analysis.style: registry colour and marker, lighter per variant); one panel per model."""
    df = df[df["arrival"] != "single"].copy()
    if df.empty:
        raise ValueError("no stream rows (arrival single only): sweep with a workload at several rates")
    labels = variant_labels(df)
    df["label"] = labels
    looks = Looks(df, labels)
    models = list(dict.fromkeys(df["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(6.4 * len(models), 4.4), squeeze=False)
    for ax, model in zip(axes[0], models):
        part = df[df["model"] == model]
        for label in looks:
            rows = part[part["label"] == label].sort_values("rate_per_s")
            if rows.empty:
                continue
            look = looks[label]
            stable = rows["stable"].astype(str).str.lower().isin(["true", "1"])
            ax.plot(
                rows["rate_per_s"],
                rows["latency_p99_s"],
                color=look.color,
                lw=look.linewidth,
                zorder=look.zorder,
                label=f"{label} p99",
            )
            ax.plot(
                rows["rate_per_s"],
                rows["latency_p50_s"],
                color=look.color,
                lw=1.0,
                ls="--",
                alpha=0.8,
                zorder=look.zorder,
            )
            for mask, face in ((stable, look.color), (~stable, "white")):
                ax.scatter(
                    rows.loc[mask, "rate_per_s"],
                    rows.loc[mask, "latency_p99_s"],
                    marker=look.marker,
                    facecolors=[face],
                    edgecolors=[look.color],
                    linewidths=1.2,
                    s=34,
                    zorder=look.zorder + 1,
                )
        if latency_target_s is not None:
            ax.axhline(latency_target_s, color="crimson", lw=1, ls=":", label=f"target {number(latency_target_s)} s")
        ax.set_yscale("log")
        plain_axis(ax, "y", seconds)
        ax.set_xlabel("offered load (requests/s)")
        ax.set_ylabel("latency, arrival to completion")
        ax.set_title(model)
        ax.grid(True, which="both", alpha=0.25)
    axes[0][-1].legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        title="solid p99, dashed p50; hollow = unstable",
        title_fontsize=7,
    )
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
