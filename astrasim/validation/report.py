"""Tables and the plot of a validation campaign: errors per strategy, topology, N and overall,
the verdict against the target, summary.md and predicted_vs_measured.png."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd

from astrasim.fileio import atomic_path

TARGET_MEDIAN, TARGET_MAX = 0.05, 0.15


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Median and max absolute error per strategy, per topology, per N and overall (and the same for
    the diagnostic prediction from in-situ op times, when present)."""
    diag = "error_in_situ" in results.columns

    def row(by: str, key: str, grp: pd.DataFrame) -> dict:
        r = {"group": by, "value": key, "points": len(grp), "median_abs_error": grp["abs_error"].median(),
             "max_abs_error": grp["abs_error"].max(), "mean_error": grp["error"].mean()}
        if diag:
            e = grp["error_in_situ"].abs()
            r.update(median_abs_error_in_situ=e.median(), max_abs_error_in_situ=e.max())
        return r

    rows = [row(by, str(key), grp) for by in ("strategy", "topology", "hosts")
            for key, grp in results.groupby(by, sort=False)]
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
    """Whether the overall errors meet the target, in one line."""
    allrow = summary[summary["group"] == "all"].iloc[0]
    med, mx, pts = allrow["median_abs_error"], allrow["max_abs_error"], int(allrow["points"])
    ok = med <= TARGET_MEDIAN and mx <= TARGET_MAX
    return ok, (f"{pts} points: median |error| {med:.1%} (target <= {TARGET_MEDIAN:.0%}), "
                f"max |error| {mx:.1%} (target <= {TARGET_MAX:.0%}): {'MET' if ok else 'MISSED'}")


def summary_markdown(results: pd.DataFrame, summary: pd.DataFrame, cals: dict,
                     settings, command: str, elapsed_s: float | None, note: str = "") -> str:
    """The campaign's summary.md; `elapsed_s` None (a re-prediction): no wall time; `note`: a line
    after the command."""
    ok, line = verdict(summary)
    lines = [f"# Validation summary", "", f"Command: `{command}`", ""] + ([note, ""] if note else []) + [
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
             + (f"; wall time {elapsed_s:.0f} s." if elapsed_s is not None else "."), "",
             f"Model: {settings.model.name} (layers={settings.model.layers}, hidden={settings.model.hidden}, "
             f"heads={settings.model.heads}, mlp={settings.model.mlp_hidden}, tokens={settings.model.tokens}); "
             f"Per point: {settings.warmup} warm-up pass, then at least {settings.repeats} timed passes (up to "
             f"{settings.max_repeats} within {settings.budget_s:g} s); latency = median over passes of the slowest "
             f"rank's end minus the common start. 1-minute load average during the measurements: "
             f"{results['loadavg_1m'].min():.2f} to {results['loadavg_1m'].max():.2f} on {os.cpu_count()} CPUs.", "",
             f"**{line}**", "",
             "Calibration (point-to-point microbenchmark: 2 hosts exchanging one message each way, gloo):", ""]
    for c in cals.values():
        lines.append(f"- {c.label()}: alpha = {c.alpha_s * 1e3:.2f} ms, efficiency = {c.efficiency:.4f} "
                     f"(max residual {c.max_rel_residual:.1%} over {c.points} transfers)")
    if "op_overhead_s" in results.columns:
        jitter = (f"; speed jitter from the same rounds {results['speed_jitter'].min():.1%} to "
                  f"{results['speed_jitter'].max():.1%} (median of 31 seeded draws)"
                  if "speed_jitter" in results.columns else "")
        lines += ["", f"Compute: each point's own workers time every rank's kernels all at once, without any "
                      f"communication, in rounds that start as a pass starts: one right before each timed pass "
                      f"(a point's costs when it has at least 5 passes), pooled with windows right before and right "
                      f"after its passes otherwise (`astrasim.validation.corun`){jitter}; dispatch cost "
                      f"{results['op_overhead_s'].iloc[0] * 1e6:.1f} us per op (no-op chain walked by the harness); "
                      f"the N hosts are pinned to this machine's CPUs in even groups (processor sharing on one-core "
                      f"hosts)"
                  + (f"; CPU cost per message sent or received {results['message_cpu_s'].min() * 1e6:.0f} to "
                     f"{results['message_cpu_s'].max() * 1e6:.0f} us (per testbed: matmul chains slowed down by "
                     f"messages to a peer, `astrasim.validation.interference`)" if "message_cpu_s" in results.columns
                     else "")
                  + f". Median noise (half the p10-p90 spread of a point's passes): "
                      f"{results['noise'].median():.1%}, max {results['noise'].max():.1%}."
                  + (f" CPU time stolen by the hypervisor during a point's kept passes: max "
                     f"{results['stolen'].max():.1%}" if "stolen" in results.columns else "")
                  + (f" (a pass, co-run round or calibration transfer it visibly took from is left out of "
                     f"the medians while half remain: {int(results['passes_dropped'].sum())} of "
                     f"{int(results['passes_dropped'].sum() + results['repeats'].sum())} passes; a job whose kept "
                     f"samples are still stolen above 2 % is taken again, up to twice)"
                     if "passes_dropped" in results.columns else "")
                  + ("." if "stolen" in results.columns else "")]
    diag = "median_abs_error_in_situ" in summary.columns
    lines += ["", "| group | value | points | median abs error | max abs error | mean error |"
              + (" median / max abs error, in-situ op times |" if diag else ""),
              "|---|---|---|---|---|---|" + ("---|" if diag else "")]
    for r in summary.to_dict("records"):
        lines.append(f"| {r['group']} | {r['value']} | {r['points']} | {r['median_abs_error']:.1%} | "
                     f"{r['max_abs_error']:.1%} | {r['mean_error']:+.1%} |"
                     + (f" {r['median_abs_error_in_situ']:.1%} / {r['max_abs_error_in_situ']:.1%} |" if diag else ""))
    lines += ["", "Per point (noise = half the p10-p90 spread of the passes over their median; compute = kernel "
              "time of the slowest rank per pass, median: measured in the real passes vs the simulator's busiest "
              "device):", "",
              "| topology | N | Mbps | strategy | measured ms | noise | predicted ms | error | compute measured ms | "
              "compute predicted ms | passes | predicted from in-situ op times ms | error |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results.to_dict("records"):
        bw = "-" if pd.isna(r["bandwidth_mbps"]) else f"{r['bandwidth_mbps']:g}"
        lines.append(f"| {r['topology']} | {r['hosts']} | {bw} | {r['strategy']} | {r['measured_s'] * 1e3:.1f} | "
                     f"{r.get('noise', float('nan')):.1%} | "
                     f"{r['predicted_s'] * 1e3:.1f} | {r['error']:+.1%} | {r['measured_compute_s'] * 1e3:.1f} | "
                     f"{r['predicted_compute_s'] * 1e3:.1f} | {r['repeats']} | "
                     f"{r.get('predicted_in_situ_s', float('nan')) * 1e3:.1f} | {r.get('error_in_situ', float('nan')):+.1%} |")
    return "\n".join(lines) + "\n"


def plot(results: pd.DataFrame, path: Path) -> None:
    """Predicted vs measured (log-log), y = x and the +-15 % band; colour = the strategy's registry
    colour (shaded per variant, astrasim.analysis.style), marker = topology."""
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
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    markers = {"switch": "o", "shared": "s", "none": "*"}
    for s in looks:
        for topo, mk in markers.items():
            sub = results[(results["strategy"] == s) & (results["topology"] == topo)]
            if len(sub):
                ax.scatter(sub["measured_s"] * 1e3, sub["predicted_s"] * 1e3, marker=mk, color=looks[s].color,
                           s=60 if topo == "none" else 30, alpha=0.85, label=f"{s} / {topo}")
    identity_axes(ax, results["measured_s"] * 1e3, results["predicted_s"] * 1e3, band=1.15, pad=1.3)
    ax.set_xlabel("measured latency per forward pass (ms)")
    ax.set_ylabel("simulated latency (ms)")
    ax.set_title("astrasim vs real gloo runs over tbf-shaped links")
    plain_axis(ax, "x", number)
    plain_axis(ax, "y", number)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
