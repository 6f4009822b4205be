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
from astrasim.strategies.base import KnobError, Builder, Knobs, Strategy


class BlockKnobs(Knobs):
    nb: int = Field(1, ge=1, description="number of blocks Nb (must divide the layers)")


def decoupled_then_gather(b: Builder, devs: tuple[int, ...], per: int, dec: float, prev: list[str], layer: int,
                          bits: float, algorithm: str) -> tuple[str, int]:
    """One block's per - 1 decoupled layers on every device (no communication), then the all-gather
    of the hidden slices; returns (the all-gather's id, the index of the block's full layer)."""
    for _ in range(per - 1):
        prev = [b.compute(d, "decoupled_layer", layer, dec, [prev[d]]) for d in devs]
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
        t = self.op_seconds(costs, spec, n, tokens, knobs)
        full = t("full_layer")
        dec = t("decoupled_layer") if per > 1 else 0.0
        bits = tokens * spec.hidden / n * options.element_bits
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = [""] * n
        layer = 0
        for _ in range(knobs.nb):
            ag, layer = decoupled_then_gather(b, devs, per, dec, prev, layer, bits, options.algorithm)
            prev = [b.compute(d, "full_layer", layer, full, [ag]) for d in devs]
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
