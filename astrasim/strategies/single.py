"""Single device: the whole model on one device, no communication.

Per layer: attn -> mlp. Profile rows: strategy=single, devices=1 (whatever N the scenario asks).
It is the reference every speedup is measured against.
"""

from __future__ import annotations

from astrasim.layer_costs import DTYPE_BYTES, LayerShape, attn_block, mlp_block
from astrasim.strategies.base import Strategy


class Single(Strategy):
    name = "single"
    summary = "the whole model on one device"
    ops = ("attn", "mlp")
    rank = 0
    paper_role = "reference"
    color, marker = "#000000", "o"
    single_device = True

    def build(self, spec, costs, n, tokens, knobs, options):
        t = self.device_seconds(costs, spec, 1, tokens, knobs, options)
        attn, mlp = t(0, "attn"), t(0, "mlp")
        b = self.graph_builder(spec, 1, tokens, knobs)
        prev = ""
        for layer in range(spec.layers):
            a = b.compute(0, "attn", layer, attn, [prev])
            prev = b.compute(0, "mlp", layer, mlp, [a])
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        s, sh = DTYPE_BYTES[dtype], LayerShape.of(spec)
        return {"attn": attn_block(sh, tokens, tokens, s, square_causal=sh.causal), "mlp": mlp_block(sh, tokens, s)}

    # memory: Strategy.memory's default (the whole model and the KV of every token on one device)

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import SingleBlock

        dev = SingleBlock(block)
        x = torch.randn(1, tokens, block.hidden, dtype=block.dtype)
        h = dev.attn(x)
        return {"attn": lambda: dev.attn(x), "mlp": lambda: dev.mlp(h)}


STRATEGY = Single()
