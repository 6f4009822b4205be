"""The plan's configurations as sweep scenarios (one per candidate network, one for the
single-device runs, one per mixed fleet), simulated through the sweep's point API."""

from __future__ import annotations

import pandas as pd

from astrasim.analysis import capacity
from astrasim.analysis.planning.catalogs import NO_NETWORK, NetworkOption
from astrasim.analysis.planning.schema import PlanScenario
from astrasim.errors import UserError


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
    common = {
        **extra,
        "models": [plan.model],
        "tokens": [plan.tokens] if plan.tokens else None,
        "hardware": hardware,
        **capacity.sweep_workload(plan),
    }
    entries = [{"name": e.name, **e.knobs} for e in plan.multi_device_entries()]
    singles = [{"name": e.name, **e.knobs} for e in plan.single_device_entries()]
    out: dict[str, object] = {}
    if singles:
        out[NO_NETWORK] = from_dict(
            {
                **common,
                "name": f"{plan.name}--{NO_NETWORK}",
                "devices": [1],
                "strategies": singles,
                "network": {**network_extra, "topology": "ideal"},
            },
            base_dir=plan.base_dir or ".",
            source="plan (single device)",
        )
    for name in plan.networks:
        net = networks[name]
        counts = [n for n in plan.device_counts if 2 <= n <= net.max_devices]
        if not entries or not counts:
            continue
        network = {
            **network_extra,
            "topology": net.kind,
            "bandwidth_mbps": net.bandwidth_mbps,
            "latency_s": net.latency_s,
            "efficiency": net.efficiency,
        }
        out[name] = from_dict(
            {**common, "name": f"{plan.name}--{name}", "devices": counts, "strategies": entries, "network": network},
            base_dir=plan.base_dir or ".",
            source=f"plan (network {name})",
        )
        for i, fleet in enumerate(f for f in plan_fleets(plan) if len(f) <= net.max_devices):
            hw = {**{k: v for k, v in hardware.items() if k != "device"}, "devices": list(fleet)}
            out[f"{name}{FLEET_SEP}{i}"] = from_dict(
                {
                    **common,
                    "hardware": hw,
                    "name": f"{plan.name}--{name}--fleet{i}",
                    "devices": [len(fleet)],
                    "strategies": entries,
                    "network": network,
                },
                base_dir=plan.base_dir or ".",
                source=f"plan (network {name}, fleet {fleet})",
            )
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


def simulate_plan(
    plan: PlanScenario, networks: dict[str, NetworkOption], *, workers: int = 1, progress: bool = True
) -> pd.DataFrame:
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
