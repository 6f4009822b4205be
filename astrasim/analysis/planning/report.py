"""The plan's text report (`astrasim plan`): the question, the cheapest configuration, the
frontier and the ranking, or why nothing is feasible."""

from __future__ import annotations

import pandas as pd

from astrasim.analysis import capacity
from astrasim.analysis.planning.evaluate import PlanResult


def _fmt_acc(v) -> str:
    return "n/a" if pd.isna(v) else f"{v:g}"


def format_report(result: PlanResult, top: int = 10) -> str:
    plan = result.plan
    df = result.table
    metric = result.metric or "accuracy"
    cmp = ">=" if result.higher_is_better else "<="
    lines = [
        f"plan '{plan.name}': {plan.model}"
        + (f", {plan.tokens} tokens" if plan.tokens else "")
        + f"; latency <= {plan.latency_target_s:g} s"
        + (f"; {metric} {cmp} {plan.accuracy.floor:g}" if plan.accuracy.floor is not None else "")
        + (f"; budget <= ${plan.budget_usd:,.0f}" if plan.budget_usd is not None else ""),
        f"{len(df)} configurations simulated, {int(df['feasible'].sum())} feasible",
    ]
    cols = ["configuration", "cost_usd", "latency_s", "accuracy", "energy_j", "memory_gb", "comm_bits"]
    if plan.rate_per_s is not None:
        cols[3:3] = capacity.STREAM_REPORT_COLUMNS
    show = df[[c for c in cols if c in df.columns]].rename(columns={"accuracy": metric})

    def table(frame: pd.DataFrame) -> str:
        return frame.to_string(
            index=False,
            na_rep="n/a",
            formatters={
                "cost_usd": lambda v: f"${v:,.0f}",
                "latency_s": lambda v: f"{v:.3f}",
                metric: _fmt_acc,
                "energy_j": lambda v: f"{v:.3g}",
                "comm_bits": lambda v: f"{v:.3g}",
                "latency_p99_s": lambda v: f"{v:.3f}",
                "throughput_per_s": lambda v: f"{v:.3g}",
                "utilization": lambda v: f"{v:.2f}",
                "memory_gb": lambda v: f"{v:.2f}",
            },
        )

    if result.cheapest is not None:
        c = result.cheapest
        lines.append("")
        lines.append(
            f"cheapest: {c['configuration']}: ${c['cost_usd']:,.0f} "
            f"(devices ${c['device_cost_usd']:,.0f} + network ${c['network_cost_usd']:,.0f}), "
            f"{c['latency_s']:.3f} s, {metric} {_fmt_acc(c['accuracy'])}, {c['energy_j']:.3g} J per inference"
        )
        lines.append("")
        lines.append("frontier (feasible; no other feasible configuration is cheaper, faster and as accurate):")
        lines.append(table(show.loc[result.frontier.index]))
        lines.append("")
        lines.append(f"feasible configurations by cost (top {min(top, len(result.feasible))}):")
        lines.append(table(show.loc[result.feasible.index[:top]]))
    else:
        lines.append("")
        lines.append("nothing is feasible:")
        lines.extend(f"- {b}" for b in result.binding)
        lines.append("")
        lines.append(f"fastest configurations (top {min(top, len(df))}):")
        lines.append(table(show.loc[df.sort_values("latency_s").index[:top]]))
    lines += memory_failures(df, top)
    lines += capacity.report_lines(result)
    return "\n".join(lines)


def memory_failures(df: pd.DataFrame, top: int) -> list[str]:
    """The fastest configurations left out because they do not fit, each with its reason."""
    if "meets_memory" not in df.columns or df["meets_memory"].all():
        return []
    bad = df[~df["meets_memory"]].sort_values("latency_s", kind="stable")
    lines = ["", f"{len(bad)} configurations do not fit in memory (never recommended; fastest {min(top, len(bad))}):"]
    lines += [
        f"- {r['configuration']}: {r['latency_s']:.3f} s, {r['memory_reason']}" for _, r in bad.head(top).iterrows()
    ]
    return lines
