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
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Protocol

from pydantic import BaseModel, ConfigDict

from astrasim.opgraph import Comm, Compute, OpGraph

if TYPE_CHECKING:  # pragma: no cover
    from astrasim.models import ModelSpec
    from astrasim.profiling.costs import Cost

ELEMENT_BITS = (8, 16, 32)
ALGORITHMS = ("auto", "ring", "direct")


class Costs(Protocol):
    """Anything that answers per-op seconds (ProfileCosts, or a test double)."""

    def seconds(self, model: str, strategy: str, devices: int, op: str, tokens: int,
                groups: int = 0, codebook: int = 0) -> float: ...


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


@dataclass(frozen=True)
class BuildOptions:
    """Scenario-wide settings every builder may read (not a strategy's own knobs).

    element_bits: b, the width of every full-precision element sent (32 = fp32, the paper's
    setting; 16; 8); causal_skip: on causal models a strategy may send data only to the later
    devices that need it (ASTRA's codes); algorithm: the collective algorithm asked of the engine
    ("auto" = the engine's default)."""

    element_bits: int = 32
    causal_skip: bool = True
    algorithm: str = "auto"

    def check(self) -> None:
        if self.element_bits not in ELEMENT_BITS:
            raise ValueError(f"element_bits must be one of {ELEMENT_BITS}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}")


class Strategy:
    """The contract of a strategy object. Subclasses set the class attributes and implement
    `build`, `op_costs` and `kernel_calls`; the rest has sensible defaults."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    Knobs: ClassVar[type[Knobs]] = NoKnobs
    ops: ClassVar[tuple[str, ...]]             # profile op names, in program order
    rank: ClassVar[int] = 100                   # display order (tables, plots, default scenario)
    color: ClassVar[str] = "0.5"                # one fixed colour per strategy in every plot
    marker: ClassVar[str] = "o"
    exact: ClassVar[bool] = True                # same accuracy as the original model, no retraining
    single_device: ClassVar[bool] = False       # always runs on one device, whatever N
    paper_role: ClassVar[str] = ""              # in the ASTRA paper: "method", "baseline", "reference"
    profiled_knobs: ClassVar[tuple[str, ...]] = ()  # knobs that key profile rows (columns groups, codebook)
    label_knobs: ClassVar[dict[str, str]] = {}  # knob -> label tag ("groups" -> "G"); a knob at its default
    label_always: ClassVar[tuple[str, ...]] = ()  # ... is left out of the label unless listed here

    # -- knobs and variants ------------------------------------------------------------------
    def knob_defaults(self) -> dict[str, Any]:
        return {k: f.default for k, f in self.Knobs.model_fields.items()}

    def knobs(self, **values: Any) -> Knobs:
        """Typed knobs (unknown names or bad values raise pydantic's ValidationError)."""
        return self.Knobs(**values)

    def variants(self, lists: dict[str, list]) -> list[Knobs]:
        """Every combination of list-valued knobs, in the order the knobs are declared."""
        names = [k for k in self.Knobs.model_fields if k in lists]
        combos = itertools.product(*(lists[k] for k in names))
        return [self.Knobs(**dict(zip(names, c))) for c in combos]

    def label(self, knobs: Knobs | None = None) -> str:
        """Short name of a variant: 'astra G=16', 'bp-ag Nb=4', 'tp'."""
        knobs = knobs or self.Knobs()
        defaults = self.knob_defaults()
        parts = [self.name]
        for k, tag in self.label_knobs.items():
            v = getattr(knobs, k)
            if k in self.label_always or v != defaults[k]:
                parts.append(f"{tag}={v}")
        return " ".join(parts)

    def profile_key(self, knobs: Knobs) -> tuple[int, int]:
        """(groups, codebook) of this variant's profile rows; 0 for what the strategy lacks."""
        return tuple(int(getattr(knobs, k)) if k in self.profiled_knobs else 0  # type: ignore[return-value]
                     for k in ("groups", "codebook"))

    def profile_devices(self, n: int) -> int:
        """The device count of this strategy's profile rows at N devices."""
        return 1 if self.single_device else n

    def check(self, spec: "ModelSpec", n: int, tokens: int, knobs: Knobs) -> None:
        """Raise KnobError(knob, message with the fix) when this variant cannot run (G not dividing D),
        or UserError for a split the model does not allow (more devices than KV heads)."""

    # -- what each strategy implements ----------------------------------------------------------
    def build(self, spec: "ModelSpec", costs: Costs, n: int, tokens: int, knobs: Knobs,
              options: BuildOptions) -> OpGraph:
        raise NotImplementedError

    def op_costs(self, spec: "ModelSpec", n: int, tokens: int, knobs: Knobs, dtype: str = "float32"
                 ) -> dict[str, "Cost"]:
        """Analytic FLOPs and bytes of one layer's ops on device 0 (the largest shard)."""
        raise NotImplementedError

    def kernel_calls(self, block, n: int, tokens: int, knobs: Knobs, cls_token: bool, device: int = 0
                     ) -> dict[str, Callable[[], object]]:
        """Zero-argument calls running each op of `device` (0: the largest shard, what the profiler
        times) with the real torch kernels (imports torch lazily), on inputs of that device's shape
        produced by running the ops once in order. The real-network harness calls them per device
        and per layer while it walks the strategy's own OpGraph (astrasim/validation/programs.py)."""
        raise NotImplementedError

    # -- helpers for builders -------------------------------------------------------------------
    def op_seconds(self, costs: Costs, spec: "ModelSpec", n: int, tokens: int, knobs: Knobs) -> Callable[[str], float]:
        """op -> seconds of one layer's op, from this variant's profile rows."""
        g, k = self.profile_key(knobs)
        devs = self.profile_devices(n)
        return lambda op: costs.seconds(spec.name, self.name, devs, op, tokens, g, k)

    def graph_builder(self, spec: "ModelSpec", n: int, tokens: int, knobs: Knobs, **meta: Any) -> "Builder":
        return Builder(n, {"strategy": self.name, "model": spec.name, "devices": n, "tokens": tokens,
                           **{k: v for k, v in knobs.model_dump().items()}, **meta})

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"


def split_tokens(tokens: int, n: int) -> list[int]:
    """torch.tensor_split order: the first tokens mod n devices get one more token."""
    q, r = divmod(tokens, n)
    return [q + 1 if i < r else q for i in range(n)]


def code_bits(groups: int, codebook: int) -> float:
    """Bits per token of ASTRA's grouped VQ codes: G * log2 K."""
    return groups * math.log2(codebook)


class Builder:
    """Appends ops to an OpGraph with readable, unique ids ("L3.attn.d1", "L3.ar1")."""

    def __init__(self, n_devices: int, meta: dict):
        self.graph = OpGraph(n_devices=n_devices, meta=dict(meta))

    def compute(self, device: int, name: str, layer: int, seconds: float, deps: Iterable[str] = ()) -> str:
        tag = f"L{layer}" if layer >= 0 else "final"
        return self.graph.add(Compute(f"{tag}.{name}.d{device}", device, float(seconds),
                                      tuple(d for d in deps if d), name=name, layer=layer))

    def comm(self, name: str, layer: int, collective: str, devices: Iterable[int], bits: float,
             deps: Iterable[str] = (), root: int | None = None, algorithm: str = "auto") -> str:
        tag = f"L{layer}" if layer >= 0 else "final"
        return self.graph.add(Comm(f"{tag}.{name}", collective, tuple(devices), float(bits),  # type: ignore[arg-type]
                                   tuple(d for d in deps if d), root=root, algorithm=algorithm,  # type: ignore[arg-type]
                                   name=name, layer=layer))
