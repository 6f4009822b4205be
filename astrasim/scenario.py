"""Scenario files: a YAML schema (pydantic) and its expansion into a grid of points.

Every field has a default and a description (`astrasim.scenario.describe()` prints them; see
docs/scenarios.md). Unknown fields are rejected. A field documented as "one value or a list" is a
grid axis: the points are the Cartesian product of all axes. Points that cannot exist (G not
dividing D, N larger than the tokens, nb not dividing the layers, non-positive bandwidth, a
missing profile, trace or catalog device) are a UserError at load time naming the field and
the fix.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from astrasim.errors import UserError
from astrasim.models import ModelSpec, get_model, load_model_yaml, model_from_dict
from astrasim.strategies import STRATEGIES
from astrasim.strategies.base import ALGORITHMS, ELEMENT_BITS, StrategyOptions
from astrasim.strategies.costs import catalog_device, profile_id, resolve_profile_path

TOPOLOGIES = ("mesh", "switch", "wifi", "wifi-adhoc", "ideal", "custom")


def _as_list(v: Any) -> Any:
    return v if isinstance(v, list) else [v]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrategyEntry(_Strict):
    """One strategy; list-valued knobs expand into variants."""

    name: str = Field("astra", description="strategy: single, tp, sp, bp-ag, bp-sp or astra")
    groups: list[int] = Field([32], description="ASTRA: VQ groups G (must divide the hidden size D); "
                                                "one value or a list")
    codebook: list[int] = Field([1024], description="ASTRA: codebook entries K per group (log2 K bits per code); "
                                                    "one value or a list")
    nb: list[int] = Field([1], description="bp-ag / bp-sp: number of blocks Nb (must divide the layers); "
                                           "one value or a list")

    @field_validator("groups", "codebook", "nb", mode="before")
    @classmethod
    def _wrap(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in STRATEGIES:
            raise ValueError(f"unknown strategy '{v}'; use one of {', '.join(STRATEGIES)}")
        return v

    def variants(self) -> list[tuple[int, int, int]]:
        """(groups, codebook, nb) per variant; knobs a strategy ignores are 0."""
        if self.name == "astra":
            return [(g, k, 0) for g in self.groups for k in self.codebook]
        if self.name in ("bp-ag", "bp-sp"):
            return [(0, 0, nb) for nb in self.nb]
        return [(0, 0, 0)]


class HardwareConfig(_Strict):
    """Which measured profile the compute times come from and how they are scaled."""

    profile: str | None = Field(None, description="profile id (profiles/<id>.csv) or path to a profile CSV; "
                                                  "default: the catalog device's profile, else 'cpu'")
    device: list[str | None] = Field([None], description="catalog device(s) of profiles/devices.yaml to scale the "
                                                         "profile to (roofline); null = the measured hardware "
                                                         "itself; one value or a list")
    speed: list[float] = Field([1.0], description="speed factor of every device (2.0 = twice as fast as the "
                                                  "profile); one value or a list")
    speeds: list[float] | None = Field(None, description="heterogeneous devices: per-device speed factors "
                                                         "(device i uses speeds[i], times `speed`); needs at least "
                                                         "as many entries as the largest device count")

    @field_validator("device", "speed", mode="before")
    @classmethod
    def _wrap(cls, v: Any) -> Any:
        return _as_list(v)


class NetworkConfig(_Strict):
    """The network between the devices (astrasim.network.topology.build_topology)."""

    topology: list[str] = Field(["wifi"], description="mesh, switch, wifi, wifi-adhoc, ideal or custom; "
                                                      "one value or a list")
    bandwidth_mbps: list[float] = Field([100.0], description="link / channel rate in Mbps (10^6 bit/s), > 0; "
                                                             "one value or a list")
    latency_s: list[float | None] = Field([None], description="per-message latency alpha in seconds; null = the "
                                                              "topology's default; one value or a list")
    efficiency: list[float | None] = Field([None], description="fraction of the rate available to payload, "
                                                               "in (0, 1]; null = the topology's default; "
                                                               "one value or a list")
    loss_rate: list[float] = Field([0.0], description="packet loss rate in [0, 1); one value or a list")
    trace: str | None = Field(None, description="CSV (time_s, bandwidth_mbps) of a piecewise-constant bandwidth "
                                                "over time, relative to the scenario file; null = static")
    broadcast: bool = Field(False, description="shared media deliver a multicast in one transmission")
    custom: dict | None = Field(None, description="topology 'custom': a graph for topology_from_dict (nodes, "
                                                  "edges with bandwidth_mbps, latency_s, duplex, medium)")

    @field_validator("topology", "bandwidth_mbps", "latency_s", "efficiency", "loss_rate", mode="before")
    @classmethod
    def _wrap(cls, v: Any) -> Any:
        return _as_list(v)


def _default_strategies() -> list[StrategyEntry]:
    return [StrategyEntry(name=n) for n in STRATEGIES]


class Scenario(_Strict):
    """A design-space sweep: models x tokens x devices x strategies x hardware x network."""

    name: str = Field("", description="scenario name (results/<name>.csv); default: the file name")
    description: str = Field("", description="free text")
    models: list[str | dict] = Field(["gpt2-s"], description="built-in model names (vit-base, gpt2-s, gpt2-m, "
                                                             "llama3-8b), paths to a model YAML, or inline "
                                                             "ModelSpec mappings; one value or a list")
    tokens: list[int] | None = Field(None, description="total sequence length T; null = each model's default "
                                                       "(197 for vit-base, 1024 for gpt2); one value or a list")
    devices: list[int] = Field([4], description="device counts N; one value or a list (single always runs on one)")
    strategies: list[StrategyEntry] = Field(default_factory=_default_strategies,
                                            description="strategy names or mappings {name, groups, codebook, nb}; "
                                                        "default: all six with their defaults")
    hardware: HardwareConfig = Field(default_factory=HardwareConfig, description="compute profile and scaling")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="network model")
    element_bits: list[int] = Field([32], description="bits b per full-precision element sent (32 = fp32, 16, 8); "
                                                      "one value or a list")
    causal_skip: bool = Field(True, description="ASTRA on causal models: device i sends its codes only to later "
                                                "devices (true) instead of all-gathering them (false)")
    algorithm: str = Field("auto", description="collective algorithm for all-gather/all-reduce: auto (engine "
                                               "default), ring or direct")

    @field_validator("models", "tokens", "devices", "element_bits", mode="before")
    @classmethod
    def _wrap(cls, v: Any) -> Any:
        return v if v is None else _as_list(v)

    @field_validator("strategies", mode="before")
    @classmethod
    def _strategies(cls, v: Any) -> Any:
        return [{"name": s} if isinstance(s, str) else s for s in _as_list(v)]

    # filled by load_scenario / from_dict, not part of the schema
    _base_dir: Path = PrivateAttr(default_factory=lambda: Path("."))
    _specs: list[ModelSpec] = PrivateAttr(default_factory=list)

    def points(self) -> list["Point"]:
        """The grid in a fixed order (models, tokens, hardware, network, bits, devices, strategies)."""
        return expand(self)


# ---------------------------------------------------------------------------------------------
# A point of the grid


@dataclass(frozen=True)
class Point:
    """One simulation: everything needed to build the graph and the topology (picklable)."""

    scenario: str
    model: ModelSpec
    tokens: int
    strategy: str
    groups: int
    codebook: int
    nb: int
    devices: int
    hardware: str  # catalog device name, or the profile id when not scaled
    profile_path: str
    device: str | None  # catalog device to roofline-scale to (None = measured hardware)
    speed: float
    speeds: tuple[float, ...] | None
    network: str
    bandwidth_mbps: float
    latency_s: float | None
    efficiency: float | None
    loss_rate: float
    trace: str | None  # as written in the scenario
    trace_path: str | None
    broadcast: bool
    custom_topology: str | None  # JSON of the custom graph
    element_bits: int
    causal_skip: bool
    algorithm: str

    def options(self) -> StrategyOptions:
        return StrategyOptions(groups=self.groups, codebook=self.codebook or 1024, nb=self.nb,
                               element_bits=self.element_bits, causal_skip=self.causal_skip,
                               algorithm=self.algorithm)

    def device_speeds(self) -> list[float]:
        """Engine speed per device: speed x speeds[i] (single: the fastest of the listed devices)."""
        if self.speeds is None:
            return [self.speed] * self.devices
        if self.strategy == "single":
            return [self.speed * max(self.speeds)]
        return [self.speed * s for s in self.speeds[: self.devices]]

    def knobs(self) -> dict[str, Any]:
        """The identity columns of this point's result row, in order."""
        return {
            "scenario": self.scenario, "model": self.model.name, "tokens": self.tokens,
            "strategy": self.strategy, "groups": self.groups, "codebook": self.codebook, "nb": self.nb,
            "devices": self.devices, "hardware": self.hardware, "speed": self.speed,
            "speeds": self._speeds_text(),
            "network": self.network, "bandwidth_mbps": self.bandwidth_mbps,
            "latency_param_s": self.latency_s, "efficiency": self.efficiency, "loss_rate": self.loss_rate,
            "trace": self.trace or "", "broadcast": self.broadcast, "element_bits": self.element_bits,
            "causal_skip": self.causal_skip, "algorithm": self.algorithm,
        }

    def _speeds_text(self) -> str:
        """Per-device speeds as written in results ("1.0;0.5"); single lists all it chose from."""
        if self.speeds is None:
            return ""
        used = self.speeds if self.strategy == "single" else self.speeds[: self.devices]
        return ";".join(repr(float(s)) for s in used)

    def single(self) -> "Point":
        """The single-device point of the same model, tokens, hardware and network."""
        return replace(self, strategy="single", groups=0, codebook=0, nb=0, devices=1)


def expand(sc: Scenario) -> list[Point]:
    specs = sc._specs or [_resolve_model(m, i, sc._base_dir) for i, m in enumerate(sc.models)]
    hw = sc.hardware
    net = sc.network
    trace_path = str(_resolve_file(net.trace, sc._base_dir, "network.trace")) if net.trace else None
    custom = json.dumps(net.custom, sort_keys=True) if net.custom is not None else None
    out: list[Point] = []
    seen: set[tuple] = set()
    for spec in specs:
        for tokens in sc.tokens or [spec.tokens]:
            for device in hw.device:
                profile = hw.profile or (catalog_device(device).profile if device else "cpu")
                ppath = resolve_profile_path(profile, sc._base_dir)
                hardware = device or profile_id(ppath)
                axes = itertools.product(hw.speed, net.topology, net.bandwidth_mbps, net.latency_s, net.efficiency,
                                         net.loss_rate, sc.element_bits, sc.devices)
                for speed, topo, bw, alpha, eff, loss, bits, n in axes:
                    for entry in sc.strategies:
                        for g, k, nb in entry.variants():
                            p = Point(sc.name, spec, tokens, entry.name, g, k, nb,
                                      1 if entry.name == "single" else n, hardware, str(ppath),
                                      device, float(speed), tuple(float(s) for s in hw.speeds) if hw.speeds else None,
                                      topo, float(bw), _opt_float(alpha), _opt_float(eff), float(loss), net.trace, trace_path,
                                      net.broadcast, custom, bits, sc.causal_skip, sc.algorithm)
                            key = point_key(p)
                            if key not in seen:
                                seen.add(key)
                                out.append(p)
    return out


def _opt_float(v: float | None) -> float | None:
    return None if v is None else float(v)


def point_key(p: Point) -> tuple[str, ...]:
    """The identity of a point as its formatted knob columns (how rows are matched on resume)."""
    return tuple(format_value(v) for v in p.knobs().values())


def format_value(v: Any) -> str:
    """How every value is written to a result file: deterministic, round-trips floats exactly."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return repr(v)
    return str(v)


# ---------------------------------------------------------------------------------------------
# Loading and checking


def _resolve_file(path: str, base_dir: Path, field: str) -> Path:
    p = Path(path)
    for cand in ([base_dir / p] if not p.is_absolute() else []) + [p]:
        if cand.is_file():
            return cand
    raise UserError(f"file '{path}' not found (relative to the scenario file); give an existing file", field=field)


def _resolve_model(m: str | dict, i: int, base_dir: Path) -> ModelSpec:
    field = f"models[{i}]"
    try:
        if isinstance(m, dict):
            return model_from_dict(m)
        if m.endswith((".yaml", ".yml")):
            return load_model_yaml(_resolve_file(m, base_dir, field))
        return get_model(m)
    except UserError as exc:
        raise UserError(str(exc).removeprefix("model: "), field=field) from None


def check(sc: Scenario) -> None:
    """Reject grid points that cannot exist; each UserError names the field and the fix."""
    specs = sc._specs
    if not specs:
        raise UserError("list at least one model", field="models")
    if not sc.devices:
        raise UserError("list at least one device count", field="devices")
    if not sc.strategies:
        raise UserError("list at least one strategy", field="strategies")
    for n in sc.devices:
        if n < 1:
            raise UserError(f"device count {n} must be >= 1", field="devices")
    for spec in specs:
        for t in sc.tokens or [spec.tokens]:
            if t < 1 or t > spec.max_tokens:
                raise UserError(f"tokens={t} outside 1..{spec.max_tokens} for {spec.name}; lower it", field="tokens")
            parts = t - 1 if spec.cls_token else t
            for n in sc.devices:
                if n > parts:
                    raise UserError(f"N={n} devices is larger than the {parts} tokens of {spec.name} to split; "
                                    f"use at most {parts} devices or more tokens", field="devices")
    for i, entry in enumerate(sc.strategies):
        f = f"strategies[{i}]"
        for g in entry.groups:
            for spec in specs:
                if entry.name == "astra" and (g < 1 or spec.hidden % g):
                    raise UserError(f"G={g} does not divide {spec.name}'s hidden size D={spec.hidden}; use a divisor "
                                    f"such as 1, 16 or 32", field=f"{f}.groups")
        for k in entry.codebook:
            if entry.name == "astra" and k < 2:
                raise UserError(f"codebook K={k} must be >= 2 (log2 K bits per code)", field=f"{f}.codebook")
        for nb in entry.nb:
            for spec in specs:
                if entry.name in ("bp-ag", "bp-sp") and (nb < 1 or spec.layers % nb):
                    raise UserError(f"Nb={nb} does not divide {spec.name}'s {spec.layers} layers; use a divisor "
                                    f"such as 1 or 4", field=f"{f}.nb")
    for b in sc.element_bits:
        if b not in ELEMENT_BITS:
            raise UserError(f"element_bits={b}; use one of {', '.join(map(str, ELEMENT_BITS))}",
                            field="element_bits")
    if sc.algorithm not in ALGORITHMS:
        raise UserError(f"unknown algorithm '{sc.algorithm}'; use one of {', '.join(ALGORITHMS)}", field="algorithm")
    hw, net = sc.hardware, sc.network
    for s in hw.speed:
        if s <= 0:
            raise UserError(f"speed={s} must be > 0", field="hardware.speed")
    if hw.speeds is not None:
        if len(hw.speeds) < max(sc.devices) or any(s <= 0 for s in hw.speeds):
            raise UserError(f"give at least {max(sc.devices)} positive per-device speeds (one per device of the "
                            f"largest device count)", field="hardware.speeds")
    for d in hw.device:
        if d is not None:
            catalog_device(d)
    if hw.profile is not None:
        resolve_profile_path(hw.profile, sc._base_dir)
    for t in net.topology:
        if t not in TOPOLOGIES:
            raise UserError(f"unknown topology '{t}'; use one of {', '.join(TOPOLOGIES)}", field="network.topology")
        if t == "custom" and net.custom is None:
            raise UserError("topology 'custom' needs a graph under network.custom", field="network.custom")
    for bw in net.bandwidth_mbps:
        if not bw > 0 or math.isinf(bw):
            raise UserError(f"bandwidth {bw} Mbps must be a positive number, e.g. 100", field="network.bandwidth_mbps")
    for a in net.latency_s:
        if a is not None and a < 0:
            raise UserError(f"latency {a} s must be >= 0 (or null for the default)", field="network.latency_s")
    for e in net.efficiency:
        if e is not None and not 0 < e <= 1:
            raise UserError(f"efficiency {e} must be in (0, 1] (or null for the default)", field="network.efficiency")
    for loss in net.loss_rate:
        if not 0 <= loss < 1:
            raise UserError(f"loss rate {loss} must be in [0, 1)", field="network.loss_rate")
    if net.trace:
        _resolve_file(net.trace, sc._base_dir, "network.trace")


def _pydantic_error(exc: ValidationError, source: str) -> UserError:
    err = exc.errors()[0]
    loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
    if err["type"] == "extra_forbidden":
        parent = _model_at(Scenario, [p for p in err["loc"][:-1] if not isinstance(p, int)])
        allowed = ", ".join(parent.model_fields) if parent else "see docs/scenarios.md"
        return UserError(f"unknown field in {source}; allowed here: {allowed}", field=loc or "scenario")
    msg = err["msg"].removeprefix("Value error, ")
    return UserError(f"{msg} (in {source}; see docs/scenarios.md)", field=loc or "scenario")


def _model_at(model: type[BaseModel], path: list) -> type[BaseModel] | None:
    for name in path:
        field = model.model_fields.get(name)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or (ann,)
        nxt = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nxt is None:
            return None
        model = nxt
    return model


def from_dict(data: Any, *, name: str = "scenario", base_dir: str | Path = ".", source: str = "scenario") -> Scenario:
    """Validate a parsed scenario mapping, resolve its models and check every point can exist."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{source} must be a mapping of scenario fields (see docs/scenarios.md)", field="scenario")
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_error(exc, source) from None
    if not sc.name:
        sc.name = name
    sc._base_dir = Path(base_dir)
    sc._specs = [_resolve_model(m, i, sc._base_dir) for i, m in enumerate(sc.models)]
    check(sc)
    return sc


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"scenario file '{p}' not found; give a path such as scenarios/wifi.yaml", field="scenario")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise UserError(f"malformed YAML in '{p}': {first}; fix the syntax", field="scenario") from None
    if data is not None and not isinstance(data, dict):
        raise UserError(f"'{p}' must be a mapping of scenario fields (see docs/scenarios.md)", field="scenario")
    return data or {}


def apply_overrides(data: dict | None, overrides: list[str]) -> dict:
    """Apply `key.sub=value` overrides (value parsed as YAML) to a raw scenario mapping."""
    data = dict(data or {})
    for item in overrides:
        if "=" not in item:
            raise UserError(f"'{item}' is not key=value, e.g. network.bandwidth_mbps=50", field="--set")
        key, _, raw = item.partition("=")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise UserError(f"value of '{key}' is not valid YAML", field="--set") from None
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
            if not isinstance(child, dict):
                raise UserError(f"'{part}' is not a mapping, cannot set '{key}'", field="--set")
            node[part] = child = dict(child)
            node = child
        node[parts[-1]] = value
    return data


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, validate and check a scenario YAML file (optionally with `key=value` overrides)."""
    p = Path(path)
    data = apply_overrides(read_yaml(p), overrides or [])
    return from_dict(data, name=p.stem, base_dir=p.parent, source=str(p))


def describe(model: type[BaseModel] = Scenario, prefix: str = "") -> list[tuple[str, str, str]]:
    """(field, default, description) for every field of the schema, nested ones dotted."""
    rows = []
    for name, f in model.model_fields.items():
        sub = _model_at(model, [name])
        default = f.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = "(see below)"
        elif isinstance(default, list) and default and isinstance(default[0], BaseModel):
            default = [d.name for d in default]  # type: ignore[attr-defined]
        rows.append((prefix + name, json.dumps(default) if not isinstance(default, str) else repr(default),
                     f.description or ""))
        if sub is not None:
            rows += describe(sub, prefix + name + ("[]." if sub is StrategyEntry else "."))
    return rows


__all__ = ["Scenario", "Point", "load_scenario", "from_dict", "apply_overrides", "describe", "point_key",
           "format_value"]
