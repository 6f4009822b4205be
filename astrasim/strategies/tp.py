"""Tensor parallelism (Megatron-LM style).

Each device holds 1/N of the heads and of the MLP columns. Per layer:
attn (partial) -> all-reduce of the T x D output (T*D*b bits) -> mlp (partial) -> all-reduce
(T*D*b bits). Nothing overlaps: every op needs the previous all-reduce.
"""

from __future__ import annotations

from astrasim.models import ModelSpec
from astrasim.opgraph import OpGraph
from astrasim.strategies.base import Builder, Costs, StrategyOptions


def build(spec: ModelSpec, costs: Costs, n_devices: int, tokens: int, options: StrategyOptions) -> OpGraph:
    n = n_devices
    t = lambda op: costs.seconds(spec.name, "tp", n, op, tokens)  # noqa: E731
    attn, mlp = t("attn"), t("mlp")
    bits = tokens * spec.hidden * options.element_bits
    devs = tuple(range(n))
    b = Builder(n, {"strategy": "tp", "model": spec.name, "devices": n, "tokens": tokens})
    prev = ""
    for layer in range(spec.layers):
        a = [b.compute(d, "attn", layer, attn, [prev]) for d in devs]
        ar1 = b.comm("ar_attn", layer, "all_reduce", devs, bits, a, algorithm=options.algorithm)
        m = [b.compute(d, "mlp", layer, mlp, [ar1]) for d in devs]
        prev = b.comm("ar_mlp", layer, "all_reduce", devs, bits, m, algorithm=options.algorithm)
    return b.graph
