"""What every strategy shares: the Strategy object's contract, typed knobs, build options, the
token split rule and a small graph helper.

A strategy is ONE object in ONE module of this package (`STRATEGY = MyStrategy()`), found by the
registry (astrasim.strategies.registry). It owns everything specific to it: its name, its knobs
(a pydantic model whose defaults are written once, there), its profile op names, its label, how
its op graph is built, the analytic cost of its ops, and how its per-device ops map to the real
kernels (for the profiler and the real-network harness). No other module spells a strategy's
name or knobs; docs/strategies.md, "Adding a strategy", shows the recipe.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from astrasim.compute.analytic import Cost, LayerShape, lm_head
from astrasim.compute.formats import SHORTHAND
from astrasim.compute.memory import Memory, activation_bytes, kv_bytes, model_weights
from astrasim.compute.partition import proportional_split
from astrasim.compute.profiles import ProfileKey
from astrasim.compute.roofline import Fleet
from astrasim.network.collectives import ALGORITHMS as COLLECTIVE_ALGORITHMS
from astrasim.opgraph import Algorithm, Collective, Comm, Compute, OpGraph

if TYPE_CHECKING:  # pragma: no cover
    from astrasim.models import ModelSpec

ELEMENT_BITS = (8, 16, 32)
ALGORITHMS = ("auto", *COLLECTIVE_ALGORITHMS)
WEIGHT_BITS = tuple(sorted(SHORTHAND))  # the `weight_bits` shorthand of a weight format


class Costs(Protocol):
    """Anything that answers per-op seconds (ProfileCosts, or a test double)."""

    def seconds(self, model: str, strategy: str, devices: int, op: str, tokens: int, key: ProfileKey = ()) -> float: ...


class KnobError(ValueError):
    """A variant that cannot run, naming the knob at fault (the scenario reports strategies[i].<knob>)."""

    def __init__(self, knob: str, message: str):
        super().__init__(message)
        self.knob = knob


class Knobs(BaseModel):
    """A strategy's own settings (subclass per strategy, fields with defaults and descriptions).

    Frozen and hashable so points can be cached; unknown knobs are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoKnobs(Knobs):
    """For strategies with nothing to set."""


AnyKnobs = Knobs  # the base class under a name that Strategy's own `Knobs` class attribute does not shadow


@dataclass(frozen=True)
class BuildOptions:
    """Scenario-wide settings every builder may read (not a strategy's own knobs).

    element_bits: b, the width of every full-precision element sent (32 = fp32, the paper's
    setting; 16; 8); algorithm: the collective algorithm asked of the engine ("auto" = the
    engine's default). What only one strategy reads is that strategy's knob, not an option here."""

    element_bits: int = 32
    algorithm: Algorithm = "auto"
    # memory and fleets (see Fleet): bits per stored weight (the weight format's, scales included);
    # per-device hardware and partition weights
    weight_bits: float = 32
    fleet: Fleet | None = None
    head_s: tuple[float, ...] = ()  # generation: seconds of one token's LM head on each device (0: none there)

    @property
    def uniform(self) -> bool:
        """Every device runs the given per-op time as is (no fleet: one hardware type, even split)."""
        return self.fleet is None

    def check(self) -> None:
        if self.element_bits not in ELEMENT_BITS:
            raise ValueError(f"element_bits must be one of {ELEMENT_BITS}")
        if not self.weight_bits > 0:
            raise ValueError("weight_bits must be positive")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}")


class Strategy:
    """The contract of a strategy object. Subclasses set the class attributes and implement
    `build`, `op_costs` and `kernel_calls`; the rest has sensible defaults."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    Knobs: ClassVar[type[Knobs]] = NoKnobs
    ops: ClassVar[tuple[str, ...]]  # profile op names, in program order
    rank: ClassVar[int] = 100  # display order (tables, plots, default scenario)
    color: ClassVar[str] = "0.5"  # one fixed colour per strategy in every plot
    marker: ClassVar[str] = "o"
    exact: ClassVar[bool] = True  # same accuracy as the original model, no retraining
    single_device: ClassVar[bool] = False  # always runs on one device, whatever N
    splits_tokens: ClassVar[bool] = True  # partitions the prompt's tokens over the devices (needs T >= N)
    rows_from: ClassVar[str | None] = None  # the strategy whose one-device profile rows its ops read (pp: single)
    paper_role: ClassVar[str] = ""  # in the ASTRA paper: "method", "baseline", "reference"
    profiled_knobs: ClassVar[tuple[str, ...]] = ()  # integer knobs that key profile rows (a column each)
    profile_values: ClassVar[dict[str, tuple[int, ...]]] = {}  # profiled knob -> values a profile measures by
    # default (`astrasim profile`, synthetic profiles); a profiled knob not listed: its default
    label_knobs: ClassVar[dict[str, str]] = {}  # knob -> label tag ("groups" -> "G"); a knob at its default
    label_always: ClassVar[tuple[str, ...]] = ()  # ... is left out of the label unless listed here
    splits: ClassVar[str] = "tokens"  # what `parts` splits across devices (placement pictures)

    # -- knobs and variants ------------------------------------------------------------------
    def knob_defaults(self) -> dict[str, Any]:
        return {k: f.default for k, f in self.Knobs.model_fields.items()}

    def knobs(self, **values: Any) -> AnyKnobs:
        """Typed knobs (unknown names or bad values raise pydantic's ValidationError)."""
        return self.Knobs(**values)

    def variants(self, lists: dict[str, list]) -> list[AnyKnobs]:
        """Every combination of list-valued knobs, in the order the knobs are declared."""
        names = [k for k in self.Knobs.model_fields if k in lists]
        combos = itertools.product(*(lists[k] for k in names))
        return [self.Knobs(**dict(zip(names, c))) for c in combos]

    def label(self, knobs: AnyKnobs | None = None) -> str:
        """Short name of a variant: 'astra G=16', 'bp-ag Nb=4', 'tp'."""
        knobs = knobs or self.Knobs()
        defaults = self.knob_defaults()
        parts = [self.name]
        for k, tag in self.label_knobs.items():
            v = getattr(knobs, k)
            if k in self.label_always or v != defaults[k]:
                parts.append(f"{tag}={v}")
        return " ".join(parts)

    def profile_key(self, knobs: AnyKnobs) -> ProfileKey:
        """(column, value) of each profiled knob of this variant: its profile rows' key beyond (model,
        strategy, devices, op); a profile table's other knob columns hold 0 in its rows."""
        return tuple((k, int(getattr(knobs, k))) for k in self.profiled_knobs)

    def profile_lists(self, given: dict[str, Any]) -> dict[str, list]:
        """The values of each profiled knob a profile measures: `given` (profiled knob -> values, any
        strategy's), else this strategy's profile_values; a knob in neither keeps its default."""
        return {
            k: list(given[k]) if k in given else list(self.profile_values[k])
            for k in self.profiled_knobs
            if k in given or k in self.profile_values
        }

    def profile_knobs(self, key: Any) -> AnyKnobs:
        """The knobs of a profile row (a mapping with the profiled knobs' columns); the rest default."""
        return self.Knobs(**{k: int(key[k]) for k in self.profiled_knobs})

    def profile_devices(self, n: int) -> int:
        """The device count of this strategy's profile rows at N devices."""
        return 1 if self.single_device else n

    def profile_rows(self, n: int) -> tuple[str, int]:
        """(strategy, devices) of the profile rows that this variant's ops at N devices are: its own,
        or the single device's for a strategy whose ops are another's (`rows_from`: pp)."""
        if self.rows_from:
            return self.rows_from, 1
        return self.name, self.profile_devices(n)

    def applies(self, spec: ModelSpec) -> bool:
        """Whether this strategy exists for this model at all (ep: only mixture-of-experts models). A
        scenario's grid leaves out the (model, strategy) pairs that do not apply; `check` refuses knobs."""
        return True

    def check(self, spec: ModelSpec, n: int, tokens: int, knobs: AnyKnobs) -> None:
        """Raise KnobError(knob, message with the fix) when this variant cannot run (G not dividing D),
        or UserError for a split the model does not allow (more devices than KV heads)."""

    # -- what each strategy implements ----------------------------------------------------------
    def build(
        self, spec: ModelSpec, costs: Costs, n: int, tokens: int, knobs: AnyKnobs, options: BuildOptions
    ) -> OpGraph:
        raise NotImplementedError

    def op_costs(
        self, spec: ModelSpec, n: int, tokens: int, knobs: AnyKnobs, dtype: str = "float32"
    ) -> dict[str, Cost]:
        """Analytic FLOPs and bytes of one layer's ops on device 0 (the largest shard)."""
        raise NotImplementedError

    def kernel_calls(
        self, block, n: int, tokens: int, knobs: AnyKnobs, cls_token: bool, device: int = 0
    ) -> dict[str, Callable[[], object]]:
        """Zero-argument calls running each op of `device` (0: the largest shard, what the profiler
        times) with the real torch kernels (imports torch lazily), on inputs of that device's shape
        produced by running the ops once in order. The real-network harness calls them per device
        and per layer while it walks the strategy's own OpGraph (astrasim/validation/programs.py)."""
        raise NotImplementedError

    # -- generation: decode steps after the prefill (docs/strategies.md, "Decode") --------------
    decode_ops: ClassVar[tuple[str, ...]] = ()  # profile op names of one decode step's layer, in this
    # strategy's OWN rows (empty: it reuses another strategy's decode rows, e.g. the single device's)

    def decodes(self) -> bool:
        """Whether this strategy models decode steps (it overrides build_decode)."""
        return type(self).build_decode is not Strategy.build_decode

    def build_decode(
        self,
        b: Builder,
        spec: ModelSpec,
        costs: Costs,
        n: int,
        prompt: int,
        steps: int,
        knobs: AnyKnobs,
        options: BuildOptions,
    ) -> None:
        """Append `steps` decode steps to the prefill graph held by `b`. Step k (1-based) feeds
        output token k (the prefill produced token 1) and attends to prompt + k - 1 cached tokens plus
        itself; `b.step(k)` names its ops."""
        raise NotImplementedError

    def decode_op_costs(
        self, spec: ModelSpec, n: int, cache: int, knobs: AnyKnobs, dtype: str = "float32"
    ) -> dict[str, Cost]:
        """Analytic FLOPs and bytes of one decode step's layer ops (decode_ops) with `cache` cached tokens."""
        return {}

    def decode_kernel_calls(self, block, n: int, cache: int, knobs: AnyKnobs) -> dict[str, Callable[[], object]]:
        """Zero-argument torch calls of one decode step's layer ops (decode_ops) on device 0: the new
        token attends to `cache` cached tokens plus itself."""
        return {}

    def decode_seconds(self, costs: Costs, spec: ModelSpec, n: int, knobs: AnyKnobs) -> Callable[[str, int], float]:
        """(op, cache) -> seconds of a decode-step op from this strategy's decode rows (the profile's
        `tokens` column holds the cache length; linear interpolation between measured lengths)."""
        key = self.profile_key(knobs)
        devs = self.profile_devices(n)
        has = getattr(costs, "has", None)
        for op in self.decode_ops:
            if has is not None and not has(spec.name, self.name, devs, op, key):
                from astrasim.errors import UserError

                src = Path(getattr(costs, "source", "profiles/cpu.csv"))
                out = src.parent / f"{src.stem}.decode-{spec.name}-{self.name}-n{devs}.csv"
                raise UserError(
                    f"profile '{src}' has no decode row for model={spec.name} strategy={self.name} "
                    f"devices={devs} op={op}; measure it with `astrasim profile --decode --models "
                    f"{spec.name} --strategies {self.name} --devices {devs} --tokens 1,512,1024 "
                    f"--out {out}`",
                    field="hardware.profile",
                )
        return lambda op, cache: costs.seconds(spec.name, self.name, devs, op, cache, key)

    def device_decode_op_costs(
        self, spec: ModelSpec, n: int, cache: int, knobs: AnyKnobs, device: int, options: BuildOptions
    ) -> dict[str, Cost]:
        """Analytic cost of one decode step's ops on `device` (default: device 0's, on its own hardware)."""
        return self.decode_op_costs(spec, n, cache, knobs)

    def decode_device_seconds(
        self, costs: Costs, spec: ModelSpec, n: int, knobs: AnyKnobs, options: BuildOptions
    ) -> Callable[[int, str, int], float]:
        """(device, op, cache) -> seconds of a decode-step op on that device: decode_seconds scaled like
        device_seconds (the device's own share and hardware) when the point has a fleet."""
        t = self.decode_seconds(costs, spec, n, knobs)
        if options.uniform:
            return lambda d, op, cache: t(op, cache)
        fleet = options.fleet or Fleet()
        memo: dict[tuple, float] = {}

        def seconds(d: int, op: str, cache: int) -> float:
            key = (d, op, cache)
            if key not in memo:
                ref = self.decode_op_costs(spec, n, cache, knobs).get(op)
                mine = self.device_decode_op_costs(spec, n, cache, knobs, d, options).get(op)
                memo[key] = t(op, cache) * fleet.factor(d, ref, mine, options.weight_bits)
            return memo[key]

        return seconds

    # -- helpers for builders -------------------------------------------------------------------
    def op_seconds(self, costs: Costs, spec: ModelSpec, n: int, tokens: int, knobs: AnyKnobs) -> Callable[[str], float]:
        """op -> seconds of one layer's op, from this variant's profile rows."""
        key = self.profile_key(knobs)
        devs = self.profile_devices(n)
        return lambda op: costs.seconds(spec.name, self.name, devs, op, tokens, key)

    # -- memory and uneven partitions (defaults: the whole model on every device, even split) -----
    def memory(
        self, spec: ModelSpec, n: int, tokens: int, knobs: AnyKnobs, options: BuildOptions, output_tokens: int = 0
    ) -> list[Memory]:
        """Bytes each of the n devices must hold (weights, codebooks, KV cache, peak activations of
        one layer). `output_tokens`: generated tokens whose KV the generating device also keeps.
        Default: a full replica that keeps the KV of all tokens (the single device)."""
        sh = LayerShape.of(spec)
        total = tokens + output_tokens
        one = Memory(
            weights=model_weights(spec, sh) * options.weight_bits / 8,
            kv_cache=kv_bytes(spec.layers, total, sh.kv_heads, sh.head_dim, sh),
            activations=activation_bytes(sh, tokens, tokens, tokens, tokens),
        )
        return [one] * n

    def parts(self, spec: ModelSpec, n: int, tokens: int, knobs: AnyKnobs, options: BuildOptions) -> list[int]:
        """What this strategy splits across devices (tokens by default), in proportion to the fleet's
        partition weights (even: torch.tensor_split's order)."""
        return proportional_split(tokens, options.fleet.shares if options.fleet and options.fleet.shares else [1] * n)

    def device_op_costs(
        self,
        spec: ModelSpec,
        n: int,
        tokens: int,
        knobs: AnyKnobs,
        parts: list[int],
        device: int,
        options: BuildOptions,
    ) -> dict[str, Cost]:
        """Analytic FLOPs and bytes of one layer's ops on `device` holding `parts[device]` (default:
        every device does device 0's work, as today)."""
        return self.op_costs(spec, n, tokens, knobs)

    def device_seconds(
        self, costs: Costs, spec: ModelSpec, n: int, tokens: int, knobs: AnyKnobs, options: BuildOptions
    ) -> Callable[[int, str], float]:
        """(device, op) -> seconds of one layer's op on that device. Uniform options: the profiled
        time (device 0, the largest even shard). Otherwise the profiled time scaled by the roofline
        ratio of the device's own analytic op (its share, its hardware, the weight precision) over
        the profiled op on the measured hardware (Fleet.factor; docs/strategies.md)."""
        t = self.op_seconds(costs, spec, n, tokens, knobs)
        if options.uniform:
            return lambda d, op: t(op)
        fleet = options.fleet or Fleet()
        ref = self.op_costs(spec, n, tokens, knobs)
        parts = self.parts(spec, n, tokens, knobs, options)
        mine = [self.device_op_costs(spec, n, tokens, knobs, parts, d, options) for d in range(n)]
        return lambda d, op: t(op) * fleet.factor(d, ref.get(op), mine[d].get(op), options.weight_bits)

    # -- the LM head (generation: one per produced token; astrasim.strategies.with_heads) ------------
    def head_cost(self, spec: ModelSpec, n: int, knobs: AnyKnobs | None = None) -> Cost:
        """One token's final norm, LM head and next-token embedding lookup on a device computing it
        (default: the whole vocabulary on one device)."""
        return lm_head(spec.hidden, spec.vocab, spec.norm, 4, softcap=spec.final_softcap > 0)

    def head_devices(self, n: int, knobs: AnyKnobs | None = None) -> tuple[int, ...]:
        """The devices computing the LM head (default: the last, which holds the last position)."""
        return (n - 1,)

    def graph_builder(self, spec: ModelSpec, n: int, tokens: int, knobs: AnyKnobs, **meta: Any) -> Builder:
        return Builder(
            n,
            {
                "strategy": self.name,
                "model": spec.name,
                "devices": n,
                "tokens": tokens,
                **{k: v for k, v in knobs.model_dump().items()},
                **meta,
            },
        )

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"


def split_tokens(tokens: int, n: int) -> list[int]:
    """torch.tensor_split order: the first tokens mod n devices get one more token."""
    q, r = divmod(tokens, n)
    return [q + 1 if i < r else q for i in range(n)]


class Builder:
    """Appends ops to an OpGraph with readable, unique ids ("L3.attn.d1", "L3.ar1")."""

    def __init__(self, n_devices: int, meta: dict, graph: OpGraph | None = None):
        self.graph = graph if graph is not None else OpGraph(n_devices=n_devices, meta=dict(meta))
        self.prefix = ""  # "" in the prefill, "tok3." in decode step 3 (see step)

    @classmethod
    def on(cls, graph: OpGraph) -> Builder:
        """A builder appending to an existing graph (decode steps after the prefill)."""
        return cls(graph.n_devices, graph.meta, graph)

    def step(self, k: int) -> None:
        """Name the following ops as decode step k's ("tok3.L0.attn_decode.d0")."""
        self.prefix = f"tok{k}."

    def sinks(self, device: int | None = None) -> list[str]:
        """Ops nothing depends on (the end of what is built so far), optionally only those of one
        device (its Computes and the Comms it takes part in)."""
        used = {d for op in self.graph.ops for d in op.deps}
        return [
            op.id
            for op in self.graph.ops
            if op.id not in used
            and (device is None or (op.device == device if isinstance(op, Compute) else device in op.devices))
        ]

    def compute_id(self, device: int, name: str, layer: int) -> str:
        """The id `compute` gives (or gave) that op under the current prefix."""
        tag = f"{self.prefix}L{layer}" if layer >= 0 else f"{self.prefix}final"
        return f"{tag}.{name}.d{device}"

    def compute(self, device: int, name: str, layer: int, seconds: float, deps: Iterable[str] = ()) -> str:
        return self.graph.add(
            Compute(
                self.compute_id(device, name, layer),
                device,
                float(seconds),
                tuple(d for d in deps if d),
                name=name,
                layer=layer,
            )
        )

    def comm(
        self,
        name: str,
        layer: int,
        collective: Collective,
        devices: Iterable[int],
        bits: float,
        deps: Iterable[str] = (),
        root: int | None = None,
        algorithm: Algorithm = "auto",
    ) -> str:
        tag = f"{self.prefix}L{layer}" if layer >= 0 else f"{self.prefix}final"
        return self.graph.add(
            Comm(
                f"{tag}.{name}",
                collective,
                tuple(devices),
                float(bits),
                tuple(d for d in deps if d),
                root=root,
                algorithm=algorithm,
                name=name,
                layer=layer,
            )
        )
