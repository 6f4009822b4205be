"""The device catalog (profiles/devices.yaml): what is known of hardware that is not at hand."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from astrasim.compute.profiles import REPO_ROOT
from astrasim.compute.roofline import Rate
from astrasim.errors import UserError
from astrasim.fileio import read_yaml_file

# every figure a catalog entry must give, each with a source in `sources` (matmul_gflops: one per precision)
FIGURES = (
    "peak_flops",
    "mem_bandwidth_gbs",
    "mem_read_gbs",
    "matmul_gflops",
    "dispatch_us",
    "message_us",
    "memory_gb",
    "idle_power_w",
    "active_power_w",
    "price_usd",
)
# what a source says it is: its first word
SOURCE_KINDS = ("measured", "published", "datasheet", "estimate")


class CatalogDevice(BaseModel):
    """One entry of profiles/devices.yaml: datasheet peaks, sustained figures from microbenchmarks
    (published for that board, or measured with `astrasim calibrate-device`), memory, power, price;
    every figure with its source in `sources` ("<kind>: <citation>", kind one of SOURCE_KINDS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="catalog id used in scenarios (hardware.device)")
    description: str = Field("", description="human-readable name")
    kind: Literal["cpu", "gpu"] = Field(description="where the runtime computes: the CPU cores or the GPU")
    peak_flops: float = Field(gt=0, description="datasheet peak FP32 FLOP/s")
    mem_bandwidth_gbs: float = Field(gt=0, description="datasheet memory bandwidth, GB/s (10^9 bytes/s)")
    mem_read_gbs: float = Field(gt=0, description="sustained memory read bandwidth, GB/s (microbenchmark)")
    matmul_gflops: dict[Literal["fp32", "fp16", "int8", "int4"], Annotated[float, Field(gt=0)]] = Field(
        description="sustained matmul GFLOP/s (int8/int4: GOP/s) per compute precision the device's kernels support"
    )
    dispatch_us: float = Field(ge=0, description="per-kernel dispatch / launch overhead, microseconds")
    message_us: float = Field(ge=0, description="host CPU cost of sending or receiving one message, microseconds")
    memory_gb: float = Field(
        gt=0, description="memory the device has (GB = 10^9 bytes; shared CPU/GPU memory on the Jetsons and the Pi)"
    )
    idle_power_w: float = Field(gt=0, description="board power when idle, W")
    active_power_w: float = Field(gt=0, description="board power under full compute load, W")
    price_usd: float = Field(ge=0, description="list price, USD")
    profile: str | None = Field(
        None,
        description="id of this device's own measured profile (profiles/<id>.csv), "
        "whose rows are used for it; none: the calibrated model",
    )
    sources: dict[str, str] = Field(
        description="figure -> '<kind>: <citation>' (matmul_gflops.<precision> per precision)"
    )

    @model_validator(mode="after")
    def _every_figure_cited(self) -> CatalogDevice:
        keys = [f for f in FIGURES if f != "matmul_gflops"] + [f"matmul_gflops.{p}" for p in self.matmul_gflops]
        if not self.matmul_gflops:
            raise ValueError("matmul_gflops: give at least one precision (fp32, fp16, int8, int4)")
        for key in keys:
            text = self.sources.get(key, "").strip()
            if not text:
                raise ValueError(
                    f"sources.{key}: missing; cite where the figure comes from "
                    f"('published: <url>', 'measured: <command, date>', 'datasheet: ...', 'estimate: ...')"
                )
            if text.split(":", 1)[0].strip() not in SOURCE_KINDS:
                raise ValueError(f"sources.{key}: must start with one of {', '.join(SOURCE_KINDS)} and a colon")
        extra = sorted(set(self.sources) - set(keys))
        if extra:
            raise ValueError(f"sources.{extra[0]}: no such figure in this entry")
        return self

    def source_kind(self, key: str) -> str:
        """measured, published, datasheet or estimate: what the figure `key` rests on."""
        return self.sources[key].split(":", 1)[0].strip()

    def rate(self) -> Rate:
        """This device's datasheet roofline (peak FP32 FLOP/s, datasheet bandwidth)."""
        return Rate(self.peak_flops, self.mem_bandwidth_gbs * 1e9)


_REPO_PROFILES = str(REPO_ROOT / "profiles")


def catalog_path() -> Path:
    """profiles/devices.yaml in the first of profiles_dirs() that has one (os.path: the placement search
    asks this tens of thousands of times)."""
    env = os.environ.get("ASTRASIM_PROFILES")
    for d in ([env] if env else []) + [os.path.join(os.getcwd(), "profiles"), _REPO_PROFILES]:
        f = os.path.join(d, "devices.yaml")
        if os.path.isfile(f):
            return Path(f)
    raise UserError(
        "device catalog profiles/devices.yaml not found; run from the repository root or set ASTRASIM_PROFILES",
        field="hardware.device",
    )


@functools.lru_cache(maxsize=8)
def _load_catalog_cached(path: str, mtime: float) -> dict[str, CatalogDevice]:
    data = read_yaml_file(path, "hardware.device")
    entries = data.get("devices") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UserError(f"malformed device catalog '{path}': no `devices:` list; fix the file", field="hardware.device")
    devices = {}
    for i, e in enumerate(entries):
        name = e.get("name", f"#{i}") if isinstance(e, dict) else f"#{i}"
        try:
            dev = CatalogDevice(**e) if isinstance(e, dict) else CatalogDevice.model_validate(e)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            raise UserError(
                f"{msg if loc in msg else (loc + ': ' + msg) if loc else msg} ({path}); fix the entry",
                field=f"devices[{name}]",
            ) from None
        if dev.name in devices:
            raise UserError(f"device '{dev.name}' is listed twice in '{path}'; keep one", field=f"devices[{dev.name}]")
        devices[dev.name] = dev
    return devices


def load_catalog(path: str | Path | None = None) -> dict[str, CatalogDevice]:
    """The device catalog, name -> CatalogDevice (default: profiles/devices.yaml)."""
    p = str(path) if path else str(catalog_path())
    return _load_catalog_cached(p, os.stat(p).st_mtime)


def catalog_device(name: str, field: str = "hardware.device") -> CatalogDevice:
    catalog = load_catalog()
    if name not in catalog:
        raise UserError(
            f"unknown catalog device '{name}'; use one of {', '.join(catalog)} (profiles/devices.yaml)", field=field
        )
    return catalog[name]
