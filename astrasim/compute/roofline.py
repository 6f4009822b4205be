"""Rooflines: the seconds of an op of known FLOPs and bytes on a device (`Rate`), a fleet's
per-device scaling of profiled op times (`Fleet`), and the scaling of a whole measured profile
to another catalog device (`Roofline`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from astrasim.compute.analytic import Cost

if TYPE_CHECKING:  # pragma: no cover
    from astrasim.compute.calibrated import DeviceModel
    from astrasim.compute.formats import WeightFormat

PROFILED_WEIGHT_BITS = 32  # profiles are measured in float32 (op_costs' default dtype)


@dataclass(frozen=True)
class Rate:
    """Roofline of one device: peak FLOP/s and memory bytes/s."""

    peak_flops: float
    bytes_per_s: float

    def seconds(self, flops: float, nbytes: float) -> float:
        return max(flops / self.peak_flops, nbytes / self.bytes_per_s)


@dataclass(frozen=True)
class Fleet:
    """Per-device hardware of a point. Measured path: `measured` is the profiled hardware's datasheet
    roofline (None: not in the catalog, so only FLOP ratios are used), devices[i] device i's (None: the
    measured hardware). Calibrated path: `models[i]` device i's model and `fmt` the weight format.
    `shares`: the partition weights (None: even), `capacity`: what each device's memory can take."""

    measured: Rate | None = None
    devices: tuple[Rate | None, ...] = ()
    shares: tuple[float, ...] | None = None
    capacity: tuple[float | None, ...] = ()  # bytes each device may fill (memory less headroom; None: unknown)
    models: tuple[DeviceModel, ...] = ()
    fmt: WeightFormat | None = None

    def factor(self, device: int, ref: Cost | None, mine: Cost | None, weight_bits: float) -> float:
        """t_device / t(costs) for an op: calibrated, model_device(its own op) / model_0(device 0's op);
        measured, roofline(device hardware, its op at weight_bits) / roofline(measured hardware, the
        profiled op at the profiled precision)."""
        if ref is None or mine is None:
            return 1.0
        if self.models:
            assert self.fmt is not None, "calibrated models come with their weight format"
            base = self.models[0].seconds(ref, self.fmt)
            return self.models[device].seconds(mine, self.fmt) / base if base > 0 else 1.0
        nbytes = mine.bytes - mine.weights * (1 - weight_bits / PROFILED_WEIGHT_BITS)
        if self.measured is None:
            return mine.flops / ref.flops if ref.flops > 0 else 1.0
        target = (self.devices[device] if device < len(self.devices) else None) or self.measured
        base = self.measured.seconds(ref.flops, ref.bytes)
        return target.seconds(mine.flops, nbytes) / base if base > 0 else 1.0


@dataclass(frozen=True)
class Roofline:
    """Scales a measured op time from `measured` hardware to `target` hardware (module docstring);
    each a catalog device's `rate()`."""

    measured: Rate
    target: Rate

    def factor(self, flops: float, nbytes: float) -> float:
        m, t = self.measured, self.target
        if flops <= 0 and nbytes <= 0:
            return m.peak_flops / t.peak_flops
        return t.seconds(flops, nbytes) / m.seconds(flops, nbytes)
