"""What every strategy builder shares: options, the token split rule, and a small graph helper."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from astrasim.opgraph import Comm, Compute, OpGraph

ELEMENT_BITS = (8, 16, 32)
ALGORITHMS = ("auto", "ring", "direct")


class Costs(Protocol):
    """Anything that answers per-op seconds (ProfileCosts, or a test double)."""

    def seconds(self, model: str, strategy: str, devices: int, op: str, tokens: int,
                groups: int = 0, codebook: int = 0) -> float: ...


@dataclass(frozen=True)
class StrategyOptions:
    """Knobs of one strategy point.

    groups, codebook: ASTRA's G and K (bits per token = G * log2 K); nb: number of blocks for
    bp-ag / bp-sp; element_bits: b, the width of every full-precision element sent (32 = fp32,
    the paper's setting; 16; 8); causal_skip: for causal models under ASTRA, device i sends its
    codes only to later devices (a multicast per sender) instead of an all-gather;
    algorithm: the collective algorithm asked of the engine ("auto" = the engine's default).
    """

    groups: int = 0
    codebook: int = 1024
    nb: int = 0
    element_bits: int = 32
    causal_skip: bool = True
    algorithm: str = "auto"

    def check(self) -> None:
        if self.element_bits not in ELEMENT_BITS:
            raise ValueError(f"element_bits must be one of {ELEMENT_BITS}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}")


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


BuilderFn = Callable[..., OpGraph]
