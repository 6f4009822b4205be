"""The hardware of one point: which catalog device each of its devices is, how the work is split in
proportion to their speeds, how each device's op times are scaled.

* Partition weights (`hardware.partition: proportional`): device i's weight is
  speed_i / (roofline seconds of one whole layer of the model at T tokens on its hardware), so a
  device twice as fast gets twice the tokens (sp, astra) or KV heads and MLP columns (tp). Equal
  weights give the even split exactly; `partition: even` always does.
* Compute (`compute_mode`): the profile's measured rows where they measure what is asked, else the
  calibrated device model (astrasim.compute.calibrated), or datasheet peaks on request.
* Op times: `Fleet` (astrasim.compute.roofline) scales device 0's op time to each device: by the device
  models (calibrated), or by the datasheet roofline ratio of the device's own op (its share, its hardware,
  the weight format's bits) over the profiled op (measured).
"""

from __future__ import annotations

import functools

from astrasim.compute.analytic import Cost
from astrasim.compute.calibrated import CalibratedCosts, DeviceModel
from astrasim.compute.catalog import CatalogDevice, catalog_device, load_catalog
from astrasim.compute.formats import weight_format
from astrasim.compute.profiles import profile_id
from astrasim.compute.roofline import Fleet, Rate
from astrasim.errors import UserError

GB = 1e9


MODES = ("auto", "measured", "calibrated", "datasheet")


def catalog_rate(name: str | None) -> Rate | None:
    if name is None:
        return None
    dev = load_catalog().get(name)
    return dev.rate() if dev is not None else None


def single_layer_cost(spec, tokens: int) -> Cost:
    """One whole layer (the single-device ops) at T tokens."""
    from astrasim.strategies.registry import single_device_strategy

    single = single_device_strategy()
    costs = single.op_costs(spec, 1, tokens, single.knobs())
    return sum(costs.values(), Cost())


def layer_seconds(spec, tokens: int, rate: Rate | None) -> float:
    """Datasheet-roofline seconds of one whole layer at T tokens: a device's speed on the measured path."""
    c = single_layer_cost(spec, tokens)
    return rate.seconds(c.flops, c.bytes) if rate is not None else c.flops


def hardware_of(point, device: int) -> str | None:
    """Catalog name of device i of a point (None: the measured hardware itself)."""
    if point.fleet is not None:
        return point.fleet[device]
    return point.device


def compute_mode(point) -> str:
    """How a point's compute is known: `measured` (its profile's rows, roofline-scaled by datasheet peaks
    to another device), `calibrated` or `datasheet` (the device model). hardware.compute `auto`: the
    profile's rows where they measure what is asked (the profile's own hardware, fp32 weights, no mixed
    fleet), the calibrated model otherwise."""
    mode = getattr(point, "compute", "auto")
    if mode != "auto":
        return mode
    if point.fleet is not None or point.weight_format != "fp32":
        return "calibrated"
    if point.device is None:
        return "measured"
    dev = load_catalog().get(point.device)
    return "measured" if dev is not None and dev.profile == profile_id(point.profile_path) else "calibrated"


def _model_name(point, device: int) -> str:
    name = hardware_of(point, device) or profile_id(point.profile_path)
    if name not in load_catalog():
        raise UserError(
            f"'{name}' has no entry in profiles/devices.yaml, so its compute cannot be modelled; add it "
            f"(or measure it with `astrasim calibrate-device {name}`)",
            field="hardware.device",
        )
    return name


@functools.lru_cache(maxsize=256)
def device_model(name: str, datasheet: bool = False) -> DeviceModel:
    return DeviceModel.of(catalog_device(name), datasheet=datasheet)


def point_models(point) -> tuple[DeviceModel, ...]:
    """The device model of each of a point's devices (calibrated, or datasheet with hardware.compute: datasheet)."""
    datasheet = compute_mode(point) == "datasheet"
    return tuple(device_model(_model_name(point, d), datasheet) for d in range(point.devices))


def compute_source(point) -> str:
    """The result column compute_source: measured (profile rows of the point's own hardware), calibrated
    (sustained figures from published or measured microbenchmarks) or datasheet (datasheet peaks, or an
    estimate, for some figure the point used; or profile rows scaled to another device by datasheet peaks)."""
    mode = compute_mode(point)
    if mode == "measured":
        return "measured" if point.device is None or point.device == profile_id(point.profile_path) else "datasheet"
    fmt = weight_format(point.weight_format)
    return "calibrated" if all(m.source(fmt) == "calibrated" for m in point_models(point)) else "datasheet"


@functools.lru_cache(maxsize=1024)
def calibrated_costs(point) -> CalibratedCosts:
    """The per-op costs of a calibrated (or datasheet) point on its first device's model; a Fleet scales
    the other devices' ops from them (point_fleet)."""
    fmt = weight_format(point.weight_format)
    model = point_models(point)[0]
    model.precision(fmt)
    return CalibratedCosts(point.model, model, fmt, {point.strategy: point.knobs})


def partition_weights(point) -> tuple[float, ...] | None:
    """Relative speeds of the point's devices (None: equal, the even split)."""
    n = point.devices
    if point.partition == "even" or n == 1 or (point.fleet is None and point.speeds is None):
        return None  # one hardware type at one speed: equal weights
    speeds = point.device_speeds()
    if compute_mode(point) == "measured":
        measured = catalog_rate(profile_id(point.profile_path))
        times = [
            layer_seconds(point.model, point.tokens, catalog_rate(hardware_of(point, d)) or measured) for d in range(n)
        ]
    else:
        fmt, layer = weight_format(point.weight_format), single_layer_cost(point.model, point.tokens)
        times = [m.seconds(layer, fmt) for m in point_models(point)]
    weights = [speeds[d] / times[d] for d in range(n)]
    if all(abs(w - weights[0]) <= 1e-12 * weights[0] for w in weights):
        return None
    top = max(weights)
    return tuple(w / top for w in weights)


def _capacity(point) -> tuple[float | None, ...]:
    measured_id = profile_id(point.profile_path)
    return tuple(
        None if (m := device_memory(hardware_of(point, d), measured_id)) is None else (m - point.headroom_gb) * GB
        for d in range(point.devices)
    )


@functools.lru_cache(maxsize=4096)
def point_fleet(point) -> Fleet | None:
    """The per-device scaling of a point, or None when every device runs the costs as given (one
    hardware type, even split; measured: fp32 weights)."""
    shares = partition_weights(point)
    if compute_mode(point) != "measured":
        if point.fleet is None and shares is None:
            return None
        return Fleet(
            shares=shares, capacity=_capacity(point), models=point_models(point), fmt=weight_format(point.weight_format)
        )
    if point.fleet is None and shares is None and point.weight_format == "fp32":
        return None
    measured_id = profile_id(point.profile_path)
    measured = catalog_rate(measured_id)
    targets = tuple(catalog_rate(hardware_of(point, d)) for d in range(point.devices))
    if measured is None and (point.weight_format != "fp32" or any(t is not None for t in targets)):
        raise UserError(
            f"profile id '{measured_id}' has no entry in profiles/devices.yaml, so its times cannot be "
            f"rescaled to other devices or weight formats; add it there",
            field="weight_format" if point.weight_format != "fp32" else "hardware.devices",
        )
    return Fleet(measured=measured, devices=targets, shares=shares, capacity=_capacity(point))


def head_seconds(point) -> tuple[float, ...]:
    """Seconds of one token's LM head (and next embedding lookup) on each device that computes it
    (strategy.head_devices), on the device's model (the measured path: its profile's catalog entry);
    empty when no catalog entry models it."""
    from astrasim.strategies import get

    strategy = get(point.strategy)
    n = point.devices
    fmt = weight_format(point.weight_format)
    try:
        models = (
            point_models(point)
            if compute_mode(point) != "measured"
            else (device_model(profile_id(point.profile_path)),) * n
        )
    except UserError:
        return ()
    cost = strategy.head_cost(point.model, n, point.knobs)
    out = [0.0] * n
    for d in strategy.head_devices(n, point.knobs):
        out[d] = models[d].seconds(cost, fmt, head=True)
    return tuple(out)


def fastest(names: list[str], spec, tokens: int, speeds: list[float] | None = None, fmt: str = "fp32") -> int:
    """Index of the fastest listed catalog device (lowest calibrated layer time / speed); ties: the first."""
    f, layer = weight_format(fmt), single_layer_cost(spec, tokens)
    times = [device_model(n).seconds(layer, f) / (speeds[i] if speeds else 1.0) for i, n in enumerate(names)]
    return min(range(len(names)), key=lambda i: (times[i], i))


def device_memory(name: str | None, measured_id: str, catalog: dict[str, CatalogDevice] | None = None) -> float | None:
    dev = (catalog or load_catalog()).get(name or measured_id)
    return dev.memory_gb if dev is not None else None
