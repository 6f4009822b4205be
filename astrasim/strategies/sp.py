"""Sequence parallelism (Voltage style).

Tokens are split as torch.tensor_split does; every device holds the full model. Per layer: an
all-gather of the block input (each device contributes T/N x D x b bits), then attn (Q of the
local tokens, K and V of all T tokens) -> mlp on the local tokens. The first layer gathers too:
each device starts with only its own tokens' embeddings.
"""

from __future__ import annotations

from astrasim.models import ModelSpec
from astrasim.opgraph import OpGraph
from astrasim.strategies.base import Builder, Costs, StrategyOptions


def build(spec: ModelSpec, costs: Costs, n_devices: int, tokens: int, options: StrategyOptions) -> OpGraph:
    n = n_devices
    t = lambda op: costs.seconds(spec.name, "sp", n, op, tokens)  # noqa: E731
    attn, mlp = t("attn"), t("mlp")
    bits = tokens / n * spec.hidden * options.element_bits
    devs = tuple(range(n))
    b = Builder(n, {"strategy": "sp", "model": spec.name, "devices": n, "tokens": tokens})
    prev = [""] * n
    for layer in range(spec.layers):
        ag = b.comm("ag_input", layer, "all_gather", devs, bits, prev, algorithm=options.algorithm)
        for d in devs:
            a = b.compute(d, "attn", layer, attn, [ag])
            prev[d] = b.compute(d, "mlp", layer, mlp, [a])
    return b.graph
