"""Capacity planning: the cheapest hardware + network + strategy that meets a latency target and an
accuracy floor (``astrasim plan SCENARIO``).

A plan scenario (YAML, see scenarios/plan.yaml and docs/analysis.md) names one model and sequence
length, a latency target, an optional accuracy floor, candidate devices (names from the device
catalog profiles/devices.yaml), device counts, candidate networks (names from
profiles/networks.yaml), strategies and ASTRA group counts. Every combination is a
*configuration*: ``devices x hardware`` on ``network`` running ``strategy`` (``single`` always
runs on one device and needs no network).

Per configuration (columns of ``PlanResult.table``):

* ``latency_s``, ``compute_s``, ``comm_bits`` ... from the simulator (astrasim.sweep);
* ``cost_usd`` = devices x device price + network price + devices x per-device network price
  (cables); ``single`` pays no network;
* ``energy_j``, ``energy_per_token_j``, ``avg_power_w`` from the result rows (astrasim.placement.energy:
  active power while busy, idle power otherwise, Wi-Fi radio airtime; empty where the catalog lacks
  a device's power figures);
* ``accuracy`` joined from the accuracy tables (astrasim.analysis.accuracy_data join rule);
* ``feasible``: latency <= target, accuracy at least as good as the floor (a missing accuracy
  cannot certify a floor, so it is infeasible when a floor is set), cost <= budget if set;
* ``pareto``: frontier/dominated/missing over (cost min, latency min, accuracy best).

Ranking: feasible configurations by cost, then latency, then energy. When none is feasible,
``binding`` explains, for each constraint, the best value reachable while the other
constraints hold and by how much it misses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from astrasim.analysis import capacity
from astrasim.analysis.capacity import StreamPlan
from astrasim.analysis.accuracy_data import check_matches, join_accuracy, load_accuracy, select_task
from astrasim.analysis.pareto import FRONTIER, mark_pareto
from astrasim.errors import UserError
from astrasim.fileio import read_yaml_file
from astrasim.results import ENERGY_COLUMNS
from astrasim.scenario.schema import MemoryConfig, StrategyEntry
from astrasim.strategies import STRATEGIES, get, label_of
NO_NETWORK = "none"


# ---------------------------------------------------------------------------------------------
# Catalogs


class NetworkOption(BaseModel):
    """One entry of profiles/networks.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    kind: Literal["wifi", "wifi-adhoc", "switch", "mesh", "ideal"]
    bandwidth_mbps: float = Field(gt=0)
    latency_s: float | None = Field(None, ge=0)
    efficiency: float | None = Field(None, gt=0, le=1)
    max_devices: int = Field(64, ge=1)
    price_usd: float = Field(ge=0)
    price_per_device_usd: float = Field(0.0, ge=0)
    source: str
    description: str = ""

    def cost(self, n_devices: int) -> float:
        return self.price_usd + self.price_per_device_usd * n_devices


def _pydantic_message(exc: ValidationError, prefix: str) -> UserError:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return UserError(err["msg"], field=f"{prefix}.{loc}" if loc else prefix)


def _find_profile_file(name: str) -> Path:
    """profiles/<name> looked up where profiles and the device catalog are ($ASTRASIM_PROFILES,
    ./profiles, the source tree's profiles/)."""
    from astrasim.compute.profiles import profiles_dirs

    for d in profiles_dirs():
        if (d / name).is_file():
            return d / name
    raise UserError(f"profiles/{name} not found; run from the repository root or set ASTRASIM_PROFILES", field=name)


def load_networks(path: str | Path | None = None) -> dict[str, NetworkOption]:
    """The network catalog, name -> NetworkOption (default: profiles/networks.yaml)."""
    p = Path(path) if path else _find_profile_file("networks.yaml")
    if not p.is_file():
        raise UserError(f"network catalog '{p}' not found", field="networks")
    try:
        data = read_yaml_file(p, "networks")
        entries = data["networks"]
        nets = [NetworkOption(**e) for e in entries]
    except ValidationError as exc:
        raise _pydantic_message(exc, f"{p}: networks") from None
    except (KeyError, TypeError) as exc:
        raise UserError(f"malformed network catalog '{p}': {str(exc).splitlines()[0]}", field="networks") from None
    names = [n.name for n in nets]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise UserError(f"duplicate network name(s) {sorted(dup)} in '{p}'", field="networks")
    return {n.name: n for n in nets}


def load_devices(path: str | Path | None = None) -> dict:
    """The device catalog (owned by the strategies layer): name -> CatalogDevice."""
    from astrasim.compute.catalog import load_catalog

    return load_catalog(path)


# ---------------------------------------------------------------------------------------------
# The plan scenario


class AccuracyConstraint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    floor: float | None = Field(None, description="worst acceptable value: a minimum for higher-is-better "
                                                  "metrics (top-1 %), a maximum for lower-is-better (perplexity)")
    task: str | None = Field(None, description="task in the accuracy tables; default: the model's first task")
    files: list[str] = Field(default_factory=list, description="your accuracy tables (strict: every row must "
                                                               "match a simulated configuration)")


class PlanScenario(BaseModel):
    """A capacity-planning question (scenarios/plan.yaml)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "plan"
    model: str
    tokens: int | None = Field(None, gt=0)
    latency_target_s: float = Field(gt=0)
    accuracy: AccuracyConstraint = Field(default_factory=AccuracyConstraint)
    budget_usd: float | None = Field(None, gt=0)
    devices: list[str] = Field(min_length=1, description="candidate device names from profiles/devices.yaml")
    device_counts: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    networks: list[str] = Field(min_length=1, description="candidate network names from profiles/networks.yaml")
    fleets: list[list[str]] = Field(default_factory=list, description="mixed fleets to try: per-device lists of "
                                                                      "catalog device names (fastest first)")
    mixed: bool = Field(False, description="also try every mix of two or more of `devices` at each device count")
    strategies: list[StrategyEntry] = Field(default_factory=lambda: [StrategyEntry(name=n) for n in STRATEGIES],
                                            min_length=1, description="strategy names or mappings {name, <knobs>}, "
                                                                      "as in a sweep scenario")
    sweep: dict = Field(default_factory=dict, description="other sweep-scenario knobs, passed through")
    # request streams (astrasim.analysis.capacity): plan for a rate instead of one request
    rate_per_s: float | None = Field(None, gt=0, description="requests per second to sustain with p99 <= target")
    stream: StreamPlan = Field(default_factory=StreamPlan, description="arrival process, requests, seed")
    base_dir: Path | None = Field(None, exclude=True)

    @field_validator("device_counts")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError(f"all values must be >= 1, got {v}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _contradictions(self) -> "PlanScenario":
        multi = self.multi_device_entries()
        if multi and not any(n >= 2 for n in self.device_counts):
            raise ValueError(f"strategies {[e.name for e in multi]} need 2 or more devices but device_counts is "
                             f"{self.device_counts}")
        return self

    def multi_device_entries(self) -> list[StrategyEntry]:
        return [e for e in self.strategies if not get(e.name).single_device]

    def single_device_entries(self) -> list[StrategyEntry]:
        return [e for e in self.strategies if get(e.name).single_device]


def load_plan(path: str | Path) -> PlanScenario:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"plan scenario '{p}' not found", field="scenario")
    data = read_yaml_file(p, "scenario")
    if not isinstance(data, dict):
        raise UserError(f"'{p}' must be a mapping of plan fields", field="scenario")
    try:
        plan = PlanScenario(**data)
    except ValidationError as exc:
        raise _pydantic_message(exc, "plan") from None
    return plan.model_copy(update={"base_dir": p.parent})


def check_names(plan: PlanScenario, devices: dict, networks: dict[str, NetworkOption]) -> None:
    """Unknown device or network names: UserError listing the known ones."""
    for name in plan.devices:
        if name not in devices:
            raise UserError(f"unknown device '{name}'; profiles/devices.yaml has {sorted(devices)}",
                            field="plan.devices")
    for i, fleet in enumerate(plan.fleets):
        for name in fleet:
            if name not in devices:
                raise UserError(f"unknown device '{name}'; profiles/devices.yaml has {sorted(devices)}",
                                field=f"plan.fleets[{i}]")
        if len(fleet) < 2:
            raise UserError("a fleet lists two or more devices (one device: put it in plan.devices)",
                            field=f"plan.fleets[{i}]")
    for name in plan.networks:
        if name not in networks:
            raise UserError(f"unknown network '{name}'; profiles/networks.yaml has {sorted(networks)}",
                            field="plan.networks")
    multi = [n for n in plan.device_counts if n >= 2]
    if multi and plan.multi_device_entries():
        usable = [net for net in plan.networks if networks[net].max_devices >= min(multi)]
        if not usable:
            raise UserError(f"no candidate network serves {min(multi)} devices (max_devices: "
                            f"{ {n: networks[n].max_devices for n in plan.networks} })", field="plan.device_counts")
    if plan.budget_usd is not None:
        cheapest = min(devices[d].price_usd for d in plan.devices)
        if cheapest > plan.budget_usd:
            raise UserError(f"budget ${plan.budget_usd:,.0f} is below the cheapest single device "
                            f"(${cheapest:,.0f}); no configuration can fit", field="plan.budget_usd")


# ---------------------------------------------------------------------------------------------
# Accuracy side of the plan


@dataclass
class AccuracyView:
    """The accuracy rows the plan uses, and the direction and best value of its metric."""

    table: pd.DataFrame
    strict_table: pd.DataFrame
    task: str | None
    metric: str | None
    higher_is_better: bool
    best: float | None


def plan_accuracy(plan: PlanScenario, default_files: list[Path] | None = None) -> AccuracyView:
    """Read the shipped accuracy tables plus the plan's own files and check the floor is reachable at all."""
    base = plan.base_dir or Path.cwd()
    user_files = []
    for f in plan.accuracy.files:
        p = Path(f)
        user_files.append(p if p.is_absolute() or p.is_file() else base / p)
    if default_files is None:
        default_files = [_find_profile_file("accuracy.csv")]
        measured = default_files[0].with_name("accuracy_measured.csv")
        if measured.is_file():
            default_files.append(measured)
    strict = load_accuracy(user_files) if user_files else load_accuracy([])
    acc = pd.concat([strict, load_accuracy(default_files)], ignore_index=True) if user_files else load_accuracy(default_files)
    mine = select_task(acc[acc["model"] == plan.model], plan.accuracy.task)
    task = str(mine["task"].iloc[0]) if not mine.empty else plan.accuracy.task
    metric = str(mine["metric"].iloc[0]) if not mine.empty else None
    hib = bool(mine["higher_is_better"].iloc[0]) if not mine.empty else True
    values = mine["value"].dropna()
    best = (values.max() if hib else values.min()) if not values.empty else None
    if plan.accuracy.floor is not None:
        if mine.empty:
            have = sorted(set(acc.loc[acc["model"] == plan.model, "task"]))
            raise UserError(f"no accuracy rows for model '{plan.model}'"
                            + (f" and task '{plan.accuracy.task}' (tasks: {have})" if plan.accuracy.task else "")
                            + "; add rows or drop the floor", field="plan.accuracy")
        if best is None or (plan.accuracy.floor > best if hib else plan.accuracy.floor < best):
            raise UserError(
                f"floor {plan.accuracy.floor:g} is {'above' if hib else 'below'} the best {metric} any strategy "
                f"reaches for {plan.model}/{task} ({best if best is not None else 'none known'}"
                f"{', the original model' if best is not None else ''}); the constraints contradict",
                field="plan.accuracy.floor")
    return AccuracyView(acc, strict, task, metric, hib, best)


# ---------------------------------------------------------------------------------------------
# Simulation (through the sweep's scenario schema and point API)


def sweep_scenarios(plan: PlanScenario, networks: dict[str, NetworkOption]) -> dict[str, object]:
    """The sweep scenarios that cover the plan: one per candidate network (multi-device strategies,
    device counts the network serves) plus one for the single-device runs. Returns
    {network option name or "none": Scenario}."""
    from astrasim.scenario import from_dict

    extra = dict(plan.sweep)
    hardware = {**extra.pop("hardware", {}), "device": list(plan.devices)}
    network_extra = extra.pop("network", {})
    for key in ("name", "models", "tokens", "devices", "strategies"):
        if key in extra:
            raise UserError(f"'{key}' is set by the plan itself; remove it from plan.sweep", field=f"plan.sweep.{key}")
    common = {**extra, "models": [plan.model], "tokens": [plan.tokens] if plan.tokens else None,
              "hardware": hardware, **capacity.sweep_workload(plan)}
    entries = [{"name": e.name, **e.knobs} for e in plan.multi_device_entries()]
    singles = [{"name": e.name, **e.knobs} for e in plan.single_device_entries()]
    out: dict[str, object] = {}
    if singles:
        out[NO_NETWORK] = from_dict({**common, "name": f"{plan.name}--{NO_NETWORK}", "devices": [1],
                                     "strategies": singles, "network": {**network_extra, "topology": "ideal"}},
                                    base_dir=plan.base_dir or ".", source="plan (single device)")
    for name in plan.networks:
        net = networks[name]
        counts = [n for n in plan.device_counts if 2 <= n <= net.max_devices]
        if not entries or not counts:
            continue
        network = {**network_extra, "topology": net.kind, "bandwidth_mbps": net.bandwidth_mbps,
                   "latency_s": net.latency_s, "efficiency": net.efficiency}
        out[name] = from_dict({**common, "name": f"{plan.name}--{name}", "devices": counts, "strategies": entries,
                               "network": network}, base_dir=plan.base_dir or ".", source=f"plan (network {name})")
        for i, fleet in enumerate(f for f in plan_fleets(plan) if len(f) <= net.max_devices):
            hw = {**{k: v for k, v in hardware.items() if k != "device"}, "devices": list(fleet)}
            out[f"{name}{FLEET_SEP}{i}"] = from_dict(
                {**common, "hardware": hw, "name": f"{plan.name}--{name}--fleet{i}", "devices": [len(fleet)],
                 "strategies": entries, "network": network},
                base_dir=plan.base_dir or ".", source=f"plan (network {name}, fleet {fleet})")
    return out


FLEET_SEP = "#fleet"  # network option key of a mixed fleet's scenario ("wifi-20mbps#fleet0")


def plan_fleets(plan: PlanScenario) -> list[tuple[str, ...]]:
    """The mixed fleets of a plan: its `fleets`, plus (mixed: true) every multiset of two or more
    distinct candidate devices at each device count, in catalog order of `devices`."""
    from itertools import combinations_with_replacement

    out = [tuple(f) for f in plan.fleets]
    if plan.mixed:
        for n in plan.device_counts:
            for combo in combinations_with_replacement(plan.devices, n):
                if len(set(combo)) > 1 and combo not in out:
                    out.append(combo)
    return out


def simulate_plan(plan: PlanScenario, networks: dict[str, NetworkOption], *, workers: int = 1,
                  progress: bool = True) -> pd.DataFrame:
    """Simulate every configuration of the plan (astrasim.sweep.simulate_point per grid point);
    returns the sweep rows plus ``network_option``."""
    from astrasim.executors import Progress, simulate_points
    from astrasim.results import row_key
    from astrasim.scenario import point_key
    from astrasim.sweep import build_point_graph

    scenarios = sweep_scenarios(plan, networks)
    points, option = [], []
    for name, sc in scenarios.items():
        for p in sc.points():
            points.append(p)
            option.append(name)
    for p in points:  # missing profile keys etc. fail here, before any simulation
        build_point_graph(p)
    by_key = {}
    with Progress(progress, len(points), "simulating", transient=True) as bar:
        for row in simulate_points(points, workers=workers):  # any order: grid order below
            by_key[row_key(row)] = row
            bar.advance()
    rows = [by_key[point_key(p)] for p in points]
    df = pd.DataFrame(rows)
    df["network_option"] = [o.split(FLEET_SEP)[0] for o in option]
    return df


def run_plan(plan: PlanScenario, *, workers: int = 1, progress: bool = True,
             networks_path: str | Path | None = None, devices_path: str | Path | None = None) -> "PlanResult":
    """Load the catalogs, check the plan, simulate, evaluate. UserError on bad input."""
    devices = load_devices(devices_path)
    networks = load_networks(networks_path)
    check_names(plan, devices, networks)
    accuracy = plan_accuracy(plan)
    results = simulate_plan(plan, networks, workers=workers, progress=progress)
    result = evaluate(results, plan, devices, networks, accuracy)
    if plan.rate_per_s is not None:
        result.capacity = capacity.capacity_search(result, networks)
    return result


# ---------------------------------------------------------------------------------------------
# Evaluation


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
    fleets = [names if len(names := fleet_names(str(h))) > 1 else names * int(n)
              for h, n in zip(df["hardware"], df["devices"])]
    unknown = sorted({name for f in fleets for name in f} - set(devices))
    if unknown:
        raise UserError(f"hardware {unknown} not in the device catalog {sorted(devices)}", field="hardware")
    # a mixed fleet: the sum of its prices
    df["device_cost_usd"] = [float(sum(devices[d].price_usd for d in f)) for f in fleets]
    df["network_cost_usd"] = [0.0 if name == NO_NETWORK or int(n) == 1 else networks[name].cost(int(n))
                              for name, n in zip(df["network_option"], df["devices"])]
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


def evaluate(results: pd.DataFrame, plan: PlanScenario, devices: dict, networks: dict[str, NetworkOption],
             accuracy: AccuracyView) -> PlanResult:
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
    df = df.sort_values(["feasible", "cost_usd", "latency_s", "energy_j"], ascending=[False, True, True, True],
                        kind="stable").reset_index(drop=True)
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
            out.append(f"memory binds: no configuration fits; the closest ({small['configuration']}) "
                       f"{small['memory_reason']}")
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
            out.append(f"latency target binds: the fastest configuration meeting the other constraints "
                       f"({describe(best)}) takes {best['latency_s']:.3g} s, {miss:.3g} s "
                       f"({100 * miss / target:.0f} %) over the {target:g} s target")
    if floor is not None:
        pool = df[df["meets_latency"] & df["meets_budget"] & df["accuracy"].notna()]
        if pool.empty:
            out.append(f"accuracy floor cannot be judged: no configuration with a known {metric} meets the other "
                       "constraints")
        else:
            idx = pool["accuracy"].idxmax() if accuracy.higher_is_better else pool["accuracy"].idxmin()
            best = pool.loc[idx]
            gap = (floor - best["accuracy"]) if accuracy.higher_is_better else (best["accuracy"] - floor)
            if gap > 0:
                out.append(f"accuracy floor binds: the best {metric} among configurations meeting the other "
                           f"constraints is {best['accuracy']:g} ({describe(best)}), {gap:.3g} "
                           f"{'below' if accuracy.higher_is_better else 'above'} the floor {floor:g}")
    if plan.budget_usd is not None:
        pool = df[df["meets_latency"] & df["meets_accuracy"]]
        if not pool.empty:
            best = pool.loc[pool["cost_usd"].idxmin()]
            if best["cost_usd"] > plan.budget_usd:
                miss = best["cost_usd"] - plan.budget_usd
                out.append(f"budget binds: the cheapest configuration meeting the other constraints "
                           f"({describe(best)}) costs ${best['cost_usd']:,.0f}, ${miss:,.0f} over the "
                           f"${plan.budget_usd:,.0f} budget")
    binds = [s for s in out if "cannot be judged" not in s]
    if binds:
        return binds
    # each constraint alone may be satisfiable but not together: say how far the fastest is
    fastest = df.loc[df["latency_s"].idxmin()]
    out.append(f"together the constraints exclude every configuration; the fastest overall "
               f"({describe(fastest)}) takes {fastest['latency_s']:.3g} s"
               + ("" if pd.isna(fastest["accuracy"]) else f" at {metric} {fastest['accuracy']:g}"))
    return out


# ---------------------------------------------------------------------------------------------
# Report


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
        return frame.to_string(index=False, na_rep="n/a", formatters={
            "cost_usd": lambda v: f"${v:,.0f}", "latency_s": lambda v: f"{v:.3f}",
            metric: _fmt_acc, "energy_j": lambda v: f"{v:.3g}", "comm_bits": lambda v: f"{v:.3g}",
            "latency_p99_s": lambda v: f"{v:.3f}", "throughput_per_s": lambda v: f"{v:.3g}",
            "utilization": lambda v: f"{v:.2f}", "memory_gb": lambda v: f"{v:.2f}"})

    if result.cheapest is not None:
        c = result.cheapest
        lines.append("")
        lines.append(f"cheapest: {c['configuration']}: ${c['cost_usd']:,.0f} "
                     f"(devices ${c['device_cost_usd']:,.0f} + network ${c['network_cost_usd']:,.0f}), "
                     f"{c['latency_s']:.3f} s, {metric} {_fmt_acc(c['accuracy'])}, {c['energy_j']:.3g} J per inference")
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
    lines += [f"- {r['configuration']}: {r['latency_s']:.3f} s, {r['memory_reason']}" for _, r in bad.head(top).iterrows()]
    return lines
