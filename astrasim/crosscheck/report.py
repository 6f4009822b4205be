"""The cross-check's verdict against its targets, markdown summary and predicted-vs-measured plot."""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path

import pandas as pd

from astrasim.fileio import atomic_path

TARGET_MEDIAN, TARGET_P90, SPREAD_LIMIT = 0.10, 0.25, 0.20


def _size(b: int) -> str:
    return f"{b // 1048576} MiB" if b >= 1048576 else f"{b // 1024} KiB"


def _pct(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def verdict(summary: pd.DataFrame) -> tuple[bool, str]:
    r = summary[summary["group"] == "wifi"].iloc[0]
    ok = r["points"] >= 100 and r["median_abs_error"] <= TARGET_MEDIAN and r["p90_abs_error"] <= TARGET_P90
    missing = f", {int(r['not_run'])} with under 2 seeds run" if r["not_run"] else ""
    return ok, (
        f"{int(r['points'])} steady Wi-Fi points ({int(r['erratic_points'])} erratic apart{missing}): median "
        f"|error| {r['median_abs_error']:.1%} (target <= {TARGET_MEDIAN:.0%}), p90 {r['p90_abs_error']:.1%} "
        f"(target <= {TARGET_P90:.0%}): {'MET' if ok else 'MISSED'}"
    )


def summary_markdown(results: pd.DataFrame, summary: pd.DataFrame, grid, command: str, elapsed_s: float) -> str:
    _, line = verdict(summary)
    lines = [
        "# ns-3 cross-check",
        "",
        f"Command: `{command}`",
        "",
        f"ns-3 3.44 (the `ns3` wheel), seeds {', '.join(map(str, grid.seeds))}; {len(results)} points; "
        f"wall time {elapsed_s:.0f} s on {os.cpu_count()} CPUs ({platform.machine()}), "
        f"{grid.workers} ns-3 runs at a time.",
        "",
        f"**{line}**",
        "",
        f"Statistics over the points whose seed-to-seed spread (max / min - 1) is under {SPREAD_LIMIT:.0%}; "
        "p2p points are single transfers (the only kind a calibration may use; none of the model's "
        "constants is fitted to them), every other point is a prediction.",
        "",
        "| group | value | points | erratic (apart) | not run | median abs error | p90 abs error | max "
        "abs error | mean error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.to_dict("records"):
        lines.append(
            f"| {r['group']} | {r['value']} | {r['points']} | {r['erratic_points']} | {r['not_run']} | "
            f"{_pct(r['median_abs_error'])} | {_pct(r['p90_abs_error'])} | {_pct(r['max_abs_error'])} | "
            f"{r['mean_error']:+.1%} |"
        )
    lines += [
        "",
        "Per point (times in ms; spread = max / min - 1 over the seeds; * = erratic, reported apart):",
        "",
        "| network | pattern | N | size | ns-3 median | ns-3 min-max | spread | astrasim | error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.to_dict("records"):
        if not r.get("seeds"):
            lines.append(
                f"| {r['network']} | {r['collective']}/{r['algorithm']} | {r['hosts']} | "
                f"{_size(r['size_bytes'])} | no run completed | | | | |"
            )
            continue
        mark = "" if r["steady"] or r["seeds"] < 2 else " *"
        lines.append(
            f"| {r['network']} | {r['collective']}/{r['algorithm']} | {r['hosts']} | {_size(r['size_bytes'])} | "
            f"{r['measured_s'] * 1e3:.3f} | {r['measured_min_s'] * 1e3:.3f}-{r['measured_max_s'] * 1e3:.3f} | "
            f"{r['spread']:.1%}{mark} | {r['predicted_s'] * 1e3:.3f} | {r['error']:+.1%} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: pd.DataFrame, path: Path) -> None:
    """Predicted vs measured (log-log) with y = x and +-25 %; colour = pattern, marker = network;
    hollow markers are the erratic points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astrasim.analysis.style import identity_axes, number, plain_axis

    res = results[results["measured_s"].notna()]
    fig, ax = plt.subplots(figsize=(7.0, 6.2))
    patterns = list(dict.fromkeys(res["collective"] + "/" + res["algorithm"]))
    networks = list(dict.fromkeys(res["network"]))
    shapes = "osD^v<>"
    cmap = plt.get_cmap("tab10")
    for i, pat in enumerate(patterns):
        for j, net in enumerate(networks):
            sub = res[(res["collective"] + "/" + res["algorithm"] == pat) & (res["network"] == net)]
            for steady, face in ((True, cmap(i % 10)), (False, "none")):
                s = sub[sub["steady"] == steady]
                if len(s):
                    ax.scatter(
                        s["measured_s"] * 1e3,
                        s["predicted_s"] * 1e3,
                        marker=shapes[j % len(shapes)],
                        facecolors=face,
                        edgecolors=cmap(i % 10),
                        s=26,
                        alpha=0.85,
                        label=f"{pat} / {net}" if steady else None,
                    )
    identity_axes(ax, res["measured_s"] * 1e3, res["predicted_s"] * 1e3, band=1.25, pad=1.5)
    plain_axis(ax, "x", number)
    plain_axis(ax, "y", number)
    ax.set_xlabel("ns-3 (packet level), median over seeds (ms)")
    ax.set_ylabel("astrasim (flow level) (ms)")
    ax.set_title("astrasim vs ns-3: collectives over 802.11 and a switch\n(hollow: seed spread >= 20 %)")
    ax.legend(fontsize=5.5, ncol=2, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
