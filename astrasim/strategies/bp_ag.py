"""Block parallelism with all-gather (DeTransformer style, BP+AG).

The L layers form Nb blocks of L/Nb layers. Inside a block, L/Nb - 1 decoupled layers run on
each device's D/N slice of the hidden state (all T tokens) with no communication; then an
all-gather of the T x D hidden state (each device contributes T x D/N x b bits) gives every
device the full state, and one ordinary full layer runs redundantly on every device. The next
block starts from each device's slice of that output (no communication). BP changes the
architecture (it needs retraining), so its accuracy is not the original model's.

The decoupled layer's shape is the knob ``decoupled_mlp`` (astrasim.kernels.parallel, module
docstring): ``full`` (default) is DeTransformer's own: all heads, each D/(N*heads) wide, and the
MLP at its full intermediate width, ~1/N of a full layer for MLP-heavy models; ``sliced`` is
astrasim's earlier shape, the device's heads and 1/N of the MLP columns, ~1/N^2 of a full layer.
Both are measured in every profile, as two ops: ``decoupled_layer`` (full) and
``decoupled_layer_sliced``, so one profile serves both values of the knob.

Decode (output_tokens > 1; bp-ag and bp-sp alike), the same architecture one token at a time: per
block, L/Nb - 1 decoupled_decode ops (the device's D/N slice of the new token, over its slice's
KV cache; no communication), an all-gather of the token's slices (each device contributes
D/N x b bits: Nb all-gathers per token), then the block's full layer on every device
(attn_decode -> mlp_decode, the single device's decode rows): in the prefill every device
projected the full layer's K/V of all T tokens (bp-ag redundantly, bp-sp sequence-parallel), so
its cache is local. decoupled_decode rows: this strategy, devices=N, `tokens` = cache length.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field

from astrasim.compute.analytic import DTYPE_BYTES, LayerShape, attn_decode_block, full_layer, mlp_block
from astrasim.compute.memory import Memory, activation_bytes, kv_bytes, layer_weights, outer_weights
from astrasim.errors import UserError
from astrasim.kernels.split import head_bounds, split_bounds
from astrasim.opgraph import Algorithm
from astrasim.strategies.base import Builder, KnobError, Knobs, Strategy

DECOUPLED_OPS = {"full": "decoupled_layer", "sliced": "decoupled_layer_sliced"}  # knob value -> profile op


class BlockKnobs(Knobs):
    nb: int = Field(1, ge=1, description="number of blocks Nb (must divide the layers)")
    decoupled_mlp: Literal["full", "sliced"] = Field(
        "full",
        description="decoupled layer shape: full = DeTransformer's (all heads narrower, full MLP width), "
        "sliced = the device's heads and 1/N of the MLP columns",
    )


def decoupled_then_gather(
    b: Builder,
    devs: tuple[int, ...],
    per: int,
    op: str,
    dec: list[float],
    prev: list[str],
    layer: int,
    bits: float,
    algorithm: Algorithm,
) -> tuple[str, int]:
    """One block's per - 1 decoupled layers (profile op `op`, dec[d] seconds each) on every device (no
    communication), then the all-gather of the hidden slices; returns (the all-gather's id, the block's
    full layer)."""
    for _ in range(per - 1):
        prev = [b.compute(d, op, layer, dec[d], [prev[d]]) for d in devs]
        layer += 1
    return b.comm("ag_hidden", layer, "all_gather", devs, bits, prev, algorithm=algorithm), layer


class BlockParallel(Strategy):
    """What bp-ag and bp-sp share: blocks of decoupled layers on D/N slices."""

    Knobs = BlockKnobs
    exact = False
    label_knobs = {"nb": "Nb", "decoupled_mlp": "MLP"}
    label_always = ("nb",)

    def check(self, spec, n, tokens, knobs):
        if spec.layers % knobs.nb:
            raise KnobError(
                "nb", f"Nb={knobs.nb} does not divide {spec.name}'s {spec.layers} layers; use a divisor such as 1 or 4"
            )
        self.decoupled_shape(spec, n, knobs.decoupled_mlp)

    def layers_per_block(self, spec, knobs) -> int:
        self.check(spec, 1, 1, knobs)
        return spec.layers // knobs.nb

    @staticmethod
    def decoupled_op(knobs) -> str:
        """The profile op of this variant's decoupled layer."""
        return DECOUPLED_OPS[knobs.decoupled_mlp]

    @staticmethod
    def decoupled_shape(spec, n: int, mlp: str) -> LayerShape:
        """Device 0's decoupled layer (the widest slice) in shape `mlp`; UserError when N is too large
        for it (full: N <= head_dim; sliced: N <= kv_heads)."""
        sh = LayerShape.of(spec)
        if mlp == "full":
            w0, w1 = split_bounds(sh.head_dim, n, what="head dims")[0]
            return replace(sh, hidden=spec.heads * (w1 - w0), head_dim=w1 - w0)
        (h0, h1), (k0, k1) = (bounds[0] for bounds in head_bounds(spec.heads, spec.kv_heads, n))
        f0 = split_bounds(sh.mlp_hidden, n, what="MLP columns")[0]
        return replace(sh, hidden=(h1 - h0) * sh.head_dim, heads=h1 - h0, kv_heads=k1 - k0, mlp_hidden=f0[1] - f0[0])

    def _shapes(self, spec, n: int) -> tuple[str, ...]:
        """The decoupled shapes that exist at N devices (both ops are profiled where both exist)."""
        out = []
        for mlp in DECOUPLED_OPS:
            try:
                self.decoupled_shape(spec, n, mlp)
            except UserError:
                continue
            out.append(mlp)
        return tuple(out)

    def decoupled_costs(self, spec, n, tokens, dtype):
        """Both decoupled layer shapes (where they exist at N): a whole layer on the device's slice."""
        s = DTYPE_BYTES[dtype]
        return {
            DECOUPLED_OPS[m]: full_layer(self.decoupled_shape(spec, n, m), tokens, s) for m in self._shapes(spec, n)
        }

    def decoupled_calls(self, devices: dict, x) -> dict:
        """The decoupled-layer call of each of device 0's blocks (shape -> BPAGBlock/BPSPBlock), on its slice of x."""
        calls = {}
        for mlp, dev in devices.items():
            a, b = dev.d_slice
            calls[DECOUPLED_OPS[mlp]] = (lambda d, xs: lambda: d.decoupled_layer(xs))(dev, x[..., a:b].contiguous())
        return calls

    def device_blocks(self, block, n, cls, device: int = 0) -> dict:
        """The device's block of every decoupled shape that exists at N (both are profiled)."""
        return {mlp: cls(block, n, device, mlp) for mlp in self._shapes(block.spec, n)}

    # -- memory (even splits; a mixed fleet only scales each device's time, Strategy.device_seconds) --
    def full_layer_memory(self, spec, n, tokens) -> tuple[float, float]:
        """(KV bytes of one full layer, its peak activations) on a device: bp-ag runs it on all T tokens."""
        sh = LayerShape.of(spec)
        return kv_bytes(1, tokens, sh.kv_heads, sh.head_dim, sh), activation_bytes(sh, tokens, tokens, tokens, tokens)

    def memory(self, spec, n, tokens, knobs, options, output_tokens=0):
        """Per block: L/Nb - 1 decoupled layers (device 0's slice, in the knob's shape) plus one whole
        full layer (every device holds it); embeddings replicated; KV of all T tokens for the slice's
        KV heads (decoupled layers) and what the full layer keeps (full_layer_memory)."""
        per = self.layers_per_block(spec, knobs)
        sh, sl = LayerShape.of(spec), self.decoupled_shape(spec, n, knobs.decoupled_mlp)
        weights = knobs.nb * ((per - 1) * layer_weights(sl) + layer_weights(sh)) + outer_weights(spec)
        total = tokens + output_tokens
        kv_full, act_full = self.full_layer_memory(spec, n, total)
        kv = knobs.nb * ((per - 1) * kv_bytes(1, total, sl.kv_heads, sl.head_dim, sl) + kv_full)
        act = max(act_full, activation_bytes(sl, tokens, tokens, tokens, tokens) if per > 1 else 0.0)
        return [Memory(weights=weights * options.weight_bits / 8, kv_cache=kv, activations=act)] * n

    # -- decode (module docstring) ----------------------------------------------------------------
    decode_ops = ("decoupled_decode",)

    def build_decode(self, b, spec, costs, n, prompt, steps, knobs, options):
        from astrasim.strategies.single import STRATEGY as one_device

        per = self.layers_per_block(spec, knobs)
        t = self.decode_seconds(costs, spec, n, knobs) if per > 1 else None
        t_full = one_device.layer_decode_seconds(costs, spec, options)
        bits = spec.hidden / n * options.element_bits
        devs = tuple(range(n))
        prev = [b.sinks(d) for d in devs]
        for k in range(1, steps + 1):
            b.step(k)
            cache = prompt + k - 1
            dec = t("decoupled_decode", cache) if t else 0.0
            layer = 0
            for _ in range(knobs.nb):
                for _ in range(per - 1):
                    prev = [[b.compute(d, "decoupled_decode", layer, dec, prev[d])] for d in devs]
                    layer += 1
                ag = b.comm(
                    "ag_hidden",
                    layer,
                    "all_gather",
                    devs,
                    bits,
                    [p for ps in prev for p in ps],
                    algorithm=options.algorithm,
                )
                prev = [[one_device.decode_layers(b, t_full, d, [layer], cache, [ag])] for d in devs]
                layer += 1

    def decode_op_costs(self, spec, n, cache, knobs, dtype="float32"):
        s, sl = DTYPE_BYTES[dtype], self.decoupled_shape(spec, n, knobs.decoupled_mlp)
        return {"decoupled_decode": attn_decode_block(sl, cache, s) + mlp_block(sl, 1, s)}

    def decode_kernel_calls(self, block, n, cache, knobs):
        from astrasim.kernels.decode import Projections, step_calls
        from astrasim.kernels.parallel import decoupled_block

        sub, _ = decoupled_block(block, n, 0, knobs.decoupled_mlp)
        calls = step_calls(Projections.of_block(sub), sub.mlp_residual, cache, dtype=block.dtype)
        attn, mlp = calls["attn"], calls["mlp"]
        return {"decoupled_decode": lambda: (attn(), mlp())}


class BlockParallelAllGather(BlockParallel):
    name = "bp-ag"
    summary = "DeTransformer blocks; all-gather, then a redundant full layer"
    ops = (*DECOUPLED_OPS.values(), "full_layer")
    rank = 30
    paper_role = "baseline"
    color, marker = "#009E73", "D"

    def build(self, spec, costs, n, tokens, knobs, options):
        per = self.layers_per_block(spec, knobs)
        t = self.device_seconds(costs, spec, n, tokens, knobs, options)
        full = [t(d, "full_layer") for d in range(n)]
        op = self.decoupled_op(knobs)
        dec = [t(d, op) if per > 1 else 0.0 for d in range(n)]
        bits = tokens * spec.hidden / n * options.element_bits
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = [""] * n
        layer = 0
        for _ in range(knobs.nb):
            ag, layer = decoupled_then_gather(b, devs, per, op, dec, prev, layer, bits, options.algorithm)
            prev = [b.compute(d, "full_layer", layer, full[d], [ag]) for d in devs]
            layer += 1
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        return {
            **self.decoupled_costs(spec, n, tokens, dtype),
            "full_layer": full_layer(LayerShape.of(spec), tokens, DTYPE_BYTES[dtype]),
        }

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import BPAGBlock

        devices = self.device_blocks(block, n, BPAGBlock, device)
        x = torch.randn(1, tokens, block.hidden, dtype=block.dtype)
        return {**self.decoupled_calls(devices, x), "full_layer": lambda: devices["full"].full_layer(x)}


STRATEGY = BlockParallelAllGather()
