"""Block parallelism with all-gather (DeTransformer style, BP+AG).

The L layers form Nb blocks of L/Nb layers. Inside a block, L/Nb - 1 decoupled layers run on
each device's D/N slice of the hidden state (all T tokens) with no communication; then an
all-gather of the T x D hidden state (each device contributes T x D/N x b bits) gives every
device the full state, and one ordinary full layer runs redundantly on every device. The next
block starts from each device's slice of that output (no communication).
"""

from __future__ import annotations

from astrasim.models import ModelSpec
from astrasim.opgraph import OpGraph
from astrasim.strategies.base import Builder, Costs, StrategyOptions


def blocks(spec: ModelSpec, nb: int) -> int:
    """Layers per block; nb must divide the number of layers (checked by the scenario too)."""
    if nb <= 0 or spec.layers % nb:
        raise ValueError(f"nb={nb} must be a positive divisor of layers={spec.layers}")
    return spec.layers // nb


def decoupled_then_gather(b: Builder, devs: tuple[int, ...], per: int, dec: float, prev: list[str], layer: int,
                          bits: float, algorithm: str) -> tuple[str, int]:
    """One block's per - 1 decoupled layers on every device (no communication), then the all-gather
    of the hidden slices; returns (the all-gather's id, the index of the block's full layer)."""
    for _ in range(per - 1):
        prev = [b.compute(d, "decoupled_layer", layer, dec, [prev[d]]) for d in devs]
        layer += 1
    return b.comm("ag_hidden", layer, "all_gather", devs, bits, prev, algorithm=algorithm), layer


def build(spec: ModelSpec, costs: Costs, n_devices: int, tokens: int, options: StrategyOptions) -> OpGraph:
    n, nb = n_devices, options.nb
    per = blocks(spec, nb)
    t = lambda op: costs.seconds(spec.name, "bp-ag", n, op, tokens)  # noqa: E731
    full = t("full_layer")
    dec = t("decoupled_layer") if per > 1 else 0.0
    bits = tokens * spec.hidden / n * options.element_bits
    devs = tuple(range(n))
    b = Builder(n, {"strategy": "bp-ag", "model": spec.name, "devices": n, "tokens": tokens, "nb": nb})
    prev = [""] * n
    layer = 0
    for _ in range(nb):
        ag, layer = decoupled_then_gather(b, devs, per, dec, prev, layer, bits, options.algorithm)
        prev = [b.compute(d, "full_layer", layer, full, [ag]) for d in devs]
        layer += 1
    return b.graph
