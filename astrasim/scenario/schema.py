"""The scenario YAML schema (pydantic, unknown fields rejected).

Every field has a default and a description (`describe()` prints them; docs/scenarios.md embeds
the table and a test keeps it in sync). A field documented as "one value or a list" is a grid
axis: the points are the Cartesian product of all axes. Range checks live in the field types
here (written once); checks that need several fields (G divides D, N <= tokens) are in
astrasim.scenario.loading.check.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from astrasim.compute.formats import FORMATS, SHORTHAND
from astrasim.compute.hardware import MODES as COMPUTE_MODES
from astrasim.network.topology import KINDS
from astrasim.network.wifi_config import WifiConfig
from astrasim.strategies import STRATEGIES, get
from astrasim.strategies.base import ALGORITHMS, ELEMENT_BITS, WEIGHT_BITS, KnobError
from astrasim.streams import ARRIVALS

TOPOLOGIES = (*KINDS, "custom")
PARTITIONS = ("proportional", "even")


def _as_list(v: Any) -> Any:
    return v if isinstance(v, list) else [v]


def _positive_finite(v: float) -> float:
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{v} must be a positive finite number, e.g. 100")
    return v


def _in_range(lo: float, hi: float, *, lo_open: bool, hi_open: bool):
    """A range check written once, with the interval in its message: 1.5 must be in (0, 1]."""
    text = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def check(v: float) -> float:
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok or math.isnan(v):
            raise ValueError(f"{v} must be in {text}")
        return v

    return check


def _one_of(allowed: tuple):
    def check(v: Any) -> Any:
        if v not in allowed:
            raise ValueError(f"'{v}' is not one of {', '.join(map(str, allowed))}")
        return v

    return check


PositiveFloat = Annotated[float, AfterValidator(_positive_finite)]
Bandwidth = PositiveFloat
Fraction = Annotated[float, AfterValidator(_in_range(0, 1, lo_open=True, hi_open=False))]
LossRate = Annotated[float, AfterValidator(_in_range(0, 1, lo_open=False, hi_open=True))]
Seconds = Annotated[float, AfterValidator(_in_range(0, math.inf, lo_open=False, hi_open=True))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrategyEntry(_Strict):
    """One strategy and its knobs (the strategy's own, see astrasim/strategies/<name>.py); list-valued
    knobs expand into variants."""

    name: str = Field("astra", description="strategy: " + ", ".join(STRATEGIES))
    knobs: dict[str, list[Any]] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _collect_knobs(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"name": data}
        if not isinstance(data, dict):
            raise ValueError("a strategy is a name or a mapping {name, <knobs>}")
        data = dict(data)
        name = data.pop("name", "astra")
        try:
            strategy = get(str(name))
        except ValueError as exc:
            raise KnobError("name", str(exc)) from None
        allowed = list(strategy.Knobs.model_fields)
        for k in data:
            if k not in allowed:
                raise KnobError(k, f"strategy '{name}' has no knob '{k}'; its knobs: {', '.join(allowed) or 'none'}")
        knobs = {k: _as_list(v) for k, v in data.items()}
        for k, values in knobs.items():
            if not values:
                raise KnobError(
                    k,
                    f"an empty list gives strategy '{name}' no variant; give at least one value, or "
                    f"leave '{k}' out for its default",
                )
        return {"name": name, "knobs": knobs}

    def variants(self):
        """The typed knobs of every variant (pydantic ValidationError on a bad value)."""
        return get(self.name).variants(self.knobs)


class HardwareConfig(_Strict):
    """Which measured profile the compute times come from and how they are scaled."""

    profile: str | None = Field(
        None,
        description="profile id (profiles/<id>.csv) or path to a profile CSV; "
        "default: the catalog device's profile, else 'cpu'",
    )
    device: list[str | None] = Field(
        [None],
        description="catalog device(s) of profiles/devices.yaml to scale the "
        "profile to (roofline); null = the measured hardware "
        "itself; one value or a list",
    )
    speed: list[PositiveFloat] = Field(
        [1.0], description="speed factor of every device (2.0 = twice as fast as the profile); one value or a list"
    )
    speeds: list[PositiveFloat] | None = Field(
        None,
        description="heterogeneous devices: per-device speed factors "
        "(device i uses speeds[i], times `speed`); exactly "
        "one per device of the largest device count; single "
        "runs at the fastest of them",
    )
    # mixed fleets (astrasim/compute/hardware.py)
    devices: list[str] | None = Field(
        None,
        description="mixed fleet: per-device catalog devices (device i is "
        "devices[i], with its own roofline, memory and price); "
        "exactly one per device of the largest device count; "
        "single runs on the fastest of them; excludes hardware.device",
    )
    partition: Annotated[str, AfterValidator(_one_of(PARTITIONS))] = Field(
        "proportional",
        description="proportional: each device's share (tokens for sp/astra, KV heads and MLP "
        "columns for tp) in proportion to its speed; even: equal shares (the split "
        "before mixed fleets)",
    )
    # hosts and cores (processor sharing, astrasim/engine/cores.py) and the per-op dispatch cost
    hosts: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="machines the devices run on (devices in "
        "contiguous balanced blocks); null = every device its own "
        "processor",
    )
    cores_per_host: Annotated[int, Field(ge=1)] = Field(
        1,
        description="cores of every host: the computes on a host share them (processor sharing, at most one core each)",
    )
    op_overhead_s: Seconds = Field(
        0.0, description="per-op dispatch / launch cost in seconds, added to every compute; 0 = none"
    )
    message_cpu_s: Seconds | None = Field(
        None,
        description="host CPU seconds each message costs its sender and "
        "each receiver, shared with the computes there (a computing "
        "device slows down); 0 = communication costs no CPU; null = the "
        "catalog device's message_us on the calibrated model, 0 on "
        "measured profiles",
    )
    compute: Annotated[str, AfterValidator(_one_of(COMPUTE_MODES))] = Field(
        "auto",
        description="where op times come from: auto (the measured profile's rows where they measure what "
        "is asked: its own hardware, fp32 weights, no mixed fleet; else the calibrated model), "
        "measured (profile rows, roofline-scaled by datasheet peaks to other devices), "
        "calibrated (the catalog's sustained figures) or datasheet (datasheet peaks)",
    )
    speed_jitter: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0,
        description="coefficient of variation of each device's (with hosts: each host's) compute speed from "
        "one pass to the next (0 = none): the latency is then the median over 31 seeded draws, so "
        "stragglers of synchronized "
        "strategies show (astrasim.pointrun.JITTER_DRAWS)",
    )

    @field_validator("device", "speed", mode="before")
    @classmethod
    def _wrap(cls, v: Any) -> Any:
        return _as_list(v)


class MemoryConfig(_Strict):
    """What a device must keep free besides the model (astrasim/scenario/fleet.py, `fits`)."""

    headroom_gb: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        1.0,
        description="GB (10^9 bytes) of each device's memory left to the OS and runtime: a point fits when "
        "every device's footprint <= memory_gb - headroom_gb",
    )


class NetworkConfig(_Strict):
    """The network between the devices (astrasim.network.topology.build_topology)."""

    topology: list[Annotated[str, AfterValidator(_one_of(TOPOLOGIES))]] = Field(
        ["wifi"], description="mesh, switch, wifi, wifi-adhoc, ideal or custom; one value or a list"
    )
    bandwidth_mbps: list[Bandwidth] = Field(
        [100.0], description="link / channel rate in Mbps (10^6 bit/s), > 0; one value or a list"
    )
    latency_s: list[Seconds | None] = Field(
        [None], description="per-message latency alpha in seconds; null = the topology's default; one value or a list"
    )
    efficiency: list[Fraction | None] = Field(
        [None],
        description="fraction of the rate available to payload, in (0, 1]; null = the topology's default; "
        "one value or a list",
    )
    loss_rate: list[LossRate] = Field([0.0], description="packet loss rate in [0, 1); one value or a list")
    trace: str | None = Field(
        None,
        description="CSV (time_s, bandwidth_mbps) of a piecewise-constant bandwidth "
        "over time, relative to the scenario file; null = static",
    )
    broadcast: bool = Field(False, description="shared media deliver a multicast in one transmission")
    wifi: WifiConfig | None = Field(
        None,
        description="802.11 settings of wifi / wifi-adhoc (standard n/ac/ax, "
        "channel_width_mhz, mcs, spatial_streams, ...; docs/network.md "
        "'Wi-Fi'); null = bandwidth_mbps as the PHY rate of 802.11n",
    )
    custom: dict | None = Field(
        None,
        description="topology 'custom': a graph for topology_from_dict (nodes, "
        "edges with bandwidth_mbps, latency_s, duplex, medium)",
    )

    @field_validator("topology", "bandwidth_mbps", "latency_s", "efficiency", "loss_rate", mode="before")
    @classmethod
    def _wrap(cls, v: Any) -> Any:
        return _as_list(v)


class WorkloadConfig(_Strict):
    """The request stream (astrasim/streams.py: arrivals, FIFO scheduling, latency, stability)."""

    arrival: Annotated[str, AfterValidator(_one_of(ARRIVALS))] = Field(
        "single", description="single (one request on an idle cluster), periodic, poisson or trace"
    )
    rate_per_s: PositiveFloat | None = Field(None, description="requests per second (periodic, poisson)")
    requests: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        200,
        description="requests in the stream (single: always 1); a stream holds at most 1,000,000 ops in all "
        "(requests x the ops of one request: about 2.5 GB of memory), so the most requests a point "
        "may have depends on its graph (e.g. 8,849 for vit-base sp on 4 devices)",
    )
    seed: Annotated[int, Field(ge=0)] = Field(0, description="random seed of poisson arrivals")
    trace: str | None = Field(
        None,
        description="arrival: trace: CSV with a column arrival_s, relative to the "
        "scenario file; its first `requests` rows",
    )

    @model_validator(mode="after")
    def _needs(self) -> WorkloadConfig:
        if self.arrival in ("periodic", "poisson") and self.rate_per_s is None:
            raise KnobError("rate_per_s", f"arrival '{self.arrival}' needs rate_per_s, e.g. 15")
        if self.arrival == "trace" and not self.trace:
            raise KnobError("trace", "arrival 'trace' needs trace: a CSV file with a column arrival_s")
        return self


def _default_strategies() -> list[StrategyEntry]:
    return [StrategyEntry(name=n) for n in STRATEGIES]


class Scenario(_Strict):
    """A design-space sweep: models x tokens x devices x strategies x hardware x network."""

    name: str = Field("", description="scenario name (results/<name>.csv); default: the file name")
    description: str = Field("", description="free text")
    models: list[str | dict] = Field(
        ["gpt2-s"],
        description="built-in or zoo model names (vit-base, gpt2-s, "
        "gpt2-m, llama3-8b, llama3.2-1b, ...: `astrasim models`), "
        "paths to a model YAML or to a Hugging Face config.json "
        "(or its folder), or inline ModelSpec mappings; one "
        "value or a list",
    )
    tokens: list[Annotated[int, Field(ge=1)]] | None = Field(
        None,
        description="total sequence length T; null = each model's default (197 for vit-base, 1024 for gpt2); "
        "one value or a list",
    )
    devices: list[Annotated[int, Field(ge=1)]] = Field(
        [4], description="device counts N; one value or a list (single always runs on one)"
    )
    strategies: list[StrategyEntry] = Field(
        default_factory=_default_strategies,
        description="strategy names or mappings {name, <knobs>}; "
        "default: every registered strategy with its defaults (each on the models it applies to: ep on MoE models)",
    )
    hardware: HardwareConfig = Field(default_factory=HardwareConfig, description="compute profile and scaling")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="network model")
    element_bits: list[Annotated[int, AfterValidator(_one_of(ELEMENT_BITS))]] = Field(
        [32], description="bits b per full-precision element sent (32 = fp32, 16, 8); one value or a list"
    )
    causal_skip: bool | None = Field(
        None,
        description="alias of the strategies' knob causal_skip (astra): sets it "
        "for every strategy entry that has the knob and leaves it "
        "out; default: the knob's own default (true)",
    )
    algorithm: Annotated[str, AfterValidator(_one_of(ALGORITHMS))] = Field(
        "auto",
        description="collective algorithm for all-gather/all-reduce: auto (engine default), ring, direct "
        "or star (through a root)",
    )
    weight_bits: list[Annotated[int, AfterValidator(_one_of(WEIGHT_BITS))]] = Field(
        [32], description="shorthand for weight_format: 32 = fp32, 16 = fp16, 8 = q8_0, 4 = q4_0; one value or a list"
    )
    weight_format: list[Annotated[str, AfterValidator(_one_of(tuple(FORMATS)))]] | None = Field(
        None,
        description="how weights are stored and computed (astrasim/compute/formats.py): fp32, fp16, bf16, "
        "q8_0, q4_0, q4_k_m, int4 (w4a16), q40 (distributed-llama), q4f16_ft (MLC); weight memory, bytes "
        "read per token and the matmul "
        "precision; one value or a list; excludes weight_bits",
    )
    memory: MemoryConfig = Field(default_factory=MemoryConfig, description="memory fit")
    workload: list[WorkloadConfig] = Field(
        [WorkloadConfig()], description="request stream(s); one mapping or a list (a grid axis)"
    )

    @field_validator("workload", mode="before")
    @classmethod
    def _workloads(cls, v: Any) -> Any:
        return _as_list(v)

    output_tokens: list[Annotated[int, Field(ge=0)]] = Field(  # generation (docs/strategies.md, "Decode")
        [0],
        description="tokens generated after the prompt: 0 = prefill only; n > 0 also simulates the n - 1 decode "
        "steps after the first token (result columns ttft_s, tpot_s, e2e_s); one value or a list",
    )

    @model_validator(mode="after")
    def _causal_skip_alias(self) -> Scenario:
        """The scenario-level causal_skip is the default of every entry's knob of that name."""
        if self.causal_skip is not None:
            for entry in self.strategies:
                if "causal_skip" in get(entry.name).Knobs.model_fields and "causal_skip" not in entry.knobs:
                    entry.knobs["causal_skip"] = [self.causal_skip]
        return self

    @model_validator(mode="after")
    def _one_weight_axis(self) -> Scenario:
        if self.weight_format is not None and self.weight_bits != [32]:
            raise ValueError(
                "weight_format and weight_bits both given; keep weight_format (weight_bits is its shorthand)"
            )
        return self

    def weight_formats(self) -> list[str]:
        """The grid's weight formats (weight_bits as shorthand)."""
        return list(self.weight_format) if self.weight_format is not None else [SHORTHAND[b] for b in self.weight_bits]

    @field_validator(
        "models", "tokens", "devices", "element_bits", "weight_bits", "weight_format", "output_tokens", mode="before"
    )
    @classmethod
    def _wrap(cls, v: Any) -> Any:
        return v if v is None else _as_list(v)

    @field_validator("strategies", mode="before")
    @classmethod
    def _strategies(cls, v: Any) -> Any:
        return _as_list(v)


def _knob_rows() -> list[tuple[str, str, str]]:
    """strategies[].<knob> rows: each knob once, with the strategies that have it."""
    seen: dict[str, tuple[Any, str, list[str]]] = {}
    for s in STRATEGIES.values():
        for k, f in s.Knobs.model_fields.items():
            seen.setdefault(k, (f.default, f.description or "", []))[2].append(s.name)
    return [
        (f"strategies[].{k}", json.dumps(d), f"{', '.join(names)}: {desc}; one value or a list")
        for k, (d, desc, names) in seen.items()
    ]


def describe(model: type[BaseModel] = Scenario, prefix: str = "") -> list[tuple[str, str, str]]:
    """(field, default, description) for every field of the schema, nested ones dotted."""
    rows = []
    for name, f in model.model_fields.items():
        if f.exclude:
            continue
        sub = _submodel(f)
        default = f.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = "(see below)"
        elif isinstance(default, list) and default and isinstance(default[0], WorkloadConfig):
            default = "(see below)"
        elif isinstance(default, list) and default and isinstance(default[0], BaseModel):
            default = [d.name for d in default]  # type: ignore[attr-defined]
        rows.append(
            (prefix + name, json.dumps(default) if not isinstance(default, str) else repr(default), f.description or "")
        )
        if sub is not None:
            rows += describe(sub, prefix + name + ("[]." if sub in (StrategyEntry, WorkloadConfig) else "."))
    if model is StrategyEntry:
        rows += _knob_rows()
    return rows


def _submodel(f) -> type[BaseModel] | None:
    ann = f.annotation
    for a in getattr(ann, "__args__", ()) or (ann,):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def model_at(model: type[BaseModel], path: list) -> type[BaseModel] | None:
    """The nested schema model at a field path (for 'allowed here' in error messages)."""
    for name in path:
        f = model.model_fields.get(name)
        if f is None:
            return None
        nxt = _submodel(f)
        if nxt is None:
            return None
        model = nxt
    return model
