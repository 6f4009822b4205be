"""The placement search over owned devices (astrasim plan with `inventory:`).

1. Enumerate candidates (candidates.py): single on each kind, and every sub-multiset of two or
   more owned devices in every distinct order, on every network, with every strategy variant;
   pp's layer ranges by dynamic programming (stages.py).
2. Drop, without simulating, what cannot run (a strategy's check), what does not fit in memory
   (the strategy's memory formula against each device) and what misses the accuracy floor.
3. Bound each remaining candidate's objective from its op graph (bounds.py: compute, link,
   critical path). A candidate whose bound already misses the latency target is pruned.
   Steps 2-3 run on local worker processes with --workers (they are cheap but many).
4. Exhaustive when at most `search.exhaustive_max` remain: simulate all. Otherwise simulate in
   order of the bound, a batch at a time on the sweep's executors (serial, --workers, --dask),
   and prune every candidate whose bound exceeds the best simulated objective so far: it cannot
   win. The devices in the order the user wrote them are always simulated (the reference).
5. Rank the feasible simulated candidates by the objective, then the tie-breakers (energy_j,
   price of the devices used plus the network); mark the Pareto front over (objective, energy,
   price). If none is feasible, say which constraint binds.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace

import pandas as pd

from astrasim.analysis.accuracy_data import join_accuracy
from astrasim.analysis.pareto import mark_pareto
from astrasim.analysis.planning import load_devices, load_networks, plan_accuracy
from astrasim.compute.hardware import catalog_rate, layer_seconds
from astrasim.errors import UserError
from astrasim.executors import Progress, check_workers, dask_client, local, simulate_points
from astrasim.models import get_model
from astrasim.placement.bounds import NetworkBound, point_bound
from astrasim.placement.candidates import (
    NO_NETWORK,
    Candidate,
    base_point,
    enumerate_candidates,
    to_point,
)
from astrasim.placement.inventory import check_inventory
from astrasim.placement.stages import pp_stages
from astrasim.pointrun import build_network
from astrasim.results import row_key
from astrasim.scenario import point_key
from astrasim.scenario.fleet import memory_check
from astrasim.strategies import get
from astrasim.strategies.registry import knob_columns

STATUS = (
    "simulated",
    "pruned",
    "misses target",
    "does not fit",
    "below accuracy floor",
    "over budget",
    "cannot run",
    "inconsistent",
)


@dataclass
class SearchResult:
    plan: object
    metric: str
    table: pd.DataFrame  # one row per candidate (simulated ones with their result columns)
    counts: dict[str, int]
    seconds: float
    exhaustive: bool
    binding: list[str] = field(default_factory=list)
    points: dict = field(default_factory=dict)  # candidate label -> Point (pictures, what-if)

    @property
    def feasible(self) -> pd.DataFrame:
        t = self.table
        return t[t["feasible"]] if "feasible" in t.columns else t.iloc[0:0]

    @property
    def best(self) -> pd.Series | None:
        f = self.feasible
        return None if f.empty else f.iloc[0]

    @property
    def given(self) -> pd.Series | None:
        """The best simulated candidate on all devices in the order the user wrote them."""
        t = self.table
        g = t[t["given_order"] & (t["status"] == "simulated") & t["fits"].astype(bool)]
        return None if g.empty else g.sort_values(self.metric, kind="stable").iloc[0]


def speed_ranks(plan) -> dict[str, float]:
    """Roofline seconds of one layer per kind (lower is faster)."""

    try:
        spec = get_model(plan.model)
    except Exception:  # noqa: BLE001 - a custom model: the base point resolves it
        return {}
    T = plan.tokens or spec.tokens
    return {k: layer_seconds(spec, T, catalog_rate(k)) for k in plan.available()}


def accuracy_of(plan, accuracy, cands: list[Candidate]) -> dict[tuple, float]:
    """Accuracy of each (strategy, knobs) variant, joined from the accuracy tables."""

    keys = sorted({(c.strategy, c.knobs, c.devices) for c in cands}, key=repr)
    if not keys:
        return {}
    df = pd.DataFrame(
        [
            {
                "model": plan.model,
                "strategy": s,
                **knob_columns(s, k),
                "devices": n,
                "weight_bits": plan.sweep.get("weight_bits", 32),
            }
            for s, k, n in keys
        ]
    )
    joined = join_accuracy(df, accuracy.table, task=accuracy.task and {plan.model: accuracy.task})
    return {key: joined["accuracy"].iloc[i] for i, key in enumerate(keys)}


@dataclass(frozen=True)
class Context:
    """What evaluating a candidate needs besides itself (sent once to each worker process)."""

    objective: str  # the stage DP's: "sum" (one request) or "max" (a stream)
    bound_of: str  # the bound's metric: latency, ttft, tpot, e2e, p99
    target: float | None
    floor: float | None
    higher_is_better: bool
    accuracy: dict  # (strategy, knobs, devices) -> accuracy


def candidates(plan, networks: dict):
    """(base point, [(candidate, point, reference)]): every candidate with its Point; pp on the order
    written in the plan also appears with the tensor_split stages (reference = True: kept as is)."""
    ranks = speed_ranks(plan)
    base = base_point(plan, min(plan.available(), key=lambda k: (ranks.get(k, 0.0), k)))
    given = tuple(plan.owned())
    out = []
    for cand in enumerate_candidates(plan, networks, ranks):
        point = to_point(base, cand, networks)
        if cand.strategy == "pp" and cand.order == given:
            out.append((cand, point, True))
        out.append((cand, point, False))
    return base, out


_NETS: dict = {}  # (network, devices) -> NetworkBound, per process


def evaluate(item, ctx: Context):
    """(candidate, point, status, bound) of one candidate: can it run, pp's stages by the DP, does it
    fit, does it meet the accuracy floor, its analytic bound, can that bound meet the target."""

    cand, point, reference = item
    s = get(cand.strategy)
    bound = float("nan")
    try:
        s.check(point.model, point.devices, point.tokens, point.knobs)
        if cand.strategy == "pp" and not point.knobs.stages and not reference:
            stages = pp_stages(point, ctx.objective)
            if stages is None:  # no contiguous split fits these devices' memory
                return cand, point, "does not fit", bound
            knobs = s.knobs(**{**point.knobs.model_dump(), "stages": stages})
            cand, point = replace(cand, knobs=knobs), replace(point, knobs=knobs)
        if not memory_check(point).fits:
            return cand, point, "does not fit", bound
    except (UserError, ValueError):
        return cand, point, "cannot run", bound
    if ctx.floor is not None:
        a = ctx.accuracy.get((cand.strategy, cand.knobs, cand.devices))
        if a is None or a != a or (a < ctx.floor if ctx.higher_is_better else a > ctx.floor):
            return cand, point, "below accuracy floor", bound
    key = (point.network, point.devices)
    if key not in _NETS:
        _NETS[key] = NetworkBound(build_network(point))
    try:  # building the graph reads the profile: rows missing for this device count -> cannot run
        bound = point_bound(point, _NETS[key]).metric(ctx.bound_of)
    except UserError:
        return cand, point, "cannot run", bound
    if ctx.target is not None and bound > ctx.target:
        return cand, point, "misses target", bound
    return cand, point, "", bound


def _evaluate_many(items, ctx: Context):
    return [(i, evaluate(item, ctx)) for i, item in items]


def evaluate_all(items, ctx: Context, workers: int, advance):
    """evaluate() of every item, in order: serially, or in batches on local worker processes (the
    sweep's executor, astrasim.executors.local)."""
    if workers <= 1 or len(items) < 64:
        out = []
        for item in items:
            out.append(evaluate(item, ctx))
            advance()
        return out
    done = {}
    for i, result in local(enumerate(items), workers, len(items), run=functools.partial(_evaluate_many, ctx=ctx)):
        done[i] = result
        advance()
    return [done[i] for i in range(len(items))]


def run_search(
    plan,
    *,
    workers: int = 1,
    dask_address: str | None = None,
    progress: bool = True,
    exhaustive: bool | None = None,
    networks_path=None,
    devices_path=None,
) -> SearchResult:
    """Search the plan's placements; UserError on bad input (before any simulation)."""

    check_workers(workers)
    devices = load_devices(devices_path)
    networks = load_networks(networks_path)
    check_inventory(plan, devices, networks)
    metric = plan.metric()
    accuracy = plan_accuracy(plan)
    client = dask_client(dask_address) if dask_address else None  # an unreachable scheduler fails here
    t0 = time.perf_counter()
    base, items = candidates(plan, networks)
    acc = accuracy_of(plan, accuracy, [c for c, _, _ in items])
    ctx = Context(
        "max" if plan.rate_per_s else "sum",
        metric.removesuffix("_s").replace("latency_p99", "p99"),
        plan.latency_target_s,
        plan.accuracy.floor,
        accuracy.higher_is_better,
        acc,
    )
    given = tuple(plan.owned())
    records = []
    if plan.budget_usd is not None:  # what must be bought costs more than the budget: never evaluated
        priced = []
        for item in items:
            spend = sum(devices[k].price_usd * n for k, n in plan.bought(item[0].order).items())
            priced.append((item, spend > plan.budget_usd))
        over = [(c, p, "over budget", float("nan")) for (c, p, _), o in priced if o]
        items = [item for item, o in priced if not o]
    else:
        over = []
    with Progress(progress, len(items), "bounding") as bar:
        for cand, point, status, bound in over + evaluate_all(items, ctx, workers, bar.advance):
            records.append(
                {
                    "candidate": cand,
                    "point": point,
                    "status": status,
                    "bound_s": bound,
                    "accuracy": acc.get((cand.strategy, cand.knobs, cand.devices)),
                    "given_order": cand.order == given or (cand.devices == 1 and len(given) == 1),
                }
            )
        live = [r for r in records if not r["status"]]
        do_all = exhaustive if exhaustive is not None else len(live) <= plan.search.exhaustive_max
        live.sort(key=lambda r: (not r["given_order"], r["bound_s"]))
        best = float("inf")
        bar.restart("simulating", total=len(live))
        by_key = {point_key(r["point"]): r for r in live}
        batch = max(1, plan.search.batch * max(1, workers))
        i = 0
        while i < len(live):
            chunk = []
            while i < len(live) and len(chunk) < batch:
                r = live[i]
                i += 1
                if not do_all and not r["given_order"] and r["bound_s"] > best:
                    r["status"] = "pruned"
                    bar.advance()
                    continue
                chunk.append(r)
            if not chunk:
                continue
            for row in simulate_points([r["point"] for r in chunk], workers=workers, client=client):
                r = by_key[point_key_of_row(row)]
                r["row"] = row
                r["status"] = "inconsistent" if _inconsistent(row) else "simulated"
                if r["status"] != "simulated":
                    bar.advance()
                    continue
                value = row.get(metric)
                if value is not None and value == value and bool(row.get("fits", True)):
                    if plan.latency_target_s is None or value <= plan.latency_target_s:
                        best = min(best, float(value))
                bar.advance()
            if client is not None:  # the dask executor closes its client after a batch
                client = dask_client(dask_address) if i < len(live) else None
    if client is not None:
        client.close()
    seconds = time.perf_counter() - t0
    table = _table(records, plan, metric, devices, networks, accuracy)
    counts = {s: int((table["status"] == s).sum()) for s in STATUS}
    counts["candidates"] = len(table)
    result = SearchResult(
        plan, metric, table, counts, seconds, do_all, points={r["candidate"].label(): r["point"] for r in records}
    )
    if result.best is None:
        result.binding = binding(result, accuracy)
    return result


def _inconsistent(row: dict) -> bool:
    """A generation row whose whole request is faster than its prefill (tpot < 0): the decode path
    scaled the prefill differently (issue 25/26: one point path, decode honouring every option);
    never ranked, counted apart."""
    tpot, e2e, ttft = row.get("tpot_s"), row.get("e2e_s"), row.get("ttft_s")
    return (tpot is not None and tpot == tpot and tpot < 0) or (
        e2e is not None and ttft is not None and e2e == e2e and ttft == ttft and e2e < ttft
    )


def point_key_of_row(row: dict) -> tuple[str, ...]:

    return row_key(row)


def _table(records, plan, metric, devices, networks, accuracy) -> pd.DataFrame:

    rows = []
    for r in records:
        c: Candidate = r["candidate"]
        price = sum(devices[d].price_usd for d in c.order)
        net_cost = 0.0 if c.network == NO_NETWORK else networks[c.network].cost(c.devices)
        buy = plan.bought(c.order)
        base = {
            "placement": c.label(),
            "order": " > ".join(c.order),
            "devices": c.devices,
            "strategy": c.strategy,
            "buy": ", ".join(f"{n} x {k}" for k, n in sorted(buy.items())),
            "buy_usd": float(sum(devices[k].price_usd * n for k, n in buy.items())),
            "variant": c.label().split(", ", 1)[1],
            "network_option": c.network,
            "status": r["status"],
            "bound_s": r["bound_s"],
            "accuracy": r["accuracy"],
            "price_usd": price + net_cost,
            "given_order": r["given_order"],
        }
        row = r.get("row") or {}
        base.update({k: v for k, v in row.items() if k not in base and k not in ("devices", "strategy")})
        rows.append(base)
    df = pd.DataFrame(rows)
    for col in (metric, "energy_j", "energy_per_token_j", "avg_power_w", "fits", "latency_s"):
        if col not in df.columns:
            df[col] = float("nan") if col != "fits" else True
        elif col != "fits":
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df["fits"] = df["fits"].fillna(True).astype(bool) & (df["status"] != "does not fit")
    sim = df["status"] == "simulated"
    ok = sim & df["fits"] & df[metric].notna()
    if plan.latency_target_s is not None:
        ok &= df[metric] <= plan.latency_target_s
    df["feasible"] = ok
    df["pareto"] = ""
    if ok.any():
        objectives = {metric: "min", "price_usd": "min"}
        if df.loc[ok, "energy_j"].notna().all():
            objectives["energy_j"] = "min"
        rounded = df[ok].copy()  # equal to 6 significant digits is equal (float noise of equal schedules)
        for col in objectives:
            rounded[col] = [float(f"{v:.6g}") for v in rounded[col]]
        df.loc[ok, "pareto"] = mark_pareto(rounded, objectives)["pareto"]
    ties = {"energy": "energy_j", "price": "price_usd"}
    # equal objectives (to 6 significant digits: float noise of equal schedules) go to the tie-breakers
    df["_rank"] = [float(f"{v:.6g}") if v == v else v for v in df[metric]]
    keys = ["feasible", "_rank"] + [ties[t] for t in plan.tie_breakers] + ["bound_s"]
    df = df.sort_values(keys, ascending=[False] + [True] * (len(keys) - 1), kind="stable", na_position="last")
    return df.drop(columns="_rank").reset_index(drop=True)


def binding(result: SearchResult, accuracy) -> list[str]:
    """Why no placement is feasible: the constraint that binds, with the closest miss."""
    t, plan, metric = result.table, result.plan, result.metric
    out = []
    if not (t["status"] != "does not fit").any() or t[t["status"] != "cannot run"]["status"].eq("does not fit").all():
        out.append("memory binds: no placement of the owned devices holds the model")
    if (
        plan.accuracy.floor is not None
        and t["status"].eq("below accuracy floor").any()
        and not t["status"].isin(["simulated", "pruned", "misses target"]).any()
    ):
        out.append(f"accuracy floor binds: no strategy reaches {plan.accuracy.floor:g}")
    if plan.latency_target_s is not None:
        sim = t[(t["status"] == "simulated") & t["fits"]]
        bounds = t[t["status"] == "misses target"]["bound_s"]
        best = sim[metric].min() if not sim.empty else float("inf")
        best_bound = bounds.min() if not bounds.empty else float("inf")
        fastest = min(best, best_bound)
        if fastest < float("inf"):
            row = sim.loc[sim[metric].idxmin()] if best <= best_bound and not sim.empty else None
            what = (
                f"the fastest placement ({row['placement']}) takes {best:.3g} s"
                if row is not None
                else f"no placement can beat {best_bound:.3g} s (analytic bound)"
            )
            out.append(
                f"latency target binds: {what}, over the {plan.latency_target_s:g} s target by "
                f"{100 * (fastest - plan.latency_target_s) / plan.latency_target_s:.0f} %"
            )
    return out or ["nothing simulated meets every constraint"]


def format_search(result: SearchResult, top: int = 8) -> str:
    """The search's report: counts, the best placement, the user's order, the ranking."""
    plan, metric, t, c = result.plan, result.metric, result.table, result.counts
    inv = ", ".join(f"{n} x {k}" for k, n in plan.inventory.items())
    if plan.buy:
        inv += (
            "; may buy: "
            + ", ".join(f"{n} x {k}" for k, n in plan.buy.items())
            + (f" (budget ${plan.budget_usd:,.0f})" if plan.budget_usd is not None else "")
        )
    work = (
        f"{plan.tokens or 'default'}-token prompt"
        + (f", {plan.output_tokens} generated tokens" if plan.output_tokens else "")
        + (f", {plan.rate_per_s:g} requests/s" if plan.rate_per_s else "")
    )
    lines = [
        f"placement '{plan.name}': {plan.model}, {work}; owned: {inv}; objective {metric}"
        + (f" <= {plan.latency_target_s:g} s" if plan.latency_target_s else ""),
        f"{c['candidates']} candidates: {c['simulated']} simulated, {c['pruned']} pruned by the analytic bound, "
        f"{c['misses target']} miss the target by their bound, {c['does not fit']} do not fit, "
        f"{c['below accuracy floor']} below the accuracy floor, "
        + (f"{c['over budget']} over budget, " if plan.budget_usd is not None else "")
        + f"{c['cannot run']} cannot run"
        + (f", {c['inconsistent']} inconsistent (e2e < ttft) left out" if c["inconsistent"] else "")
        + " "
        f"({'exhaustive' if result.exhaustive else 'pruned search'}, {result.seconds:.1f} s)",
    ]
    best, given = result.best, result.given

    def describe(r) -> str:
        e = r.get("energy_per_token_j")
        energy = "" if e is None or e != e else f", {e:.3g} J/token ({r['energy_j']:.3g} J)"
        extra = "".join(
            f", {k.removesuffix('_s')} {r[k]:.3g} s"
            for k in ("ttft_s", "tpot_s", "e2e_s")
            if k != metric and k in r.index and r[k] == r[k] and r[k] is not None
        )
        buy = f", buy {r['buy']} (${r['buy_usd']:,.0f})" if r.get("buy") else ""
        return f"{r['placement']}: {metric} {r[metric]:.4g} s{extra}{energy}, ${r['price_usd']:,.0f}{buy}"

    if best is not None:
        lines += ["", f"best: {describe(best)}"]
        if given is not None:
            gain = given[metric] / best[metric] if best[metric] > 0 else float("nan")
            lines.append(
                f"your order ({' > '.join(plan.owned())}), best strategy: {describe(given)} "
                f"-> the search is {gain:.2f}x faster"
            )
    else:
        lines += ["", "no placement meets every constraint:"] + [f"- {b}" for b in result.binding]
    shown = t[t["status"] == "simulated"].head(top)
    if not shown.empty:
        cols = ["placement", metric, "bound_s", "energy_per_token_j", "price_usd", "memory_gb", "pareto"]
        lines += [
            "",
            f"simulated, best first (top {len(shown)}):",
            shown[[x for x in cols if x in shown.columns]].to_string(
                index=False,
                na_rep="n/a",
                formatters={
                    metric: lambda v: f"{v:.4g}",
                    "bound_s": lambda v: f"{v:.4g}",
                    "energy_per_token_j": lambda v: f"{v:.3g}",
                    "price_usd": lambda v: f"${v:,.0f}",
                    "memory_gb": lambda v: f"{v:.2f}",
                },
            ),
        ]
    return "\n".join(lines)
