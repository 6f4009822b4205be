"""Single device: the whole model on one device, no communication.

Per layer: attn -> mlp. Profile rows: strategy=single, devices=1 (whatever N the scenario asks).
"""

from __future__ import annotations

from astrasim.models import ModelSpec
from astrasim.opgraph import OpGraph
from astrasim.strategies.base import Builder, Costs, StrategyOptions


def build(spec: ModelSpec, costs: Costs, n_devices: int, tokens: int, options: StrategyOptions) -> OpGraph:
    t = lambda op: costs.seconds(spec.name, "single", 1, op, tokens)  # noqa: E731
    attn, mlp = t("attn"), t("mlp")
    b = Builder(1, {"strategy": "single", "model": spec.name, "devices": 1, "tokens": tokens})
    prev = ""
    for layer in range(spec.layers):
        a = b.compute(0, "attn", layer, attn, [prev])
        prev = b.compute(0, "mlp", layer, mlp, [a])
    return b.graph
