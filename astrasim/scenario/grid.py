"""A scenario's grid: one `Point` per simulation, in a fixed order.

A Point is everything needed to build the op graph and the network (picklable, hashable), typed:
the strategy's own knobs are its Knobs object, the network a `NetworkPoint`. Turning a point
into engine inputs is astrasim.pointrun.engine_inputs (the one path used by simulate, sweep,
plan and validate).
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any

from astrasim.compute.catalog import catalog_device
from astrasim.compute.formats import FORMATS, weight_format
from astrasim.compute.hardware import fastest, head_seconds, point_fleet
from astrasim.compute.profiles import profile_id, resolve_profile_path
from astrasim.fileio import format_value, resolve_file
from astrasim.models import ModelSpec
from astrasim.network.topology import build_topology, topology_from_dict
from astrasim.scenario.fleet import fleet_text
from astrasim.strategies import BuildOptions, Knobs, get
from astrasim.strategies.registry import KNOB_FIELDS, knob_columns, single_device_strategy
from astrasim.streams import SINGLE, WORKLOAD_COLUMNS, WorkloadPoint


@dataclass(frozen=True)
class NetworkPoint:
    """The network of one point: a preset kind with its parameters, or a custom graph (JSON)."""

    kind: str
    bandwidth_mbps: float
    latency_s: float | None = None
    efficiency: float | None = None
    loss_rate: float = 0.0
    trace: str | None = None  # as written in the scenario
    trace_path: str | None = None  # resolved file
    broadcast: bool = False
    custom: str | None = None  # JSON of the custom graph
    wifi: str | None = None  # JSON of the 802.11 settings (network.wifi)

    def build(self, n_devices: int, trace_data: list | None = None):
        """The networkx topology for n devices (trace_data: the loaded bandwidth trace)."""
        if self.kind == "custom":
            return topology_from_dict(json.loads(self.custom or "{}"), n_devices)
        return build_topology(
            self.kind,
            n_devices,
            self.bandwidth_mbps,
            latency_s=self.latency_s,
            efficiency=self.efficiency,
            loss_rate=self.loss_rate,
            bandwidth_trace=trace_data,
            broadcast=self.broadcast,
            wifi=json.loads(self.wifi) if self.wifi else None,
        )


@dataclass(frozen=True, kw_only=True)
class Point:
    """One simulation of a scenario's grid (built by keyword only: its fields are many and typed
    alike). Its result columns are `IDENTITY` below."""

    scenario: str
    model: ModelSpec
    tokens: int
    strategy: str
    knobs: Knobs
    devices: int
    hardware: str  # catalog device name, or the profile id when not scaled
    profile_path: str
    device: str | None  # catalog device to roofline-scale to (None = measured hardware)
    speed: float
    speeds: tuple[float, ...] | None
    network: NetworkPoint
    element_bits: int = 32
    algorithm: str = "auto"
    # memory and mixed fleets (astrasim/compute/hardware.py)
    weight_bits: int = 32
    partition: str = "proportional"
    fleet: tuple[str, ...] | None = None  # per-device catalog names of a mixed fleet (then device is None)
    listed: tuple[str, ...] | None = None  # hardware.devices as written: single's baseline is its fastest
    headroom_gb: float = 1.0
    output_tokens: int = 0  # generation: tokens produced after the prompt (0 = prefill only)
    workload: WorkloadPoint = SINGLE  # the request stream (astrasim/streams.py)
    hosts: int | None = None  # hardware.hosts: None = every device its own processor
    cores_per_host: int = 1
    op_overhead_s: float = 0.0  # hardware.op_overhead_s: per-op dispatch cost
    message_cpu_s: float | None = None  # hardware.message_cpu_s: host CPU per message (None: the catalog's)
    speed_jitter: float = 0.0  # hardware.speed_jitter: spread of each device's speed per pass
    costs: Any = None  # a ProfileCosts given in memory instead of profile_path's file (validation)
    weight_format: str = "fp32"  # astrasim.compute.formats (weight_bits is its shorthand)
    compute: str = "auto"  # hardware.compute (astrasim.compute.hardware.compute_mode)

    def options(self) -> BuildOptions:

        return BuildOptions(
            element_bits=self.element_bits,
            algorithm=self.algorithm,
            weight_bits=weight_format(self.weight_format).bits,
            fleet=point_fleet(self),
            head_s=head_seconds(self) if self.output_tokens > 0 else (),
        )

    @property
    def single_device(self) -> bool:
        return get(self.strategy).single_device

    def label(self) -> str:
        return get(self.strategy).label(self.knobs)

    def device_speeds(self) -> list[float]:
        """Engine speed per device: speed x speeds[i] (single: the fastest of the listed devices)."""
        if self.speeds is None:
            return [self.speed] * self.devices
        if self.single_device:
            return [self.speed * max(self.speeds)]
        return [self.speed * s for s in self.speeds[: self.devices]]

    def identity(self) -> dict[str, Any]:
        """The identity columns of this point's result row, in order (`IDENTITY`)."""
        return {name: value(self) for name, value in IDENTITY}

    def _speeds_text(self) -> str:
        """Per-device speeds as written in results ("1.0;0.5"); single lists all it chose from."""
        if self.speeds is None:
            return ""
        used = self.speeds if self.single_device else self.speeds[: self.devices]
        return ";".join(repr(float(s)) for s in used)

    def single(self) -> Point:
        """The single-device point of the same model, tokens, hardware and network (a mixed fleet:
        the fastest of every listed device, `hardware.devices`, the same baseline in every row)."""
        s = single_device_strategy()
        if self.listed is not None:
            listed = self.listed
            i = fastest(
                list(listed), self.model, self.tokens, list(self.speeds) if self.speeds else None, self.weight_format
            )
            return replace(
                self,
                strategy=s.name,
                knobs=s.knobs(),
                devices=1,
                fleet=None,
                device=listed[i],
                workload=SINGLE,
                hardware=listed[i],
                speeds=(self.speeds[i],) if self.speeds else None,
            )
        return replace(self, strategy=s.name, knobs=s.knobs(), devices=1, workload=SINGLE)


@functools.lru_cache(maxsize=1024)
def _knob_values(strategy: str, knobs: Knobs) -> dict[str, Any]:
    return knob_columns(strategy, knobs)


def _knob(name: str) -> Callable[[Point], Any]:
    return lambda p: _knob_values(p.strategy, p.knobs)[name]


def _net(name: str) -> Callable[[Point], Any]:
    return lambda p: getattr(p.network, name)


def _workload(name: str) -> Callable[[Point], Any]:
    return lambda p: p.workload.identity()[name]


# The one definition of a point's identity: (result column, its value for a point), in column
# order. Every input that can change a result row is here (a scenario-wide input too, so rows of
# two runs never look alike). results.IDENTITY_COLUMNS (the file's key and resume key),
# sweep.best_strategies' groups and the plots' line labels (analysis/style.py) derive from it.
IDENTITY: tuple[tuple[str, Callable[[Point], Any]], ...] = (
    ("scenario", attrgetter("scenario")),
    ("model", lambda p: p.model.name),
    ("tokens", attrgetter("tokens")),
    ("strategy", attrgetter("strategy")),
    *((k, _knob(k)) for k in KNOB_FIELDS),
    ("devices", attrgetter("devices")),
    ("hardware", attrgetter("hardware")),
    ("speed", attrgetter("speed")),
    ("speeds", lambda p: p._speeds_text()),
    ("hosts", attrgetter("hosts")),
    ("cores_per_host", attrgetter("cores_per_host")),
    ("op_overhead_s", attrgetter("op_overhead_s")),
    ("message_cpu_s", attrgetter("message_cpu_s")),
    ("speed_jitter", attrgetter("speed_jitter")),
    ("headroom_gb", attrgetter("headroom_gb")),
    ("network", _net("kind")),
    ("bandwidth_mbps", _net("bandwidth_mbps")),
    ("latency_param_s", _net("latency_s")),
    ("efficiency", _net("efficiency")),
    ("loss_rate", _net("loss_rate")),
    ("trace", lambda p: p.network.trace or ""),
    ("broadcast", _net("broadcast")),
    ("wifi", lambda p: p.network.wifi or ""),
    ("element_bits", attrgetter("element_bits")),
    ("algorithm", attrgetter("algorithm")),
    ("weight_bits", attrgetter("weight_bits")),
    ("partition", attrgetter("partition")),
    ("output_tokens", attrgetter("output_tokens")),  # generation
    *((k, _workload(k)) for k in WORKLOAD_COLUMNS),  # request streams
    ("weight_format", attrgetter("weight_format")),  # astrasim.compute.formats (weight_bits: its width)
    ("compute", attrgetter("compute")),  # hardware.compute: measured profile, calibrated or datasheet roofline
)
IDENTITY_COLUMNS: tuple[str, ...] = tuple(name for name, _ in IDENTITY)
VARIANT_COLUMNS: tuple[str, ...] = ("strategy", *KNOB_FIELDS)  # a point's strategy variant; the rest: its setting


def iter_points(sc) -> Iterator[Point]:
    """The grid of a LoadedScenario (astrasim.scenario.loading) lazily, in a fixed order (models,
    tokens, output tokens, hardware, network, bits, devices, strategies); points that coincide
    (single at every N) appear once."""
    specs = sc.specs
    hw, net = sc.hardware, sc.network
    trace_path = str(resolve_file(net.trace, sc.base_dir, "network.trace")) if net.trace else None
    custom = json.dumps(net.custom, sort_keys=True) if net.custom is not None else None
    wifi = net.wifi.model_dump_json(exclude_defaults=True) if net.wifi is not None else None
    speeds = tuple(float(s) for s in hw.speeds) if hw.speeds else None
    fleet_all = tuple(hw.devices) if hw.devices else None
    variants = [(entry.name, get(entry.name), knobs) for entry in sc.strategies for knobs in entry.variants()]
    workloads = [workload_point(w, sc.base_dir) for w in sc.workload]
    seen: set[tuple] = set()
    for spec in specs:
        for tokens, out_tokens in itertools.product(sc.tokens or [spec.tokens], sc.output_tokens):
            for device in hw.device:
                first = fleet_all[0] if fleet_all else device
                profile = hw.profile or ((catalog_device(first).profile or "cpu") if first else "cpu")
                ppath = resolve_profile_path(profile, sc.base_dir)
                hardware = device or profile_id(ppath)
                axes = itertools.product(
                    hw.speed,
                    net.topology,
                    net.bandwidth_mbps,
                    net.latency_s,
                    net.efficiency,
                    net.loss_rate,
                    sc.element_bits,
                    sc.weight_formats(),
                    sc.devices,
                )
                for speed, topo, bw, alpha, eff, loss, bits, wfmt, n in axes:
                    network = NetworkPoint(
                        topo,
                        float(bw),
                        _opt_float(alpha),
                        _opt_float(eff),
                        float(loss),
                        net.trace,
                        trace_path,
                        net.broadcast,
                        custom,
                        wifi,
                    )
                    for (name, strategy, knobs), workload in itertools.product(variants, workloads):
                        if not strategy.applies(spec):
                            continue
                        p = Point(
                            scenario=sc.name,
                            model=spec,
                            tokens=tokens,
                            strategy=name,
                            knobs=knobs,
                            devices=1 if strategy.single_device else n,
                            hardware=hardware,
                            profile_path=str(ppath),
                            device=device,
                            speed=float(speed),
                            speeds=speeds,
                            network=network,
                            element_bits=bits,
                            algorithm=sc.algorithm,
                            weight_bits=FORMATS[wfmt].nominal_bits,
                            partition=hw.partition,
                            listed=fleet_all,
                            headroom_gb=sc.memory.headroom_gb,
                            weight_format=wfmt,
                            compute=hw.compute,
                            output_tokens=out_tokens,
                            workload=workload,
                            hosts=hw.hosts,
                            cores_per_host=hw.cores_per_host,
                            op_overhead_s=float(hw.op_overhead_s),
                            message_cpu_s=_opt_float(hw.message_cpu_s),
                            speed_jitter=float(hw.speed_jitter),
                        )
                        if fleet_all:
                            p = _on_fleet(p, fleet_all)
                        key = point_key(p)
                        if key not in seen:
                            seen.add(key)
                            yield p


def workload_point(w, base_dir) -> WorkloadPoint:
    """A scenario's WorkloadConfig as the point's WorkloadPoint (single: one request, no rate)."""
    if w.arrival == "single":
        return SINGLE
    rate = None if w.arrival == "trace" or w.rate_per_s is None else float(w.rate_per_s)
    trace = w.trace if w.arrival == "trace" else None
    path = str(resolve_file(trace, base_dir, "workload.trace")) if trace else None
    return WorkloadPoint(w.arrival, rate, int(w.requests), int(w.seed) if w.arrival == "poisson" else 0, trace, path)


def _on_fleet(p: Point, fleet: tuple[str, ...]) -> Point:
    """A point on the first N devices of a mixed fleet (single: the fastest of them all, as
    `Point.single`)."""
    if p.single_device:
        return p.single()
    used = fleet[: p.devices]
    if len(set(used)) == 1:  # a uniform fleet is an ordinary catalog device
        return replace(p, device=used[0], hardware=used[0])
    return replace(p, fleet=used, hardware=fleet_text(used))


def count_points(sc) -> int:
    """len(expand(sc)) without building a point (a grid may hold millions): the product of the
    distinct values of every axis, single-device variants counted once per device count."""

    def distinct(values) -> int:
        return len({format_value(float(v) if isinstance(v, int) and not isinstance(v, bool) else v) for v in values})

    specs = sc.specs
    hw, net = sc.hardware, sc.network
    per_network = 1
    for axis in (
        hw.speed,
        net.topology,
        net.bandwidth_mbps,
        net.latency_s,
        net.efficiency,
        net.loss_rate,
        sc.element_bits,
        sc.weight_formats(),
        sc.output_tokens,
    ):
        per_network *= distinct(axis)
    variants = {
        (entry.name, tuple(knob_columns(entry.name, knobs).items()))
        for entry in sc.strategies
        for knobs in entry.variants()
    }
    tokens = {}  # model name -> (its distinct token counts, the spec)
    for spec in specs:
        tokens.setdefault(spec.name, (set(), spec))[0].update(sc.tokens or [spec.tokens])
    total = 0
    for counts, spec in tokens.values():  # strategies that do not apply to a model (ep: dense) are left out
        mine = [name for name, _ in variants if get(name).applies(spec)]
        single = sum(1 for name in mine if get(name).single_device)
        per_tokens = distinct(hw.device) * per_network * ((len(mine) - single) * len(set(sc.devices)) + single)
        total += len(counts) * per_tokens
    return total * len(sc.workload)


def expand(sc) -> list[Point]:
    return list(iter_points(sc))


def _opt_float(v: float | None) -> float | None:
    return None if v is None else float(v)


def point_key(p: Point) -> tuple[str, ...]:
    """The identity of a point as its formatted identity columns (how rows are matched on resume)."""
    return tuple(format_value(v) for v in p.identity().values())
