"""Block parallelism with a sequence-parallel full layer (BP+SP).

Blocks as in bp-ag: L/Nb - 1 decoupled layers on D/N slices, then one full layer, which here
runs sequence-parallel instead of redundantly. Resharding modelled (per block):

* before the full layer, an all-gather of the D/N slices (each device contributes T x D/N x b
  bits). It leaves every device with the full T x D block input, which is exactly what SP's own
  all-gather of the block input would deliver, so no separate D-slice -> token-shard
  all-to-all and no second all-gather are needed (they would only send more bits);
* the full layer runs as SP does: attn (Q of the local T/N tokens, K and V of all T) and mlp
  on the local tokens;
* after the full layer, except after the last block, an all-to-all turns token shards back into
  D/N slices for the next block's decoupled layers: each device sends T/N x D/N x b bits to
  each other device.
"""

from __future__ import annotations

from astrasim.models import ModelSpec
from astrasim.opgraph import OpGraph
from astrasim.strategies.base import Builder, Costs, StrategyOptions
from astrasim.strategies.bp_ag import blocks, decoupled_then_gather


def build(spec: ModelSpec, costs: Costs, n_devices: int, tokens: int, options: StrategyOptions) -> OpGraph:
    n, nb = n_devices, options.nb
    per = blocks(spec, nb)
    t = lambda op: costs.seconds(spec.name, "bp-sp", n, op, tokens)  # noqa: E731
    attn, mlp = t("attn"), t("mlp")
    dec = t("decoupled_layer") if per > 1 else 0.0
    ag_bits = tokens * spec.hidden / n * options.element_bits
    a2a_bits = tokens / n * spec.hidden / n * options.element_bits
    devs = tuple(range(n))
    b = Builder(n, {"strategy": "bp-sp", "model": spec.name, "devices": n, "tokens": tokens, "nb": nb})
    prev = [""] * n
    layer = 0
    for block in range(nb):
        ag, layer = decoupled_then_gather(b, devs, per, dec, prev, layer, ag_bits, options.algorithm)
        a = [b.compute(d, "attn", layer, attn, [ag]) for d in devs]
        prev = [b.compute(d, "mlp", layer, mlp, [a[d]]) for d in devs]
        if block < nb - 1 and n > 1:
            a2a = b.comm("a2a_reshard", layer, "all_to_all", devs, a2a_bits, prev)
            prev = [a2a] * n
        layer += 1
    return b.graph
