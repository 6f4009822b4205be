"""`astrasim whatif PLAN --add DEVICE[=COUNT] --remove DEVICE[=COUNT] --network NAME`: the best
placement before and after a change of the inventory or of the network, the change of each metric,
and why, in one line, from the simulation's breakdown.

The reason compares the two placements that matter: the best after the change and, when that
best does not use what was added (or the change made things worse), the best placement that does
use it. Their per-device compute, exposed communication and idle time (of the objective's part of
the request: the prefill for latency/ttft, the decode steps for tpot/e2e) and their messages per
token say what binds: "adding 1 x raspberry-pi-5 raises tpot from 0.33 s to 0.36 s: 4 more
messages per token on the link cost more (+0.05 s exposed communication per device) than the
compute they save (-0.02 s)".
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from astrasim.errors import UserError
from astrasim.placement.search import SearchResult

METRICS = ("latency_s", "ttft_s", "tpot_s", "e2e_s", "latency_p99_s", "energy_per_token_j", "energy_j",
           "avg_power_w", "price_usd")


def parse_change(text: str, field: str) -> tuple[str, int]:
    """'raspberry-pi-5=2' -> ('raspberry-pi-5', 2); 'raspberry-pi-5' -> (.., 1)."""
    name, sep, count = text.partition("=")
    if not name:
        raise UserError(f"'{text}' names no device; use DEVICE or DEVICE=COUNT", field=field)
    if not sep:
        return name, 1
    try:
        n = int(count)
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"count '{count}' of {name} must be an integer >= 1", field=field)
    return name, n


def changed_plan(plan, devices: dict, add: list[str] = (), remove: list[str] = (), network: list[str] = ()):
    """The plan after the change; UserError naming the bad argument."""
    inv = dict(plan.inventory)
    for text in add:
        name, n = parse_change(text, "--add")
        if name not in devices:
            raise UserError(f"unknown device '{name}'; profiles/devices.yaml has {sorted(devices)}", field="--add")
        inv[name] = inv.get(name, 0) + n
    for text in remove:
        name, n = parse_change(text, "--remove")
        if name not in inv:
            raise UserError(f"'{name}' is not in the inventory {sorted(inv)}", field="--remove")
        inv[name] -= n
        if inv[name] < 0:
            raise UserError(f"cannot remove {n} x {name}: the inventory has {plan.inventory[name]}", field="--remove")
        if inv[name] == 0:
            del inv[name]
    if not inv:
        raise UserError("the change leaves the inventory empty", field="--remove")
    if not (add or remove or network):
        raise UserError("say what changes: --add DEVICE[=COUNT], --remove DEVICE[=COUNT] or --network NAME",
                        field="whatif")
    update = {"inventory": inv}
    if network:
        update["networks"] = list(network)
    return plan.model_copy(update=update)


def describe_change(add, remove, network) -> str:
    parts = []
    for verb, items in (("adding", add), ("removing", remove)):
        for text in items:
            name, n = parse_change(text, "")
            parts.append(f"{verb} {n} x {name}")
    if network:
        parts.append(f"the network {' / '.join(network)}")
    return " and ".join(parts)


@dataclass
class Breakdown:
    """Per-device means (s) of the objective's part of a request, and its messages."""

    compute: float
    exposed: float
    idle: float
    messages: int
    per: int  # tokens the part covers (1: the prefill)


def breakdown(point, metric: str) -> Breakdown:
    """The engine's breakdown of the objective's part of a request: the prefill run, or (tpot, e2e)
    the decode steps (the generation run minus the prefill run)."""
    from astrasim.engine import simulate
    from astrasim.pointrun import build_generation_graph, build_network, run_point

    pre = run_point(point)[0]

    def mean(xs):
        return sum(xs) / len(xs)

    if metric in ("tpot_s", "e2e_s") and point.output_tokens > 1:
        gen = simulate(build_generation_graph(point), build_network(point), speeds=point.device_speeds())
        steps = point.output_tokens - 1
        return Breakdown((mean(gen.compute_s) - mean(pre.compute_s)) / steps,
                         (mean(gen.exposed_comm_s) - mean(pre.exposed_comm_s)) / steps,
                         (mean(gen.idle_s) - mean(pre.idle_s)) / steps,
                         gen.n_messages - pre.n_messages, steps)
    return Breakdown(mean(pre.compute_s), mean(pre.exposed_comm_s), mean(pre.idle_s), pre.n_messages, 1)


def _uses(row, name: str, at_least: int) -> bool:
    return str(row["order"]).split(" > ").count(name) >= at_least


def reason(before: SearchResult, after: SearchResult, change: str, added: list[tuple[str, int]]) -> str:
    """One line: what changed and what binds (see the module docstring)."""
    metric = after.metric
    b, a = before.best, after.best
    if b is None or a is None:
        return f"{change}: {'no placement was feasible before' if b is None else 'no placement is feasible after'}"
    m = metric.removesuffix("_s").replace("latency_p99", "p99")
    verb = "lowers" if a[metric] < b[metric] * (1 - 1e-9) else ("raises" if a[metric] > b[metric] * (1 + 1e-9)
                                                               else "leaves")
    head = (f"{change} {verb} {m} from {b[metric]:.3g} s to {a[metric]:.3g} s" if verb != "leaves"
            else f"{change} leaves {m} at {a[metric]:.3g} s")
    compare = a
    note = ""
    if added:
        name, n = added[0]
        have = sum(1 for x in before.plan.owned() if x == name) + n
        t = after.table
        using = t[(t["status"] == "simulated") & t["fits"] & t["order"].map(lambda o: str(o).split(" > ").count(name) >= have)]
        if not _uses(a, name, have):
            if using.empty:
                return f"{head}: no placement using every {name} could be simulated (pruned or does not fit)"
            compare = using.sort_values(metric, kind="stable").iloc[0]
            note = (f"; the best placement leaves it unused, the best that uses it ({compare['placement']}) "
                    f"takes {compare[metric]:.3g} s")
    bp, cp = before.points[b["placement"]], after.points[compare["placement"]]
    x, y = breakdown(bp, metric), breakdown(cp, metric)
    d_comp, d_comm, d_idle = y.compute - x.compute, y.exposed - x.exposed, y.idle - x.idle
    msgs = (y.messages / y.per) - (x.messages / x.per)
    unit = "per token" if y.per > 1 else "per request"
    if d_comm > 0 and d_comm + d_idle > -d_comp:
        why = (f"{msgs:+.0f} messages {unit} cost more on the link (exposed communication {d_comm:+.3g} s per "
               f"device) than the compute they save ({d_comp:+.3g} s)")
    elif d_comp < 0 and -d_comp >= abs(d_comm):
        why = (f"compute per device falls by {-d_comp:.3g} s, more than exposed communication changes "
               f"({d_comm:+.3g} s, {msgs:+.0f} messages {unit})")
    elif d_idle > 0 and d_idle >= abs(d_comm):
        why = (f"devices wait {d_idle:+.3g} s more each (idle: the slowest one binds) while compute "
               f"changes by {d_comp:+.3g} s")
    else:
        why = (f"compute {d_comp:+.3g} s, exposed communication {d_comm:+.3g} s, idle {d_idle:+.3g} s per device "
               f"({msgs:+.0f} messages {unit})")
    return f"{head}{note}: {why}"


def metric_changes(before: SearchResult, after: SearchResult) -> pd.DataFrame:
    """Each metric of the best placement before and after, and the change."""
    b, a = before.best, after.best
    rows = []
    for m in METRICS:
        vb = None if b is None else b.get(m)
        va = None if a is None else a.get(m)
        if (vb is None or vb != vb) and (va is None or va != va):
            continue
        change = (va - vb) if vb is not None and va is not None and vb == vb and va == va else float("nan")
        pct = 100 * change / vb if vb and change == change else float("nan")
        rows.append({"metric": m, "before": vb, "after": va, "change": change, "change_%": pct})
    return pd.DataFrame(rows)


def format_whatif(before: SearchResult, after: SearchResult, line: str) -> str:
    b, a = before.best, after.best
    out = ["before: " + (b["placement"] if b is not None else "nothing feasible"),
           "after:  " + (a["placement"] if a is not None else "nothing feasible"), "",
           metric_changes(before, after).to_string(index=False, na_rep="n/a", float_format=lambda v: f"{v:.4g}"),
           "", line, "",
           f"searches: before {before.counts['simulated']} simulated / {before.counts['pruned']} pruned "
           f"({before.seconds:.1f} s), after {after.counts['simulated']} simulated / {after.counts['pruned']} pruned "
           f"({after.seconds:.1f} s)"]
    return "\n".join(out)
