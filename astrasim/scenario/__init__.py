"""Scenario files: the YAML schema (schema.py), reading and checking (loading.py) and the grid
of points (grid.py). docs/scenarios.md lists every field."""

from astrasim.scenario.grid import NetworkPoint, Point, expand, iter_points, point_key
from astrasim.scenario.loading import LoadedScenario, apply_overrides, from_dict, load_scenario, read_yaml
from astrasim.scenario.schema import TOPOLOGIES, Scenario, StrategyEntry, describe

__all__ = [
    "Scenario",
    "LoadedScenario",
    "StrategyEntry",
    "Point",
    "NetworkPoint",
    "TOPOLOGIES",
    "load_scenario",
    "from_dict",
    "apply_overrides",
    "read_yaml",
    "describe",
    "point_key",
    "expand",
    "iter_points",
]
