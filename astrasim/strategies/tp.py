"""Tensor parallelism (Megatron-LM style).

Each device holds 1/N of the heads (split by KV head, so N <= kv_heads) and of the MLP columns.
Per layer: attn (partial) -> all-reduce of the T x D output (T*D*b bits) -> mlp (partial) ->
all-reduce (T*D*b bits). Nothing overlaps: every op needs the previous all-reduce.
"""

from __future__ import annotations

from astrasim.kernels.split import head_bounds, split_bounds
from astrasim.layer_costs import DTYPE_BYTES, LayerShape, attn_block, mlp_block
from astrasim.strategies.base import Strategy


class TensorParallel(Strategy):
    name = "tp"
    summary = "Megatron-style heads and MLP columns split, 2 all-reduces per layer"
    ops = ("attn", "mlp")
    rank = 10
    paper_role = "baseline"
    color, marker = "#0072B2", "s"

    def check(self, spec, n, tokens, knobs):
        head_bounds(spec.heads, spec.kv_heads, n)

    def build(self, spec, costs, n, tokens, knobs, options):
        t = self.op_seconds(costs, spec, n, tokens, knobs)
        attn, mlp = t("attn"), t("mlp")
        bits = tokens * spec.hidden * options.element_bits
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = ""
        for layer in range(spec.layers):
            a = [b.compute(d, "attn", layer, attn, [prev]) for d in devs]
            ar1 = b.comm("ar_attn", layer, "all_reduce", devs, bits, a, algorithm=options.algorithm)
            m = [b.compute(d, "mlp", layer, mlp, [ar1]) for d in devs]
            prev = b.comm("ar_mlp", layer, "all_reduce", devs, bits, m, algorithm=options.algorithm)
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        s, sh = DTYPE_BYTES[dtype], LayerShape.of(spec)
        (h0, h1), (k0, k1) = (bounds[0] for bounds in head_bounds(spec.heads, spec.kv_heads, n))
        f0 = split_bounds(spec.mlp_hidden, n)[0]
        shard = LayerShape(spec.hidden, h1 - h0, k1 - k0, sh.head_dim, f0[1] - f0[0], sh.activation, sh.norm,
                           sh.bias, sh.causal)
        return {"attn": attn_block(shard, tokens, tokens, s, square_causal=sh.causal),
                "mlp": mlp_block(shard, tokens, s, out_dim=spec.hidden)}

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import TPBlock

        dev = TPBlock(block, n, device)
        x = torch.randn(1, tokens, block.hidden, dtype=block.dtype)
        return {"attn": lambda: dev.attn(x), "mlp": lambda: dev.mlp(x)}


STRATEGY = TensorParallel()
