"""Pictures of a placement search (matplotlib, Agg, PNG, written atomically).

* draw_placement(result, path): the chosen placement: its devices left to right in order, what
  each holds (a pipeline stage's layers, or its share of the tokens / KV heads the strategy splits),
  its memory used against its capacity (a bar per device), and the link joining them.
* plot_frontier(result, path): the simulated candidates' objective against price and against energy
  per token, each panel's two-axis Pareto front joined, the latency target as a line, the best starred
  and the user's own order marked.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Rectangle  # noqa: E402

from astrasim.analysis.plots import _save  # noqa: E402  (same PNG settings and atomic write)
from astrasim.errors import UserError  # noqa: E402
from astrasim.scenario.fleet import memory_check
from astrasim.strategies import get


def holdings(point) -> list[str]:
    """What each device of a point holds, in words ('layers 0-13', '62 % of tokens (640)')."""

    s = get(point.strategy)
    if s.single_device:
        return [f"all {point.model.layers} layers"]
    parts = s.parts(point.model, point.devices, point.tokens, point.knobs, point.options())
    total = sum(parts)
    if s.splits == "layers":
        out, start = [], 0
        for p in parts:
            out.append(f"layer {start}" if p == 1 else f"layers {start}-{start + p - 1}")
            start += p
        return out
    return [f"{100 * p / total:.0f} % of {s.splits}\n({p} of {total})" for p in parts]


def draw_placement(result, path: str | Path) -> Path:
    """The best placement of a search (see the module docstring)."""

    best = result.best
    if best is None:
        raise UserError("no feasible placement to draw", field="--draw")
    point = result.points[best["placement"]]
    names = list(point.fleet) if point.fleet else [point.hardware] * point.devices
    held = holdings(point)
    mem = memory_check(point)
    n = len(names)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.6 * n), 4.2))
    w, gap = 2.0, 0.6
    for d, name in enumerate(names):
        x = d * (w + gap)
        ax.add_patch(FancyBboxPatch((x, 1.0), w, 2.0, boxstyle="round,pad=0.05", fc="#eef3fb", ec="#2b4c7e"))
        ax.text(x + w / 2, 2.75, f"device {d}\n{name}", ha="center", va="top", fontsize=9, weight="bold")
        ax.text(x + w / 2, 2.05, held[d] if d < len(held) else "", ha="center", va="center", fontsize=9)
        need, have = mem.need_gb[d], mem.have_gb[d]
        ax.add_patch(Rectangle((x + 0.15, 1.15), w - 0.3, 0.25, fc="white", ec="0.4"))
        if have:
            frac = min(1.0, need / have)
            ax.add_patch(
                Rectangle(
                    (x + 0.15, 1.15),
                    (w - 0.3) * frac,
                    0.25,
                    fc="#d55e00" if need > have - mem.headroom_gb else "#009e73",
                )
            )
            ax.text(x + w / 2, 1.5, f"memory {need:.2f} of {have:g} GB", ha="center", va="bottom", fontsize=8)
    if n > 1:
        y = 0.55
        ax.plot([w / 2, (n - 1) * (w + gap) + w / 2], [y, y], color="0.3", lw=2)
        for d in range(n):
            ax.plot([d * (w + gap) + w / 2] * 2, [y, 1.0], color="0.3", lw=1)
        ax.text(
            (n - 1) * (w + gap) / 2 + w / 2,
            y - 0.12,
            f"link: {best['network_option']}",
            ha="center",
            va="top",
            fontsize=9,
        )
    metric = result.metric
    e = best.get("energy_per_token_j")
    energy = "" if e is None or e != e else f", {e:.3g} J per token"
    ax.set_title(
        f"{result.plan.model}: {best['variant']} — {metric.removesuffix('_s')} {best[metric]:.3g} s{energy}",
        fontsize=10,
    )
    ax.set_xlim(-0.3, n * (w + gap) - gap + 0.3)
    ax.set_ylim(0.0, 3.2)
    ax.axis("off")
    return _save(fig, path)


def _front(rows, x: str, y: str):
    """The rows no other row beats on both x and y (lower is better), by x."""
    key = rows.assign(_x=[float(f"{v:.6g}") for v in rows[x]])  # equal to 6 digits is equal (float noise)
    rows = rows.loc[key.sort_values(["_x", y], kind="stable").index]
    keep, best = [], float("inf")
    for i, v in zip(rows.index, rows[y]):
        if v < best:
            keep.append(i)
            best = v
    return rows.loc[keep]


def plot_frontier(result, path: str | Path) -> Path:
    """The objective against price and energy per token (see the module docstring)."""
    t = result.table
    sim = t[(t["status"] == "simulated") & t["fits"] & t[result.metric].notna()]
    if sim.empty:
        raise UserError("no simulated placement to plot", field="--plot")
    metric = result.metric
    panels = [("price_usd", "price of the devices used + network (USD)")]
    if sim["energy_per_token_j"].notna().any():
        panels.append(("energy_per_token_j", "energy per token (J)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, (y, label) in zip(axes[0], panels):
        rows = sim[sim[y].notna()]
        front = _front(rows[rows["feasible"]], metric, y)
        ax.scatter(rows[metric], rows[y], s=14, color="0.6", alpha=0.6, label="simulated candidates")
        if not front.empty:
            ax.step(front[metric], front[y], where="post", color="#0072b2", lw=1.2)
            ax.plot(
                front[metric],
                front[y],
                "o",
                color="#0072b2",
                ms=5,
                label="Pareto front of the panel's two axes (feasible)",
            )
        given = rows[rows["given_order"] & (rows["devices"] == len(result.plan.owned()))]
        if not given.empty:
            ax.scatter(
                given[metric],
                given[y],
                marker="s",
                s=36,
                facecolor="none",
                edgecolor="#d55e00",
                label="your order (all devices)",
            )
        if result.best is not None and result.best[y] == result.best[y]:
            ax.scatter(
                [result.best[metric]],
                [result.best[y]],
                marker="*",
                s=220,
                color="#e69f00",
                edgecolor="k",
                zorder=5,
                label=f"best: {result.best['placement']}",
            )
        if result.plan.latency_target_s is not None:
            ax.axvline(
                result.plan.latency_target_s,
                color="#cc0000",
                ls="--",
                lw=1.2,
                label=f"target {result.plan.latency_target_s:g} s",
            )
        ax.set_xlabel(f"{metric.removesuffix('_s')} (s, lower is better)")
        ax.set_ylabel(label)
        ax.set_xscale("log")
        if y == "energy_per_token_j":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, -0.12))
    c = result.counts
    fig.suptitle(
        f"{result.plan.name}: {c['simulated']} simulated, {c['pruned']} pruned of {c['candidates']} candidates",
        fontsize=10,
    )
    return _save(fig, path)
