"""Reading a scenario: YAML -> schema -> resolved models -> every point checked.

Points that cannot exist (G not dividing D, N larger than the tokens, nb not dividing the layers,
a missing profile, trace or catalog device) are a UserError at load time naming the field and
the fix, before any output is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from astrasim.compute.catalog import catalog_device
from astrasim.compute.hardware import device_memory
from astrasim.compute.profiles import profile_id, resolve_profile_path
from astrasim.errors import UserError
from astrasim.fileio import parse_yaml, read_yaml_file, resolve_file
from astrasim.models import ModelSpec, load_model, model_from_dict
from astrasim.network.topology import load_bandwidth_trace, topology_from_dict
from astrasim.scenario.grid import Point, expand, workload_point
from astrasim.scenario.schema import Scenario, StrategyEntry, model_at
from astrasim.strategies import check_decoding, get
from astrasim.strategies.base import KnobError
from astrasim.streams import arrival_times


@dataclass(frozen=True)
class LoadedScenario:
    """A checked scenario with what loading resolved: the folder its relative paths start from and
    its models. The schema's fields read through (`sc.devices` is `sc.scenario.devices`); the grid
    (astrasim.scenario.grid) takes this, never a bare Scenario."""

    scenario: Scenario
    base_dir: Path
    specs: tuple[ModelSpec, ...]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("scenario", "base_dir", "specs"):  # unpickling, copy
            raise AttributeError(name)
        return getattr(self.scenario, name)

    def points(self) -> list[Point]:
        """The grid in a fixed order (models, tokens, hardware, network, bits, devices, strategies)."""
        return expand(self)


def resolve_model(m: str | dict, i: int, base_dir: Path | None) -> ModelSpec:
    field = f"models[{i}]"
    try:
        if isinstance(m, dict):
            return model_from_dict(m)
        if m.endswith((".yaml", ".yml")):
            resolve_file(m, base_dir, field)
        return load_model(m, base_dir)
    except UserError as exc:
        raise UserError(str(exc).removeprefix("model: "), field=field) from None


def check(sc: LoadedScenario) -> None:
    """Reject grid points that cannot exist; each UserError names the field and the fix."""
    specs = sc.specs
    if not specs:
        raise UserError("list at least one model", field="models")
    if not sc.devices:
        raise UserError("list at least one device count", field="devices")
    if not sc.strategies:
        raise UserError("list at least one strategy", field="strategies")
    splitting = [e.name for e in sc.strategies if get(e.name).splits_tokens]
    for spec in specs:
        for t in sc.tokens or [spec.tokens]:
            if t > spec.max_tokens:
                raise UserError(f"tokens={t} outside 1..{spec.max_tokens} for {spec.name}; lower it", field="tokens")
            parts = t - 1 if spec.cls_token else t
            for n in sc.devices:
                if splitting and n > parts:
                    raise UserError(
                        f"N={n} devices is larger than the {parts} tokens of {spec.name} that "
                        f"{', '.join(splitting)} split; use at most {parts} devices or more tokens",
                        field="devices",
                    )
    for i, entry in enumerate(sc.strategies):
        _check_entry(entry, f"strategies[{i}]", specs, sc)
    _check_generation(sc, specs)
    hw, net = sc.hardware, sc.network
    if hw.speeds is not None and len(hw.speeds) != max(sc.devices):
        raise UserError(
            f"lists {len(hw.speeds)} speed(s) but the largest device count is {max(sc.devices)}; give "
            f"exactly one positive speed per device (single, the baseline of every row, runs on the "
            f"fastest of them)",
            field="hardware.speeds",
        )
    for d in hw.device:
        if d is not None:
            catalog_device(d)
    _check_fleet(sc)
    if hw.profile is not None:
        resolve_profile_path(hw.profile, sc.base_dir)
    _check_headroom(sc)
    if "custom" in net.topology and net.custom is None:
        raise UserError("topology 'custom' needs a graph under network.custom", field="network.custom")
    if "custom" in net.topology:
        _check_custom_graph(sc)
    if net.trace:
        try:
            load_bandwidth_trace(resolve_file(net.trace, sc.base_dir, "network.trace"))
        except UserError as exc:
            raise UserError(str(exc), field="network.trace") from None
    for i, w in enumerate(sc.workload):  # streams: a trace file must exist and hold enough arrivals
        if w.arrival == "trace":
            try:
                arrival_times(workload_point(w, sc.base_dir))
            except UserError as exc:
                raise UserError(
                    str(exc).split(": ", 1)[-1], field=f"workload[{i}].{exc.field.split('.')[-1]}"
                ) from None


def check_name(name: str) -> str:
    """A scenario name names its results file (results/<name>.csv): no folders, nothing hidden."""
    if not name or any(c in name for c in "/\\\0") or name.startswith(".") or name.strip() != name:
        raise UserError(
            f"{name!r} must be a plain file name (no '/', '\\', leading '.' or spaces at the ends), "
            "e.g. wifi-2024; put folders in --out instead",
            field="name",
        )
    return name


def _check_custom_graph(sc: LoadedScenario) -> None:
    """Build the custom graph for every device count it is used with (a device missing or
    disconnected depends on the count), so a mistake stops the run before any output."""
    counts = {1 if get(e.name).single_device else n for e in sc.strategies for n in sc.devices}
    for n in sorted(counts):
        topology_from_dict(sc.network.custom, n)


def _check_fleet(sc: LoadedScenario) -> None:
    """hardware.devices: known catalog names, exactly one per device of the largest count (single, the
    baseline of every row, runs on the fastest listed: an extra device would be a baseline no row
    uses), not with hardware.device."""
    hw = sc.hardware
    if hw.devices is None:
        return
    if any(d is not None for d in hw.device):
        raise UserError(
            "give either hardware.device (one device type, or a list to sweep) or hardware.devices "
            "(a per-device mixed fleet), not both",
            field="hardware.devices",
        )
    if len(hw.devices) != max(sc.devices):
        raise UserError(
            f"lists {len(hw.devices)} device(s) but the largest device count is {max(sc.devices)}; give "
            f"exactly one catalog device per device (single, the baseline of every row, runs on the "
            f"fastest of them)",
            field="hardware.devices",
        )
    for i, name in enumerate(hw.devices):
        catalog_device(name, field=f"hardware.devices[{i}]")


def _check_headroom(sc: LoadedScenario) -> None:
    """memory.headroom_gb below the memory of every device it applies to (catalog devices, or the
    measured hardware when the catalog knows it): else nothing could ever fit."""
    hw, headroom = sc.hardware, sc.memory.headroom_gb
    names = [d for d in (hw.devices or hw.device) if d is not None]
    if not hw.devices and None in hw.device:  # device: null, the measured hardware
        names.append(profile_id(resolve_profile_path(hw.profile or "cpu", sc.base_dir)))
    for name in dict.fromkeys(names):
        memory = device_memory(name, name)
        if memory is not None and headroom >= memory:
            raise UserError(
                f"{headroom:g} GB kept free is not less than {name}'s {memory:g} GB of memory, so nothing "
                f"could fit; lower it",
                field="memory.headroom_gb",
            )


def _check_generation(sc: LoadedScenario, specs: tuple[ModelSpec, ...]) -> None:
    """output_tokens > 0 needs causal models, strategies that decode and room in the context window."""
    most = max(sc.output_tokens)
    if most <= 0:
        return
    for spec in specs:
        for entry in sc.strategies:
            check_decoding(get(entry.name), spec)
        for t in sc.tokens or [spec.tokens]:
            if t + most - 1 > spec.max_tokens:
                raise UserError(
                    f"tokens={t} plus output_tokens={most} needs a context of {t + most - 1} tokens, "
                    f"more than {spec.name}'s {spec.max_tokens}; lower either",
                    field="output_tokens",
                )


def _check_entry(entry: StrategyEntry, field: str, specs: tuple[ModelSpec, ...], sc: LoadedScenario) -> None:
    strategy = get(entry.name)
    try:
        variants = entry.variants()
    except ValidationError as exc:
        err = exc.errors()[0]
        knob = ".".join(str(p) for p in err["loc"])
        raise UserError(
            f"{err['msg']} (knob '{knob}' of {entry.name}: {strategy.Knobs.model_fields[knob].description})",
            field=f"{field}.{knob}",
        ) from None
    for knobs in variants:
        for spec in (s for s in specs if strategy.applies(s)):
            for t in sc.tokens or [spec.tokens]:
                for n in [1] if strategy.single_device else sc.devices:
                    try:
                        strategy.check(spec, n, t, knobs)
                    except KnobError as exc:
                        raise UserError(str(exc), field=f"{field}.{exc.knob}") from None


def pydantic_error(exc: ValidationError, source: str, schema: type[BaseModel] = Scenario) -> UserError:
    """One line naming the field of the first validation error (and what is allowed there)."""
    err = exc.errors()[0]
    parts = list(err["loc"])
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, KnobError):  # a strategy entry names the knob at fault
        parts.append(cause.knob)
    loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in parts).replace(".[", "[")
    if err["type"] == "extra_forbidden":
        parent = model_at(schema, [p for p in err["loc"][:-1] if not isinstance(p, int)])
        allowed = (
            ", ".join(k for k, f in parent.model_fields.items() if not f.exclude) if parent else "see docs/scenarios.md"
        )
        return UserError(f"unknown field in {source}; allowed here: {allowed}", field=loc or "scenario")
    msg = err["msg"].removeprefix("Value error, ")
    return UserError(f"{msg} (in {source}; see docs/scenarios.md)", field=loc or "scenario")


def from_dict(
    data: Any, *, name: str = "scenario", base_dir: str | Path = ".", source: str = "scenario"
) -> LoadedScenario:
    """Validate a parsed scenario mapping, resolve its models and check every point can exist."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{source} must be a mapping of scenario fields (see docs/scenarios.md)", field="scenario")
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, source) from None
    if not sc.name:
        sc.name = name
    check_name(sc.name)
    base = Path(base_dir)
    loaded = LoadedScenario(sc, base, tuple(resolve_model(m, i, base) for i, m in enumerate(sc.models)))
    check(loaded)
    return loaded


def read_yaml(path: str | Path, what: str = "scenario") -> dict:
    """A YAML file that must hold a mapping (UserError naming the file otherwise)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} file '{p}' not found; give a path such as scenarios/wifi.yaml", field=what)
    data = read_yaml_file(p, what)
    if data is not None and not isinstance(data, dict):
        raise UserError(f"'{p}' must be a mapping of {what} fields (see docs/scenarios.md)", field=what)
    return data or {}


def apply_overrides(data: dict | None, overrides: list[str]) -> dict:
    """Apply `key.sub=value` overrides (value parsed as YAML) to a raw scenario mapping."""
    data = dict(data or {})
    for item in overrides:
        if "=" not in item:
            raise UserError(f"'{item}' is not key=value, e.g. network.bandwidth_mbps=50", field="--set")
        key, _, raw = item.partition("=")
        value = parse_yaml(raw, f"--set {key}", "--set")
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


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> LoadedScenario:
    """Read, validate and check a scenario YAML file (optionally with `key=value` overrides)."""
    p = Path(path)
    data = apply_overrides(read_yaml(p), overrides or [])
    return from_dict(data, name=p.stem, base_dir=p.parent, source=str(p))
