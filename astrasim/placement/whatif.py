"""`astrasim whatif PLAN --add DEVICE[=COUNT] --remove DEVICE[=COUNT] --network NAME`: the best
placement before and after a change of the inventory or of the network, the change of each metric,
and why, in one line, from the simulation's breakdown.

The reason compares the two placements that matter: the best before and the best after the change
or, when that best leaves what was added unused, the best placement that does use it. Their
critical paths (critical.py: compute, communication and waiting on the path, and its messages; of
the objective's part of the request: the prefill for latency / ttft, the decode steps per token for
tpot / e2e) say what binds: "adding 1 x raspberry-pi-5 ... takes 0.171 s: compute on the critical
path grows by 0.0345 s (its work falls to fewer or slower devices) while communication changes by
+0.0007 s (+3 messages per token on the critical path)".
"""

from __future__ import annotations

import pandas as pd

from astrasim.errors import UserError
from astrasim.placement.search import SearchResult

METRICS = (
    "latency_s",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "latency_p99_s",
    "energy_per_token_j",
    "energy_j",
    "avg_power_w",
    "price_usd",
)


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
        raise UserError(
            "say what changes: --add DEVICE[=COUNT], --remove DEVICE[=COUNT] or --network NAME", field="whatif"
        )
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


def breakdown(point, metric: str):
    """The critical path (critical.py) of the objective's part of a request, per token: the prefill
    run, or (tpot, e2e) the decode steps of the generation run."""
    from dataclasses import replace as _replace

    from astrasim.engine import simulate
    from astrasim.placement.critical import CriticalPath, critical_path
    from astrasim.pointrun import build_generation_graph, build_network, run_point

    if metric in ("tpot_s", "e2e_s") and point.output_tokens > 1:
        graph = build_generation_graph(point)
        run = simulate(graph, build_network(point), speeds=point.device_speeds(), record_timeline=True)
        steps = point.output_tokens - 1
        cp = critical_path(graph, run, only="tok")
        return CriticalPath(cp.compute_s / steps, cp.comm_s / steps, cp.wait_s / steps, 0), cp.messages / steps
    run, graph = run_point(_replace(point, speed_jitter=0.0), record_timeline=True)
    cp = critical_path(graph, run)
    return cp, float(cp.messages)


def _uses(row, name: str, at_least: int) -> bool:
    return str(row["order"]).split(" > ").count(name) >= at_least


def reason(before: SearchResult, after: SearchResult, change: str, added: list[tuple[str, int]]) -> str:
    """One line: what changed and what binds (see the module docstring)."""
    metric = after.metric
    b, a = before.best, after.best
    if b is None or a is None:
        return f"{change}: {'no placement was feasible before' if b is None else 'no placement is feasible after'}"
    m = metric.removesuffix("_s").replace("latency_p99", "p99")
    verb = (
        "lowers"
        if a[metric] < b[metric] * (1 - 1e-9)
        else ("raises" if a[metric] > b[metric] * (1 + 1e-9) else "leaves")
    )
    head = (
        f"{change} {verb} {m} from {b[metric]:.3g} s to {a[metric]:.3g} s"
        if verb != "leaves"
        else f"{change} leaves {m} at {a[metric]:.3g} s"
    )
    compare = a
    note = ""
    if added:
        name, n = added[0]
        have = sum(1 for x in before.plan.owned() if x == name) + n
        t = after.table
        using = t[
            (t["status"] == "simulated") & t["fits"] & t["order"].map(lambda o: str(o).split(" > ").count(name) >= have)
        ]
        if not _uses(a, name, have):
            if using.empty:
                return f"{head}: no placement using every {name} could be simulated (pruned or does not fit)"
            compare = using.iloc[0]  # the table's order: the objective, then the tie-breakers
            e_a, e_c = a.get("energy_per_token_j"), compare.get("energy_per_token_j")
            energy = (
                f" at {e_c:.3g} J per token instead of {e_a:.3g}"
                if e_a is not None and e_c is not None and e_a == e_a and e_c == e_c
                else ""
            )
            note = (
                f"; the best placement leaves it unused, the best that uses it ({compare['placement']}) "
                f"takes {compare[metric]:.3g} s{energy}"
            )
    (x, xm), (y, ym) = (
        breakdown(before.points[b["placement"]], metric),
        breakdown(after.points[compare["placement"]], metric),
    )
    d_comp, d_comm, d_wait = y.compute_s - x.compute_s, y.comm_s - x.comm_s, y.wait_s - x.wait_s
    unit = "per token" if metric in ("tpot_s", "e2e_s") and after.plan.output_tokens > 1 else "per request"
    msgs = f"{ym - xm:+.0f} messages {unit} on the critical path"
    path = (
        f"critical path {unit}: compute {x.compute_s:.3g} -> {y.compute_s:.3g} s, communication "
        f"{x.comm_s:.3g} -> {y.comm_s:.3g} s, waiting {x.wait_s:.3g} -> {y.wait_s:.3g} s"
    )
    delta = {"compute": d_comp, "communication": d_comm, "waiting": d_wait}
    if abs(y.total_s - x.total_s) <= 0.01 * max(x.total_s, 1e-12):
        why = (
            f"the critical path barely changes (compute {d_comp:+.3g} s, communication {d_comm:+.3g} s, "
            f"waiting {d_wait:+.3g} s; {msgs})"
        )
    elif y.total_s >= x.total_s:  # slower (or no faster): the term that grew most binds
        main = max(delta, key=delta.get)
        why = {
            "compute": f"compute on the critical path grows by {d_comp:.3g} s (its work falls to fewer or slower "
            f"devices) while communication changes by {d_comm:+.3g} s ({msgs})",
            "communication": f"the extra communication ({msgs}, {d_comm:+.3g} s) costs more than the compute "
            f"it saves ({d_comp:+.3g} s)",
            "waiting": f"devices wait {d_wait:.3g} s longer for each other (the slowest binds)",
        }[main]
    else:  # faster: the term that fell most
        main = min(delta, key=delta.get)
        why = {
            "compute": f"compute on the critical path falls by {-d_comp:.3g} s, more than communication "
            f"changes ({d_comm:+.3g} s, {msgs})",
            "communication": f"communication on the critical path falls by {-d_comm:.3g} s ({msgs})",
            "waiting": f"devices wait {-d_wait:.3g} s less for each other",
        }[main]
    why += f" [{path}]"
    return f"{head}{note}: {why}"


def metric_changes(before: SearchResult, after: SearchResult) -> pd.DataFrame:
    """Each metric of the best placement before and after, and the change."""
    b, a = before.best, after.best
    rows = []
    for m in METRICS:
        if m == "latency_p99_s" and not after.plan.rate_per_s:
            continue
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
    out = [
        "before: " + (b["placement"] if b is not None else "nothing feasible"),
        "after:  " + (a["placement"] if a is not None else "nothing feasible"),
        "",
        metric_changes(before, after).to_string(index=False, na_rep="n/a", float_format=lambda v: f"{v:.4g}"),
        "",
        line,
        "",
        f"searches: before {before.counts['simulated']} simulated / {before.counts['pruned']} pruned "
        f"({before.seconds:.1f} s), after {after.counts['simulated']} simulated / {after.counts['pruned']} pruned "
        f"({after.seconds:.1f} s)",
    ]
    return "\n".join(out)
