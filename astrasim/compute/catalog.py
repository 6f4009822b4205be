"""The device catalog (profiles/devices.yaml): what is known of hardware that is not at hand."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from astrasim.compute.profiles import profiles_dirs
from astrasim.compute.roofline import Rate
from astrasim.errors import UserError
from astrasim.fileio import read_yaml_file


class CatalogDevice(BaseModel):
    """One entry of profiles/devices.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="catalog id used in scenarios (hardware.device)")
    description: str = Field("", description="human-readable name")
    peak_flops: float = Field(gt=0, description="published peak FP32 FLOP/s")
    mem_bandwidth_gbs: float = Field(gt=0, description="published memory bandwidth, GB/s (10^9 bytes/s)")
    power_w: float = Field(gt=0, description="typical/maximum board power, W")
    price_usd: float = Field(ge=0, description="list price, USD")
    source: str = Field(description="where the figures come from")
    profile: str = Field("cpu", description="id of the measured profile this device is scaled from")
    memory_gb: float = Field(gt=0, description="memory the device has (GB = 10^9 bytes; shared CPU/GPU memory on "
                                               "the Jetsons and the Pi), from its datasheet")
    memory_source: str = Field("", description="where the memory figure comes from")

    def rate(self) -> "Rate":
        """This device's roofline."""
        return Rate(self.peak_flops, self.mem_bandwidth_gbs * 1e9)


def catalog_path() -> Path:
    for d in profiles_dirs():
        if (d / "devices.yaml").is_file():
            return d / "devices.yaml"
    raise UserError("device catalog profiles/devices.yaml not found; run from the repository root or set "
                    "ASTRASIM_PROFILES", field="hardware.device")


@functools.lru_cache(maxsize=8)
def _load_catalog_cached(path: str, mtime: float) -> dict[str, CatalogDevice]:
    try:
        data = read_yaml_file(path, "hardware.device")
        entries = data["devices"]
        devices = [CatalogDevice(**e) for e in entries]
    except (KeyError, TypeError, ValidationError) as exc:
        raise UserError(f"malformed device catalog '{path}': {str(exc).splitlines()[0]}; fix the file",
                        field="hardware.device") from None
    return {d.name: d for d in devices}


def load_catalog(path: str | Path | None = None) -> dict[str, CatalogDevice]:
    """The device catalog, name -> CatalogDevice (default: profiles/devices.yaml)."""
    p = Path(path) if path else catalog_path()
    return _load_catalog_cached(str(p), p.stat().st_mtime)


def catalog_device(name: str, field: str = "hardware.device") -> CatalogDevice:
    catalog = load_catalog()
    if name not in catalog:
        raise UserError(f"unknown catalog device '{name}'; use one of {', '.join(catalog)} "
                        f"(profiles/devices.yaml)", field=field)
    return catalog[name]
