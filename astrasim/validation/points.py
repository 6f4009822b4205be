"""A validation point as the simulator sees it: its scenario Point (`point_for`), the testbed's
calibrated network and hosts, and the per-op costs it is built from (the alone profile, or that
profile with the point's rows re-timed by its co-run rounds). Shared by the campaign, which
measures the points, and by `reuse.py`, which rebuilds them from a stored campaign."""

from __future__ import annotations

import os

import pandas as pd

from astrasim.validation.calibrate import SIM_KIND, Calibration
from astrasim.validation.protocol import Settings

PROFILE_KEY = "validation-microbenchmark-profile"


def point_for(
    settings: Settings,
    label: str,
    n: int,
    topology: str | None,
    bandwidth_mbps: float,
    cal: Calibration | None,
    host_setup: dict | None = None,
    profile_key: str = PROFILE_KEY,
    costs=None,
):
    """The scenario Point of one validation point (costs: `costs`, the microbenchmark profile
    named `profile_key`; network: the testbed's simulator kind with the calibrated alpha and
    efficiency; `host_setup`: the testbed machine's hosts and cores, see `machine_hosts`)."""
    from astrasim.scenario.grid import NetworkPoint, Point
    from astrasim.strategies import parse_label

    strategy, knobs = parse_label(label)
    net = NetworkPoint("ideal", 1.0) if topology is None else calibrated_network(topology, bandwidth_mbps, cal)
    return Point(
        scenario="validate",
        model=settings.model,
        tokens=settings.model.tokens,
        strategy=strategy.name,
        knobs=knobs,
        devices=1 if strategy.single_device else n,
        hardware="validation host",
        profile_path=profile_key,
        device=None,
        speed=1.0,
        speeds=None,
        network=net,
        costs=costs,
        **(host_setup or {}),
    )


def calibrated_network(topology: str, bandwidth_mbps: float, cal: Calibration):
    """The simulator's network of a testbed: its topology's kind with the calibrated alpha and
    efficiency (a NetworkPoint; `.build(n)` gives the topology)."""
    from astrasim.scenario.grid import NetworkPoint

    return NetworkPoint(SIM_KIND[topology], float(bandwidth_mbps), latency_s=cal.alpha_s, efficiency=cal.efficiency)


def point_key(topology: str | None, n: int, bandwidth_mbps: float, label: str) -> str:
    """The profile key of one point's costs (its own co-run windows)."""
    return f"{PROFILE_KEY}:{topology or 'none'}:{n}:{bandwidth_mbps:g}:{label}"


def alone_costs(alone: pd.DataFrame, source: str = "validation microbenchmark profile"):
    """The alone profile as per-op costs (what every point is built from before its own windows)."""
    from astrasim.compute.profiles import ProfileCosts

    return ProfileCosts(alone, source=source)


def point_costs(alone: pd.DataFrame, label: str, n: int, costs: dict[str, float], key: str):
    """(the alone profile with `label`'s N-device rows re-timed by its co-run windows, as per-op costs
    named `key`; the re-timed rows)."""
    from astrasim.compute.profiles import ProfileCosts
    from astrasim.strategies import parse_label

    strategy, knobs = parse_label(label)
    name, n_dev = strategy.profile_rows(n)  # pp's stages run the single device's ops
    table = alone.copy()
    rows = (table["strategy"] == name) & (table["devices"] == n_dev)
    for k, v in strategy.profile_key(knobs):
        rows &= table[k] == v
    if not rows.any():
        raise RuntimeError(f"no profile rows of {label} at N={n} to re-time: the alone profile lacks {name}, N={n_dev}")
    table.loc[rows, "median_s"] = [
        costs.get(op, s) for op, s in zip(table.loc[rows, "op"], table.loc[rows, "median_s"])
    ]
    return ProfileCosts(table, source=f"validation co-run windows ({key})"), table[rows]


def core_shares(n: int, cores: int) -> list[float]:
    """Each pinned rank's share of its CPU when every rank computes (rank r on CPU r x cores // n)."""
    on = [r * cores // n for r in range(n)]
    return [min(1.0, 1.0 / on.count(c)) for c in on]


def machine_cores() -> int:
    """The CPUs the workers may run on (they are pinned among these: worker.pin)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_hosts(op_overhead_s: float, cores: int | None = None):
    """n -> the Point fields of the testbed: its N hosts are processes pinned to this machine's
    cores (rank r on CPU r x cores // N, worker.pin), so the simulated devices sit in even groups on
    one-core hosts (hosts = min(N, cores), cores_per_host = 1; devices d x hosts // N), and every
    op pays the measured dispatch cost."""
    cores = cores or machine_cores()
    return lambda n: {"hosts": min(n, cores), "cores_per_host": 1, "op_overhead_s": op_overhead_s}
