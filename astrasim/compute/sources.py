"""Where a point's inputs come from: its profile (optionally roofline-scaled to a catalog device)
and its bandwidth trace. `Inputs` is passed explicitly down the one point path
(astrasim.pointrun): by default it reads the files (cached by path and modification time);
objects given to it (a Dask worker receives the client's, so workers need not see the client's
files) are used as they are."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from astrasim.compute.catalog import catalog_device, load_catalog
from astrasim.compute.profiles import ProfileCosts, profile_files, profile_id
from astrasim.compute.roofline import Roofline
from astrasim.errors import UserError


@functools.lru_cache(maxsize=32)
def _costs_cached(path: str, stamp: tuple, measured: str | None, target: str | None) -> ProfileCosts:
    roofline = None
    if target is not None and target != measured:
        catalog = load_catalog()
        if measured not in catalog:
            raise UserError(
                f"profile id '{measured}' has no entry in profiles/devices.yaml, so it cannot be scaled "
                f"to '{target}'; add its peak_flops and mem_bandwidth_gbs there",
                field="hardware.device",
            )
        roofline = Roofline(catalog[measured].rate(), catalog[target].rate())
    return ProfileCosts.from_file(path, roofline=roofline)


def costs_for(profile_path: str | Path, target_device: str | None = None) -> ProfileCosts:
    """Cached ProfileCosts for a profile file, optionally roofline-scaled to a catalog device."""
    p = Path(profile_path)
    if target_device is not None:
        catalog_device(target_device)
    stamp = tuple((str(f), f.stat().st_mtime) for f in profile_files(p))
    return _costs_cached(str(p), stamp, profile_id(p), target_device)


@functools.lru_cache(maxsize=16)
def _trace_cached(path: str, mtime: float) -> list[tuple[float, float]]:
    from astrasim.network.topology import load_bandwidth_trace

    return load_bandwidth_trace(path)


def load_trace(path: str) -> list[tuple[float, float]]:
    """A bandwidth trace file's (time, Mbps) steps, cached by path and modification time."""
    return _trace_cached(path, os.path.getmtime(path))


@dataclass(frozen=True, eq=False)
class Inputs:
    """The costs and traces a point is built from: `costs[(profile path or key, target device)]`
    and `traces[path]` given in memory win; anything else is read from its file."""

    costs: Mapping[tuple[str, str | None], ProfileCosts] = field(default_factory=dict)
    traces: Mapping[str, list] = field(default_factory=dict)

    def costs_for(self, profile_path: str | Path, target_device: str | None = None) -> ProfileCosts:
        hit = self.costs.get((str(profile_path), target_device))
        return hit if hit is not None else costs_for(profile_path, target_device)

    def trace(self, path: str) -> list[tuple[float, float]]:
        hit = self.traces.get(path)
        return hit if hit is not None else load_trace(path)


FILES = Inputs(MappingProxyType({}), MappingProxyType({}))  # every input read from its file
