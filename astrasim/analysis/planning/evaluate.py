"""Evaluating simulated configurations: cost, energy, accuracy, feasibility, the frontier and the
ranking, and, when nothing is feasible, which constraint binds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import yaml

from astrasim.analysis import capacity
from astrasim.analysis.accuracy_data import check_matches, join_accuracy
from astrasim.analysis.pareto import FRONTIER, mark_pareto
from astrasim.analysis.planning.accuracy import AccuracyView
from astrasim.analysis.planning.catalogs import NO_NETWORK, NetworkOption
from astrasim.analysis.planning.schema import PlanScenario
from astrasim.errors import UserError
from astrasim.results import ENERGY_COLUMNS
from astrasim.scenario.schema import MemoryConfig
from astrasim.strategies import label_of


@dataclass
class PlanResult:
    plan: PlanScenario
    table: pd.DataFrame  # every configuration, ranked (feasible first, by cost)
    metric: str | None
    higher_is_better: bool
    binding: list[str] = field(default_factory=list)
    capacity: list = field(default_factory=list)  # rate plans: capacity.Capacity of the best candidates

    @property
    def feasible(self) -> pd.DataFrame:
        return self.table[self.table["feasible"]]

    @property
    def cheapest(self) -> pd.Series | None:
        f = self.feasible
        return None if f.empty else f.iloc[0]

    @property
    def frontier(self) -> pd.DataFrame:
        f = self.feasible
        return f[f["pareto"] == FRONTIER]


def busy_seconds(results: pd.DataFrame) -> pd.Series:
    """Busy (compute) seconds of one inference summed over devices. Uses ``compute_total_s`` when
    the rows have it, else ``compute_s`` (a per-device list, or a per-device mean x devices)."""
    if "compute_total_s" in results.columns:
        return pd.to_numeric(results["compute_total_s"], errors="coerce")

    def one(v, n):
        if isinstance(v, (list, tuple, np.ndarray)):
            return float(np.sum(v))
        if isinstance(v, str) and v.startswith("["):
            return float(np.sum(yaml.safe_load(v)))
        return float(v) * float(n)

    return pd.Series([one(v, n) for v, n in zip(results["compute_s"], results["devices"])], index=results.index)


def add_cost_energy(df: pd.DataFrame, devices: dict, networks: dict[str, NetworkOption]) -> pd.DataFrame:
    """Add device_cost_usd, network_cost_usd, cost_usd and busy_s to sweep rows whose
    ``hardware`` is a device catalog name and ``network_option`` a network catalog name ("none"
    or a single-device row: no network)."""
    from astrasim.scenario.fleet import fleet_names

    df = df.copy()
    fleets = [
        names if len(names := fleet_names(str(h))) > 1 else names * int(n)
        for h, n in zip(df["hardware"], df["devices"])
    ]
    unknown = sorted({name for f in fleets for name in f} - set(devices))
    if unknown:
        raise UserError(f"hardware {unknown} not in the device catalog {sorted(devices)}", field="hardware")
    # a mixed fleet: the sum of its prices
    df["device_cost_usd"] = [float(sum(devices[d].price_usd for d in f)) for f in fleets]
    df["network_cost_usd"] = [
        0.0 if name == NO_NETWORK or int(n) == 1 else networks[name].cost(int(n))
        for name, n in zip(df["network_option"], df["devices"])
    ]
    df["cost_usd"] = df["device_cost_usd"] + df["network_cost_usd"]
    df["busy_s"] = busy_seconds(df)
    for col in ENERGY_COLUMNS:  # empty where a device has no power figures (or rows of an older file)
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    return df


def _label(row) -> str:
    strat = label_of(row)
    net = "" if row["network_option"] == NO_NETWORK else f" on {row['network_option']}"
    hw = row["hardware"] if "+" in str(row["hardware"]) else f"{int(row['devices'])} x {row['hardware']}"
    bits = f", {int(row['weight_bits'])}-bit weights" if row.get("weight_bits", 32) != 32 else ""
    return f"{hw}{net}, {strat}{bits}"


def evaluate(
    results: pd.DataFrame, plan: PlanScenario, devices: dict, networks: dict[str, NetworkOption], accuracy: AccuracyView
) -> PlanResult:
    """Cost, energy, accuracy, feasibility, frontier and ranking of simulated configurations.

    ``results`` are sweep rows with a ``network_option`` column (a name from the network catalog,
    or "none" for one device) and ``hardware`` = device catalog name."""
    if results.empty:
        raise UserError("no configuration could be simulated for this plan", field="plan")
    if not accuracy.strict_table.empty:
        check_matches(results, accuracy.strict_table)
    df = join_accuracy(results, accuracy.table, task=accuracy.task and {plan.model: accuracy.task})
    if "weight_bits" in df.columns:  # the accuracy tables are for 32-bit weights: other precisions are unknown
        df.loc[df["weight_bits"] != 32, "accuracy"] = np.nan
    df = add_cost_energy(df, devices, networks)
    df["configuration"] = [_label(r) for _, r in df.iterrows()]

    ok_latency = capacity.meets_latency(df, plan)
    floor = plan.accuracy.floor
    if floor is None:
        ok_acc = pd.Series(True, index=df.index)
    elif accuracy.higher_is_better:
        ok_acc = df["accuracy"] >= floor
    else:
        ok_acc = df["accuracy"] <= floor
    ok_acc = ok_acc.fillna(False).astype(bool)
    ok_budget = (df["cost_usd"] <= plan.budget_usd) if plan.budget_usd is not None else pd.Series(True, index=df.index)
    ok_memory = df["fits"].astype(bool) if "fits" in df.columns else pd.Series(True, index=df.index)
    df["meets_latency"], df["meets_accuracy"], df["meets_budget"] = ok_latency, ok_acc, ok_budget
    df["meets_memory"] = ok_memory
    headroom = (plan.sweep.get("memory") or {}).get("headroom_gb", MemoryConfig().headroom_gb)
    df["memory_reason"] = [memory_reason(r, headroom) for _, r in df.iterrows()]
    df["feasible"] = ok_latency & ok_acc & ok_budget & ok_memory

    acc_sense = "max" if accuracy.higher_is_better else "min"
    objectives = {"cost_usd": "min", "latency_s": "min"}
    if floor is not None or df["accuracy"].notna().any():
        objectives["accuracy"] = acc_sense
    feas = df[df["feasible"]]
    df["pareto"] = "infeasible"
    if not feas.empty:
        df.loc[feas.index, "pareto"] = mark_pareto(feas, objectives)["pareto"]
    df = df.sort_values(
        ["feasible", "cost_usd", "latency_s", "energy_j"], ascending=[False, True, True, True], kind="stable"
    ).reset_index(drop=True)
    result = PlanResult(plan, df, accuracy.metric, accuracy.higher_is_better)
    if feas.empty:
        result.binding = binding_constraints(df, plan, accuracy)
    return result


def memory_reason(row, headroom_gb: float) -> str:
    """Why a configuration does not fit ('needs 32.1 GB per device, has 8 GB (...)'), or ''."""
    from astrasim.scenario.fleet import fit_reason

    if "fits" not in row.index or bool(row["fits"]):
        return ""
    where = "per device" if "+" not in str(row["hardware"]) else "on its fullest device (the tightest)"
    return fit_reason(row["memory_gb"], row["memory_limit_gb"], headroom_gb, where)


def binding_constraints(df: pd.DataFrame, plan: PlanScenario, accuracy: AccuracyView) -> list[str]:
    """For each constraint: the best value reachable while the other constraints hold, and the miss."""
    out: list[str] = []
    if "meets_memory" in df.columns:
        if not df["meets_memory"].any():
            small = df.loc[(df["memory_gb"] - df["memory_limit_gb"]).idxmin()]
            out.append(
                f"memory binds: no configuration fits; the closest ({small['configuration']}) {small['memory_reason']}"
            )
        df = df[df["meets_memory"]]
        if df.empty:
            return out
    target = plan.latency_target_s
    floor = plan.accuracy.floor
    metric = accuracy.metric or "accuracy"

    def describe(row) -> str:
        return row["configuration"]

    # latency: fastest configuration meeting accuracy (and budget)
    pool = df[df["meets_accuracy"] & df["meets_budget"]]
    if pool.empty:
        out.append("latency target cannot be judged: no configuration meets the other constraints")
    else:
        best = pool.loc[pool["latency_s"].idxmin()]
        if best["latency_s"] > target:
            miss = best["latency_s"] - target
            out.append(
                f"latency target binds: the fastest configuration meeting the other constraints "
                f"({describe(best)}) takes {best['latency_s']:.3g} s, {miss:.3g} s "
                f"({100 * miss / target:.0f} %) over the {target:g} s target"
            )
    if floor is not None:
        pool = df[df["meets_latency"] & df["meets_budget"] & df["accuracy"].notna()]
        if pool.empty:
            out.append(
                f"accuracy floor cannot be judged: no configuration with a known {metric} meets the other constraints"
            )
        else:
            idx = pool["accuracy"].idxmax() if accuracy.higher_is_better else pool["accuracy"].idxmin()
            best = pool.loc[idx]
            gap = (floor - best["accuracy"]) if accuracy.higher_is_better else (best["accuracy"] - floor)
            if gap > 0:
                out.append(
                    f"accuracy floor binds: the best {metric} among configurations meeting the other "
                    f"constraints is {best['accuracy']:g} ({describe(best)}), {gap:.3g} "
                    f"{'below' if accuracy.higher_is_better else 'above'} the floor {floor:g}"
                )
    if plan.budget_usd is not None:
        pool = df[df["meets_latency"] & df["meets_accuracy"]]
        if not pool.empty:
            best = pool.loc[pool["cost_usd"].idxmin()]
            if best["cost_usd"] > plan.budget_usd:
                miss = best["cost_usd"] - plan.budget_usd
                out.append(
                    f"budget binds: the cheapest configuration meeting the other constraints "
                    f"({describe(best)}) costs ${best['cost_usd']:,.0f}, ${miss:,.0f} over the "
                    f"${plan.budget_usd:,.0f} budget"
                )
    binds = [s for s in out if "cannot be judged" not in s]
    if binds:
        return binds
    # each constraint alone may be satisfiable but not together: say how far the fastest is
    fastest = df.loc[df["latency_s"].idxmin()]
    out.append(
        f"together the constraints exclude every configuration; the fastest overall "
        f"({describe(fastest)}) takes {fastest['latency_s']:.3g} s"
        + ("" if pd.isna(fastest["accuracy"]) else f" at {metric} {fastest['accuracy']:g}")
    )
    return out
