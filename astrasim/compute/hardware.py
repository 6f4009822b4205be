"""The hardware of one point: which catalog device each of its devices is, how the work is split in
proportion to their speeds, how each device's op times are scaled.

* Partition weights (`hardware.partition: proportional`): device i's weight is
  speed_i / (roofline seconds of one whole layer of the model at T tokens on its hardware), so a
  device twice as fast gets twice the tokens (sp, astra) or KV heads and MLP columns (tp). Equal
  weights give the even split exactly; `partition: even` always does.
* Op times: `Fleet` (astrasim.compute.roofline) scales the profiled device-0 time by the roofline
  ratio of the device's own op (its share, its hardware, weight_bits) over the profiled op.
  Points with no fleet, even shares and 32-bit weights keep the uniform path (a profile optionally
  roofline-scaled as a whole, astrasim.compute.sources), so their results do not change.
"""

from __future__ import annotations

import functools

from astrasim.compute.catalog import CatalogDevice, load_catalog
from astrasim.compute.profiles import profile_id
from astrasim.compute.roofline import Fleet, Rate
from astrasim.errors import UserError

GB = 1e9


def catalog_rate(name: str | None) -> Rate | None:
    if name is None:
        return None
    dev = load_catalog().get(name)
    return dev.rate() if dev is not None else None


def layer_seconds(spec, tokens: int, rate: Rate | None) -> float:
    """Roofline seconds of one whole layer (the single-device ops) at T tokens: a device's speed."""
    from astrasim.strategies.registry import single_device_strategy

    single = single_device_strategy()
    costs = single.op_costs(spec, 1, tokens, single.knobs())
    flops = sum(c.flops for c in costs.values())
    nbytes = sum(c.bytes for c in costs.values())
    return rate.seconds(flops, nbytes) if rate is not None else flops


def hardware_of(point, device: int) -> str | None:
    """Catalog name of device i of a point (None: the measured hardware itself)."""
    if point.fleet is not None:
        return point.fleet[device]
    return point.device


def partition_weights(point) -> tuple[float, ...] | None:
    """Relative speeds of the point's devices (None: equal, the even split)."""
    n = point.devices
    if point.partition == "even" or n == 1 or (point.fleet is None and point.speeds is None):
        return None  # one hardware type at one speed: equal weights
    measured = catalog_rate(profile_id(point.profile_path))
    speeds = point.device_speeds()
    weights = []
    for d in range(n):
        rate = catalog_rate(hardware_of(point, d)) or measured
        weights.append(speeds[d] / layer_seconds(point.model, point.tokens, rate))
    if all(abs(w - weights[0]) <= 1e-12 * weights[0] for w in weights):
        return None
    top = max(weights)
    return tuple(w / top for w in weights)


def point_fleet(point) -> Fleet | None:
    """The per-device scaling of a point, or None for today's uniform path. Cached on the fields it
    reads (points differing only in knobs, network, generation or workload share one Fleet: the
    placement search builds several points per candidate)."""
    from dataclasses import replace

    from astrasim.strategies import STRATEGIES
    from astrasim.strategies.registry import single_device_strategy
    from astrasim.streams import SINGLE

    kind = single_device_strategy() if point.single_device else next(
        s for s in STRATEGIES.values() if not s.single_device)
    return _point_fleet(replace(point, scenario="", knobs=None, network=None, output_tokens=0, workload=SINGLE,
                                strategy=kind.name, element_bits=32, causal_skip=True, algorithm="auto",
                                speed_jitter=0.0))


@functools.lru_cache(maxsize=4096)
def _point_fleet(point) -> Fleet | None:
    shares = partition_weights(point)
    if point.fleet is None and shares is None and point.weight_bits == 32:
        return None
    measured_id = profile_id(point.profile_path)
    measured = catalog_rate(measured_id)
    targets = tuple(catalog_rate(hardware_of(point, d)) for d in range(point.devices))
    if measured is None and (point.weight_bits != 32 or any(t is not None for t in targets)):
        raise UserError(f"profile id '{measured_id}' has no entry in profiles/devices.yaml, so its times cannot be "
                        f"rescaled to other devices or weight precisions; add its peak_flops and mem_bandwidth_gbs "
                        f"there", field="weight_bits" if point.weight_bits != 32 else "hardware.devices")
    capacity = tuple(None if (m := device_memory(hardware_of(point, d), measured_id)) is None
                     else (m - point.headroom_gb) * GB for d in range(point.devices))
    return Fleet(measured=measured, devices=targets, shares=shares, capacity=capacity)


def fastest(names: list[str], spec, tokens: int, speeds: list[float] | None = None) -> int:
    """Index of the fastest listed catalog device (lowest roofline layer time / speed); ties: the first."""
    times = [layer_seconds(spec, tokens, catalog_rate(n)) / (speeds[i] if speeds else 1.0) for i, n in enumerate(names)]
    return min(range(len(names)), key=lambda i: (times[i], i))


def device_memory(name: str | None, measured_id: str, catalog: dict[str, CatalogDevice] | None = None
                  ) -> float | None:
    dev = (catalog or load_catalog()).get(name or measured_id)
    return dev.memory_gb if dev is not None else None
