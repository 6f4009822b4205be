"""Sequence parallelism (Voltage style).

Tokens are split as torch.tensor_split does; every device holds the full model. Per layer: an
all-gather of the block input (each device contributes T/N x D x b bits), then attn (Q of the
local tokens, K and V of all T tokens) -> mlp on the local tokens. The first layer gathers too:
each device starts with only its own tokens' embeddings.
"""

from __future__ import annotations

from astrasim.kernels.split import token_bounds
from astrasim.layer_costs import DTYPE_BYTES, LayerShape, attn_block, mlp_block
from astrasim.strategies.base import Strategy


def sp_layer_costs(spec, n: int, tokens: int, dtype: str) -> dict:
    """attn (own T/N queries over all T keys, explicit mask) and mlp of device 0's tokens."""
    s, sh = DTYPE_BYTES[dtype], LayerShape.of(spec)
    a, b = token_bounds(tokens, n)[0]
    return {"attn": attn_block(sh, b - a, tokens, s, square_causal=False), "mlp": mlp_block(sh, b - a, s)}


def sp_kernel_calls(dev, x) -> dict:
    """Calls of a sequence-parallel layer (attn over all tokens, mlp of the device's own)."""
    h = dev.attn(x)
    return {"attn": lambda: dev.attn(x), "mlp": lambda: dev.mlp(h)}


class SequenceParallel(Strategy):
    name = "sp"
    summary = "tokens split, full precision, one all-gather of the block input per layer"
    ops = ("attn", "mlp")
    rank = 20
    paper_role = "baseline"
    color, marker = "#E69F00", "^"

    def check(self, spec, n, tokens, knobs):
        token_bounds(tokens, n)

    def build(self, spec, costs, n, tokens, knobs, options):
        t = self.op_seconds(costs, spec, n, tokens, knobs)
        attn, mlp = t("attn"), t("mlp")
        bits = tokens / n * spec.hidden * options.element_bits
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = [""] * n
        for layer in range(spec.layers):
            ag = b.comm("ag_input", layer, "all_gather", devs, bits, prev, algorithm=options.algorithm)
            for d in devs:
                a = b.compute(d, "attn", layer, attn, [ag])
                prev[d] = b.compute(d, "mlp", layer, mlp, [a])
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        return sp_layer_costs(spec, n, tokens, dtype)

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import SPBlock

        return sp_kernel_calls(SPBlock(block, n, device), torch.randn(1, tokens, block.hidden, dtype=block.dtype))


STRATEGY = SequenceParallel()
