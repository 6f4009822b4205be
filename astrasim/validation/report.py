"""Tables and the plot of a validation campaign: errors per strategy, topology, N and overall,
the verdict against the target, summary.md and predicted_vs_measured.png."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd

from astrasim.fileio import atomic_path
from astrasim.validation.idle import IDLE_MAX, IDLE_WAIT_S

TARGET_MEDIAN, TARGET_MAX = 0.05, 0.15

# Both predictions of every point (predict.predict), the headline first: the targets apply to it.
# from profiles: kernels timed alone + the testbed's microbenchmarks, nothing from the point's
# passes (what a user gets); in-situ: kernel costs and jitter from the point's own co-run rounds.
PREDICTIONS = {"profiles": "from profiles", "in_situ": "in-situ"}
HEADLINE = "profiles"


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Median, max and mean error of each prediction per strategy, topology, N and overall (and
    of the diagnostic from the op times inside the passes, when present)."""
    diag = "error_in_pass" in results.columns

    def row(by: str, key: str, grp: pd.DataFrame) -> dict:
        r = {
            "group": by,
            "value": key,
            "points": len(grp),
            "protocol": int(grp["protocol"].iloc[0]) if "protocol" in grp.columns else 0,
        }
        for kind in PREDICTIONS:
            r.update(
                {
                    f"median_abs_error_{kind}": grp[f"abs_error_{kind}"].median(),
                    f"max_abs_error_{kind}": grp[f"abs_error_{kind}"].max(),
                    f"mean_error_{kind}": grp[f"error_{kind}"].mean(),
                }
            )
        if diag:
            e = grp["error_in_pass"].abs()
            r.update(median_abs_error_in_pass=e.median(), max_abs_error_in_pass=e.max())
        return r

    rows = [
        row(by, str(key), grp)
        for by in ("strategy", "topology", "hosts")
        for key, grp in results.groupby(by, sort=False)
    ]
    # The simulator gives every device its own processor; with more hosts than CPUs the testbed does
    # not (docs/validation.md), so the points where each host had a core of its own are also shown.
    cpus = os.cpu_count() or 1
    own = results[results["hosts"] <= cpus]
    if 0 < len(own) < len(results):
        rows.append(row("cores", f"a core per host (N <= {cpus})", own))
        rows.append(row("cores", f"hosts share cores (N > {cpus})", results[results["hosts"] > cpus]))
    rows.append(row("all", "all", results))
    return pd.DataFrame(rows)


def verdict(summary: pd.DataFrame) -> tuple[bool, str]:
    """Whether the prediction from profiles meets the target, in one line with both errors."""
    allrow = summary[summary["group"] == "all"].iloc[0]
    pts = int(allrow["points"])
    med, mx = allrow[f"median_abs_error_{HEADLINE}"], allrow[f"max_abs_error_{HEADLINE}"]
    ok = med <= TARGET_MEDIAN and mx <= TARGET_MAX
    return ok, (
        f"{pts} points, {PREDICTIONS[HEADLINE]}: median |error| {med:.1%} (target <= {TARGET_MEDIAN:.0%}), "
        f"max |error| {mx:.1%} (target <= {TARGET_MAX:.0%}): {'MET' if ok else 'MISSED'}; "
        f"in-situ: median {allrow['median_abs_error_in_situ']:.1%}, max {allrow['max_abs_error_in_situ']:.1%}"
    )


def protocol_line(results: pd.DataFrame, settings) -> str:
    """Which harness measured these rows (protocol.py), and what the settings narrowed."""
    from astrasim.validation.protocol import PROTOCOL, PROTOCOL_HASH

    number = int(results["protocol"].iloc[0]) if "protocol" in results.columns and len(results) else 0
    if number == 0:
        text = "Protocol: 0 (measured before the harness was frozen; docs/validation.md, History)."
    else:
        text = f"Protocol: {number}" + (f" (harness {PROTOCOL_HASH})" if number == PROTOCOL else "") + "."
    differ = settings.differs_from_protocol()
    if differ:
        text += f" Settings that differ from the protocol's defaults: {', '.join(differ)}."
    return text


def summary_markdown(
    results: pd.DataFrame,
    summary: pd.DataFrame,
    cals: dict,
    settings,
    command: str,
    elapsed_s: float | None,
    note: str = "",
) -> str:
    """The campaign's summary.md; `elapsed_s` None (a re-prediction): no wall time; `note`: a line
    after the command."""
    ok, line = verdict(summary)
    lines = (
        ["# Validation summary", "", f"Command: `{command}`", ""]
        + ([note, ""] if note else [])
        + [
            protocol_line(results, settings),
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
            + (f"; wall time {elapsed_s:.0f} s." if elapsed_s is not None else "."),
            "",
            f"Model: {settings.model.name} (layers={settings.model.layers}, hidden={settings.model.hidden}, "
            f"heads={settings.model.heads}, mlp={settings.model.mlp_hidden}, tokens={settings.model.tokens}); "
            f"Per point: {settings.warmup} warm-up pass, then at least {settings.repeats} timed passes (up to "
            f"{settings.max_repeats} within {settings.budget_s:g} s); latency = median over passes of the slowest "
            f"rank's end minus the common start. 1-minute load average during the measurements: "
            f"{results['loadavg_1m'].min():.2f} to {results['loadavg_1m'].max():.2f} on {os.cpu_count()} CPUs.",
            "",
            f"**{line}**",
            "",
            "Two predictions of every point, side by side: **from profiles** (kernel costs from the profile "
            "rows measured alone, `profile.csv` rows `topology = alone`; the testbed's network calibration, "
            "dispatch cost and message CPU cost, all microbenchmarks taken before its points; no speed jitter: "
            "nothing measured during or around the point's passes) and **in-situ** (kernel costs and speed "
            "jitter from co-run rounds the point's own workers ran right before its passes: the engine and "
            "network model given the kernels' times as they ran). The targets apply to the prediction from "
            "profiles.",
            "",
            "Calibration (point-to-point microbenchmark: 2 hosts exchanging one message each way, gloo):",
            "",
        ]
    )
    for c in cals.values():
        lines.append(
            f"- {c.label()}: alpha = {c.alpha_s * 1e3:.2f} ms, efficiency = {c.efficiency:.4f} "
            f"(max residual {c.max_rel_residual:.1%} over {c.points} transfers)"
        )
    if "op_overhead_s" in results.columns:
        jitter = (
            f"; in-situ speed jitter from the same rounds {results['speed_jitter'].min():.1%} to "
            f"{results['speed_jitter'].max():.1%} (median of 31 seeded draws)"
            if "speed_jitter" in results.columns
            else ""
        )
        lines += [
            "",
            f"In-situ compute: each point's own workers time every rank's kernels all at once, without any "
            f"communication, in rounds that start as a pass starts: one right before each timed pass "
            f"(a point's costs when it has at least 5 passes), pooled with windows right before and right "
            f"after its passes otherwise (`astrasim.validation.corun`){jitter}. Both predictions: dispatch cost "
            f"{results['op_overhead_s'].iloc[0] * 1e6:.1f} us per op (no-op chain walked by the harness); "
            f"the N hosts are pinned to this machine's CPUs in even groups (processor sharing on one-core "
            f"hosts)"
            + (
                f"; CPU cost per message sent or received {results['message_cpu_s'].min() * 1e6:.0f} to "
                f"{results['message_cpu_s'].max() * 1e6:.0f} us (per testbed, before its points: matmul chains "
                f"slowed down by messages to a peer, `astrasim.validation.interference`)"
                if "message_cpu_s" in results.columns
                else ""
            )
            + f". Median noise (half the p10-p90 spread of a point's passes): "
            f"{results['noise'].median():.1%}, max {results['noise'].max():.1%}."
            + (
                f" CPU time stolen by the hypervisor during a point's kept passes: max {results['stolen'].max():.1%}"
                if "stolen" in results.columns
                else ""
            )
            + (
                f" (a pass, co-run round or calibration transfer it visibly took from is left out of "
                f"the medians while half remain: {int(results['passes_dropped'].sum())} of "
                f"{int(results['passes_dropped'].sum() + results['repeats'].sum())} passes; a job whose kept "
                f"samples are still stolen above 2 % is taken again, up to twice)"
                if "passes_dropped" in results.columns
                else ""
            )
            + ("." if "stolen" in results.columns else "")
            + (
                f" Other processes' share of the CPUs right before a point's job: max "
                f"{results['busy_before'].max():.0%} (every job, the kernel profile of each strategy included, "
                f"waits up to {IDLE_WAIT_S:.0f} s for it to fall to {IDLE_MAX:.0%}; `astrasim.validation.idle`)."
                if "busy_before" in results.columns and results["busy_before"].notna().any()
                else ""
            ),
        ]
    heads = " | ".join(f"{name}: median / max / mean error" for name in PREDICTIONS.values())
    lines += ["", f"| group | value | points | {heads} |", "|---|---|---|" + "---|" * len(PREDICTIONS)]
    for r in summary.to_dict("records"):
        cells = " | ".join(
            f"{r[f'median_abs_error_{k}']:.1%} / {r[f'max_abs_error_{k}']:.1%} / {r[f'mean_error_{k}']:+.1%}"
            for k in PREDICTIONS
        )
        lines.append(f"| {r['group']} | {r['value']} | {r['points']} | {cells} |")
    lines += [
        "",
        "Per point (noise = half the p10-p90 spread of the passes over their median; compute = kernel "
        "time of the slowest rank per pass, median: measured in the real passes vs the simulator's busiest "
        "device):",
        "",
        "| topology | N | Mbps | strategy | measured ms | noise | passes | "
        + " | ".join(f"{name} ms | error" for name in PREDICTIONS.values())
        + " | compute measured ms | "
        + " | ".join(f"compute {name} ms" for name in PREDICTIONS.values())
        + " |",
        "|---|---|---|---|---|---|---|" + "---|---|" * len(PREDICTIONS) + "---|" + "---|" * len(PREDICTIONS),
    ]
    for r in results.to_dict("records"):
        bw = "-" if pd.isna(r["bandwidth_mbps"]) else f"{r['bandwidth_mbps']:g}"
        lines.append(
            f"| {r['topology']} | {r['hosts']} | {bw} | {r['strategy']} | {r['measured_s'] * 1e3:.1f} | "
            f"{r.get('noise', float('nan')):.1%} | {r['repeats']} | "
            + " | ".join(f"{r[f'predicted_{k}_s'] * 1e3:.1f} | {r[f'error_{k}']:+.1%}" for k in PREDICTIONS)
            + f" | {r['measured_compute_s'] * 1e3:.1f} | "
            + " | ".join(f"{r[f'predicted_compute_{k}_s'] * 1e3:.1f}" for k in PREDICTIONS)
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot(results: pd.DataFrame, path: Path) -> None:
    """Predicted vs measured (log-log), one panel per prediction (from profiles, in-situ), y = x and
    the +-15 % band; colour = the strategy's registry colour (shaded per variant,
    astrasim.analysis.style), marker = topology."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astrasim.analysis.style import Looks, identity_axes, number, plain_axis
    from astrasim.strategies import parse_label

    labels = list(dict.fromkeys(results["strategy"]))
    rows = []
    for label in labels:
        strategy, knobs = parse_label(label)
        rows.append({"strategy": strategy.name, **knobs.model_dump()})
    frame = pd.DataFrame(rows)  # strategy + knob columns
    looks = Looks(frame, pd.Series(labels, index=frame.index))
    fig, axes = plt.subplots(1, len(PREDICTIONS), figsize=(5.4 * len(PREDICTIONS) + 1.6, 5.6), squeeze=False)
    markers = {"switch": "o", "shared": "s", "none": "*"}
    measured = results["measured_s"] * 1e3
    every = pd.concat([results[f"predicted_{k}_s"] * 1e3 for k in PREDICTIONS])
    for ax, (kind, name) in zip(axes[0], PREDICTIONS.items()):
        for s in looks:
            for topo, mk in markers.items():
                sub = results[(results["strategy"] == s) & (results["topology"] == topo)]
                if len(sub):
                    ax.scatter(
                        sub["measured_s"] * 1e3,
                        sub[f"predicted_{kind}_s"] * 1e3,
                        marker=mk,
                        color=looks[s].color,
                        s=60 if topo == "none" else 30,
                        alpha=0.85,
                        label=f"{s} / {topo}",
                    )
        identity_axes(ax, measured, every, band=1.15, pad=1.3)  # the same limits in both panels
        e = results[f"abs_error_{kind}"]
        ax.set_title(f"{name}: median |error| {e.median():.1%}, max {e.max():.1%}", fontsize=10)
        ax.set_xlabel("measured latency per forward pass (ms)")
        ax.set_ylabel("simulated latency (ms)")
        plain_axis(ax, "x", number)
        plain_axis(ax, "y", number)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle("astrasim vs real gloo runs over tbf-shaped links")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
