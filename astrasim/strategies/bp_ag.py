"""Block parallelism with all-gather (DeTransformer style, BP+AG).

The L layers form Nb blocks of L/Nb layers. Inside a block, L/Nb - 1 decoupled layers run on
each device's D/N slice of the hidden state (all T tokens) with no communication; then an
all-gather of the T x D hidden state (each device contributes T x D/N x b bits) gives every
device the full state, and one ordinary full layer runs redundantly on every device. The next
block starts from each device's slice of that output (no communication). BP changes the
architecture (it needs retraining), so its accuracy is not the original model's.
"""

from __future__ import annotations

from pydantic import Field

from astrasim.kernels.split import head_bounds, split_bounds
from astrasim.layer_costs import DTYPE_BYTES, LayerShape, full_layer
from astrasim.strategies.base import (
    KnobError, Builder, Knobs, Memory, Strategy, activation_bytes, kv_bytes, layer_weights, outer_weights,
)


class BlockKnobs(Knobs):
    nb: int = Field(1, ge=1, description="number of blocks Nb (must divide the layers)")


def decoupled_then_gather(b: Builder, devs: tuple[int, ...], per: int, dec: list[float], prev: list[str],
                          layer: int, bits: float, algorithm: str) -> tuple[str, int]:
    """One block's per - 1 decoupled layers on every device (dec[d] seconds each, no communication),
    then the all-gather of the hidden slices; returns (the all-gather's id, the block's full layer)."""
    for _ in range(per - 1):
        prev = [b.compute(d, "decoupled_layer", layer, dec[d], [prev[d]]) for d in devs]
        layer += 1
    return b.comm("ag_hidden", layer, "all_gather", devs, bits, prev, algorithm=algorithm), layer


class BlockParallel(Strategy):
    """What bp-ag and bp-sp share: blocks of decoupled layers on D/N slices."""

    Knobs = BlockKnobs
    exact = False
    label_knobs = {"nb": "Nb"}
    label_always = ("nb",)

    def check(self, spec, n, tokens, knobs):
        if spec.layers % knobs.nb:
            raise KnobError("nb", f"Nb={knobs.nb} does not divide {spec.name}'s {spec.layers} layers; use a divisor "
                             f"such as 1 or 4")
        head_bounds(spec.heads, spec.kv_heads, n)

    def layers_per_block(self, spec, knobs) -> int:
        self.check(spec, 1, 1, knobs)
        return spec.layers // knobs.nb

    def decoupled_costs(self, spec, n, tokens, dtype):
        """A decoupled layer: a whole layer on the device's D/N slice (its heads, its MLP columns)."""
        s, sh = DTYPE_BYTES[dtype], LayerShape.of(spec)
        (h0, h1), (k0, k1) = (bounds[0] for bounds in head_bounds(spec.heads, spec.kv_heads, n))
        f0 = split_bounds(spec.mlp_hidden, n)[0]
        sl = LayerShape((h1 - h0) * sh.head_dim, h1 - h0, k1 - k0, sh.head_dim, f0[1] - f0[0], sh.activation,
                        sh.norm, sh.bias, sh.causal)
        return {"decoupled_layer": full_layer(sl, tokens, s)}

    # -- memory (even splits; a mixed fleet only scales each device's time, Strategy.device_seconds) --
    def slice_shape(self, spec, n) -> LayerShape:
        """Device 0's decoupled layer: its D/N slice, its heads, its MLP columns."""
        sh = LayerShape.of(spec)
        (h0, h1), (k0, k1) = (bounds[0] for bounds in head_bounds(spec.heads, spec.kv_heads, n))
        f0 = split_bounds(spec.mlp_hidden, n)[0]
        return LayerShape((h1 - h0) * sh.head_dim, h1 - h0, k1 - k0, sh.head_dim, f0[1] - f0[0], sh.activation,
                          sh.norm, sh.bias, sh.causal)

    def full_layer_memory(self, spec, n, tokens) -> tuple[float, float]:
        """(KV bytes of one full layer, its peak activations) on a device: bp-ag runs it on all T tokens."""
        sh = LayerShape.of(spec)
        return kv_bytes(1, tokens, sh.kv_heads, sh.head_dim), activation_bytes(sh, tokens, tokens, tokens, tokens)

    def memory(self, spec, n, tokens, knobs, options, output_tokens=0):
        """Per block: L/Nb - 1 decoupled layers on the device's D/N slice plus one whole full layer
        (every device holds it); embeddings replicated; KV of all T tokens for the slice's KV heads
        (decoupled layers) and what the full layer keeps (full_layer_memory)."""
        per = self.layers_per_block(spec, knobs)
        sh, sl = LayerShape.of(spec), self.slice_shape(spec, n)
        weights = knobs.nb * ((per - 1) * layer_weights(sl) + layer_weights(sh)) + outer_weights(spec)
        total = tokens + output_tokens
        kv_full, act_full = self.full_layer_memory(spec, n, total)
        kv = knobs.nb * ((per - 1) * kv_bytes(1, total, sl.kv_heads, sl.head_dim) + kv_full)
        act = max(act_full, activation_bytes(sl, tokens, tokens, tokens, tokens) if per > 1 else 0.0)
        return [Memory(weights=weights * options.weight_bits / 8, kv_cache=kv, activations=act)] * n

    def decoupled_calls(self, dev, x) -> dict:
        a, b = dev.d_slice
        x_slice = x[..., a:b].contiguous()
        return {"decoupled_layer": lambda: dev.decoupled_layer(x_slice)}


class BlockParallelAllGather(BlockParallel):
    name = "bp-ag"
    summary = "DeTransformer blocks; all-gather, then a redundant full layer"
    ops = ("decoupled_layer", "full_layer")
    rank = 30
    paper_role = "baseline"
    color, marker = "#009E73", "D"

    def build(self, spec, costs, n, tokens, knobs, options):
        per = self.layers_per_block(spec, knobs)
        t = self.device_seconds(costs, spec, n, tokens, knobs, options)
        full = [t(d, "full_layer") for d in range(n)]
        dec = [t(d, "decoupled_layer") if per > 1 else 0.0 for d in range(n)]
        bits = tokens * spec.hidden / n * options.element_bits
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = [""] * n
        layer = 0
        for _ in range(knobs.nb):
            ag, layer = decoupled_then_gather(b, devs, per, dec, prev, layer, bits, options.algorithm)
            prev = [b.compute(d, "full_layer", layer, full[d], [ag]) for d in devs]
            layer += 1
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        return {**self.decoupled_costs(spec, n, tokens, dtype),
                "full_layer": full_layer(LayerShape.of(spec), tokens, DTYPE_BYTES[dtype])}

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import BPAGBlock

        dev = BPAGBlock(block, n, device)
        x = torch.randn(1, tokens, block.hidden, dtype=block.dtype)
        return {**self.decoupled_calls(dev, x), "full_layer": lambda: dev.full_layer(x)}


STRATEGY = BlockParallelAllGather()
