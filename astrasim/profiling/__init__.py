"""Profiling: time the per-device ops of every strategy and write the tidy profile table.
See :mod:`astrasim.profiling.profiler`."""

from astrasim.profiling.profiler import (
    COLUMNS,
    STRATEGIES,
    hardware_description,
    plan_configs,
    profile_ops,
    read_profile,
    write_profile,
)

__all__ = [
    "COLUMNS",
    "STRATEGIES",
    "hardware_description",
    "plan_configs",
    "profile_ops",
    "read_profile",
    "write_profile",
]
