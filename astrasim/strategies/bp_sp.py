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

from astrasim.compute.analytic import LayerShape
from astrasim.compute.memory import activation_bytes, kv_bytes
from astrasim.kernels.split import token_bounds
from astrasim.strategies.bp_ag import DECOUPLED_OPS, BlockParallel, decoupled_then_gather
from astrasim.strategies.sp import sp_kernel_calls, sp_layer_costs


class BlockParallelSequence(BlockParallel):
    name = "bp-sp"
    summary = "DeTransformer blocks; the full layer runs sequence-parallel"
    ops = (*DECOUPLED_OPS.values(), "attn", "mlp")
    rank = 40
    paper_role = "baseline"
    color, marker = "#56B4E9", "v"

    def check(self, spec, n, tokens, knobs):
        super().check(spec, n, tokens, knobs)
        token_bounds(tokens, n)

    def build(self, spec, costs, n, tokens, knobs, options):
        per = self.layers_per_block(spec, knobs)
        t = self.device_seconds(costs, spec, n, tokens, knobs, options)
        attn, mlp = [t(d, "attn") for d in range(n)], [t(d, "mlp") for d in range(n)]
        op = self.decoupled_op(knobs)
        dec = [t(d, op) if per > 1 else 0.0 for d in range(n)]
        ag_bits = tokens * spec.hidden / n * options.element_bits
        a2a_bits = tokens / n * spec.hidden / n * options.element_bits
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = [""] * n
        layer = 0
        for block in range(knobs.nb):
            ag, layer = decoupled_then_gather(b, devs, per, op, dec, prev, layer, ag_bits, options.algorithm)
            a = [b.compute(d, "attn", layer, attn[d], [ag]) for d in devs]
            prev = [b.compute(d, "mlp", layer, mlp[d], [a[d]]) for d in devs]
            if block < knobs.nb - 1 and n > 1:
                a2a = b.comm("a2a_reshard", layer, "all_to_all", devs, a2a_bits, prev)
                prev = [a2a] * n
            layer += 1
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        return {**self.decoupled_costs(spec, n, tokens, dtype), **sp_layer_costs(spec, n, tokens, dtype)}

    def full_layer_memory(self, spec, n, tokens):
        """The sequence-parallel full layer keeps the KV of its T/N tokens, gathers all T inputs."""
        sh = LayerShape.of(spec)
        own = -(-tokens // n)
        return kv_bytes(1, own, sh.kv_heads, sh.head_dim, sh), activation_bytes(sh, tokens, own, tokens, own)

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import BPSPBlock

        devices = self.device_blocks(block, n, BPSPBlock, device)
        x = torch.randn(1, tokens, block.hidden, dtype=block.dtype)
        return {**self.decoupled_calls(devices, x), **sp_kernel_calls(devices["full"], x)}


STRATEGY = BlockParallelSequence()
