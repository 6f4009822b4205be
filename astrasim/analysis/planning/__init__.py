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

The package, one module per job: `catalogs` (network options, device catalog), `schema` (the plan
scenario and its checks), `accuracy` (the accuracy view), `grid` (the configurations as sweep
scenarios, simulated), `evaluate` (cost, energy, feasibility, frontier, ranking, binding
constraints) and `report` (the text report); `run_plan` ties them together.
"""

from __future__ import annotations

from pathlib import Path

from astrasim.analysis import capacity
from astrasim.analysis.planning.accuracy import AccuracyView, plan_accuracy
from astrasim.analysis.planning.catalogs import NO_NETWORK, NetworkOption, load_devices, load_networks
from astrasim.analysis.planning.evaluate import (
    PlanResult,
    add_cost_energy,
    binding_constraints,
    busy_seconds,
    evaluate,
    memory_reason,
)
from astrasim.analysis.planning.grid import FLEET_SEP, plan_fleets, simulate_plan, sweep_scenarios
from astrasim.analysis.planning.report import format_report, memory_failures
from astrasim.analysis.planning.schema import AccuracyConstraint, PlanScenario, check_names, load_plan

__all__ = [
    "AccuracyConstraint",
    "AccuracyView",
    "FLEET_SEP",
    "NO_NETWORK",
    "NetworkOption",
    "PlanResult",
    "PlanScenario",
    "add_cost_energy",
    "binding_constraints",
    "busy_seconds",
    "check_names",
    "evaluate",
    "format_report",
    "load_devices",
    "load_networks",
    "load_plan",
    "memory_failures",
    "memory_reason",
    "plan_accuracy",
    "plan_fleets",
    "run_plan",
    "simulate_plan",
    "sweep_scenarios",
]


def run_plan(
    plan: PlanScenario,
    *,
    workers: int = 1,
    progress: bool = True,
    networks_path: str | Path | None = None,
    devices_path: str | Path | None = None,
) -> PlanResult:
    """Load the catalogs, check the plan, simulate, evaluate. UserError on bad input."""
    devices = load_devices(devices_path)
    networks = load_networks(networks_path)
    check_names(plan, devices, networks)
    accuracy = plan_accuracy(plan)
    results = simulate_plan(plan, networks, workers=workers, progress=progress)
    result = evaluate(results, plan, devices, networks, accuracy)
    if plan.rate_per_s is not None:
        result.capacity = capacity.capacity_search(result, sweep_scenarios(plan, networks))
    return result
