"""The calibrated device model: an op's time on a catalog device from its analytic FLOPs and bytes
(astrasim.compute.analytic) against the device's measured ceilings, plus dispatch:

    t = max(flops / sustained_matmul[precision], bytes / sustained_read_bandwidth) + dispatch x kernels

`precision` is the first of the weight format's kernel precisions the device has; `bytes` counts the
weights at the format's true bits (the LM head at the bits the runtime keeps it in) and activations /
KV at its activation precision (astrasim.compute.formats). `kernels` is the op's kernel count
(Cost.kernels, at least one). The `datasheet` model is the same roofline on the datasheet peaks
(FP32 FLOP/s for every precision, datasheet bandwidth) with no dispatch.

`CalibratedCosts` answers the per-op seconds strategies ask of a profile (the Costs protocol), so
prefill, decode and every strategy use the model without a profile row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from astrasim.compute.analytic import Cost
from astrasim.compute.catalog import CatalogDevice
from astrasim.compute.formats import WeightFormat
from astrasim.compute.profiles import ProfileKey
from astrasim.errors import UserError

PROFILED_BYTES = 4  # op_costs count every element at float32 (the profiled dtype)
HEAD_OP = "head"  # the LM head op (its weights at the format's head bits)


@dataclass(frozen=True)
class DeviceModel:
    """One device's ceilings: sustained (calibrated) or datasheet."""

    name: str
    bytes_per_s: float
    matmul: tuple[tuple[str, float], ...]  # (precision, FLOP/s)
    dispatch_s: float
    kinds: tuple[tuple[str, str], ...]  # (figure, source kind) of the figures used
    datasheet: bool = False

    @classmethod
    def of(cls, dev: CatalogDevice, datasheet: bool = False) -> DeviceModel:
        if datasheet:
            precisions = tuple((p, dev.peak_flops) for p in dev.matmul_gflops)
            return cls(dev.name, dev.mem_bandwidth_gbs * 1e9, precisions, 0.0, (), True)
        kinds = tuple((k, dev.source_kind(k)) for k in dev.sources)
        return cls(
            dev.name,
            dev.mem_read_gbs * 1e9,
            tuple((p, g * 1e9) for p, g in dev.matmul_gflops.items()),
            dev.dispatch_us * 1e-6,
            kinds,
        )

    def precision(self, fmt: WeightFormat, field: str = "weight_format") -> str:
        """The matmul precision this device runs `fmt`'s kernels in."""
        have = dict(self.matmul)
        for p in fmt.compute:
            if p in have:
                return p
        raise UserError(
            f"{self.name} cannot run {fmt.name} weights: its kernels need {' or '.join(fmt.compute)} "
            f"matmuls and the catalog gives {', '.join(have)}; pick another format or device",
            field=field,
        )

    def source(self, fmt: WeightFormat) -> str:
        """`calibrated` when the figures an op uses (read bandwidth, the format's matmul figure) are
        published or measured, `datasheet` otherwise."""
        if self.datasheet:
            return "datasheet"
        kinds = dict(self.kinds)
        used = (kinds.get("mem_read_gbs"), kinds.get(f"matmul_gflops.{self.precision(fmt)}"))
        return "calibrated" if all(k in ("published", "measured") for k in used) else "datasheet"

    def seconds(self, cost: Cost, fmt: WeightFormat, head: bool = False) -> float:
        flops = cost.flops
        bits = fmt.head_bits if head else fmt.bits
        nbytes = (
            cost.weights * bits / (8 * PROFILED_BYTES)
            + (cost.bytes - cost.weights) * fmt.activation_bytes / PROFILED_BYTES
        )
        rate = dict(self.matmul)[self.precision(fmt)]
        return max(flops / rate, nbytes / self.bytes_per_s) + self.dispatch_s * max(1.0, cost.kernels)


class CalibratedCosts:
    """Per-op seconds of one point's ops on one device model (the Costs protocol of the strategies):
    an op's analytic cost comes from the named strategy's op_costs / decode_op_costs (with the point's
    knobs for its own strategy), at the profile key's device count and tokens (decode: cache length)."""

    def __init__(self, spec, model: DeviceModel, fmt: WeightFormat, knobs: dict[str, Any] | None = None):
        self.spec, self.model, self.fmt = spec, model, fmt
        self.knobs = knobs or {}  # strategy name -> Knobs of the point
        self.source = f"{model.source(fmt)} model of {model.name}"
        self._cache: dict[tuple, float] = {}

    def _costs(self, strategy: str, devices: int, op: str, tokens: int) -> Cost | None:
        from astrasim.strategies import get

        s = get(strategy)
        knobs = self.knobs.get(strategy) or s.knobs()
        if op == HEAD_OP:
            return s.head_cost(self.spec, devices, knobs)
        if op in s.decode_ops:
            return s.decode_op_costs(self.spec, devices, tokens, knobs).get(op)
        return s.op_costs(self.spec, devices, tokens, knobs).get(op)

    def has(self, model: str, strategy: str, devices: int, op: str, key: ProfileKey = ()) -> bool:
        from astrasim.strategies import get

        s = get(strategy)
        return op in s.ops or op in s.decode_ops or op == HEAD_OP

    def seconds(self, model: str, strategy: str, devices: int, op: str, tokens: int, key: ProfileKey = ()) -> float:
        ck = (strategy, devices, op, tokens)  # the point's own knobs (self.knobs) price every op
        hit = self._cache.get(ck)
        if hit is not None:
            return hit
        cost = self._costs(strategy, devices, op, tokens)
        if cost is None:
            raise UserError(
                f"strategy {strategy} has no analytic cost for op {op}; the calibrated model needs one "
                f"(its op_costs / decode_op_costs)",
                field="hardware.compute",
            )
        t = self.model.seconds(cost, self.fmt, head=op == HEAD_OP)
        self._cache[ck] = t
        return t
