"""Tensor parallelism (Megatron-LM style).

Each device holds 1/N of the heads (split by KV head, so N <= kv_heads) and of the MLP columns.
Per layer: attn (partial) -> all-reduce of the T x D output (T*D*b bits) -> mlp (partial) ->
all-reduce (T*D*b bits). Nothing overlaps: every op needs the previous all-reduce.

Decode (output_tokens > 1), every token and layer: attn_decode (own heads over own KV heads'
cache) -> all-reduce of ONE D-vector (D*b bits) -> mlp_decode -> all-reduce (D*b bits): 2L
all-reduces per token, tiny and latency-bound (per-message alpha, Wi-Fi access time).
Profile rows: strategy=tp, devices=N, `tokens` = cache length.

LM head (knob `head`): `split` (default) vocab-parallel, every device its 1/N of the vocabulary;
`root`: device 0 computes the whole head, as distributed-llama does (`llamaFinalize`, the vocab x dim
`wcls` matmul, runs only where `ctx->finalize` holds, the root: src/llama2-tasks.cpp @ 83745fd).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field

from astrasim.compute.analytic import DTYPE_BYTES, LayerShape, attn_block, attn_decode_block, lm_head, mlp_block
from astrasim.compute.memory import Memory, activation_bytes, kv_bytes, layer_weights, outer_weights
from astrasim.compute.partition import bounded_split, proportional_split
from astrasim.kernels.split import head_bounds, split_bounds
from astrasim.strategies.base import Knobs, Strategy


def tp_shard(spec, kv: int, columns: int) -> LayerShape:
    """The layer shard of a device holding `kv` KV heads (and their query heads) and `columns` MLP columns
    (of every expert, in an MoE model; the shared experts split in the same proportion)."""
    sh = LayerShape.of(spec)
    group = spec.heads // spec.kv_heads
    shared = round(sh.shared_mlp_hidden * columns / sh.mlp_hidden)
    return replace(sh, heads=kv * group, kv_heads=kv, mlp_hidden=columns, shared_mlp_hidden=shared)


HeadPlacement = Literal["split", "root"]


class TPKnobs(Knobs):
    head: HeadPlacement = Field(
        "split",
        description="generation: the LM head vocab-parallel over the devices "
        "(split) or whole on device 0 (root, as distributed-llama computes it)",
    )


class TensorParallel(Strategy):
    name = "tp"
    Knobs = TPKnobs
    label_knobs = {"head": "head"}
    summary = "Megatron-style heads and MLP columns split, 2 all-reduces per layer"
    ops = ("attn", "mlp")
    rank = 10
    paper_role = "baseline"
    splits_tokens = False  # every device sees every token (heads and MLP columns are split)
    color, marker = "#0072B2", "s"
    decode_ops = ("attn_decode", "mlp_decode")

    def check(self, spec, n, tokens, knobs):
        head_bounds(spec.heads, spec.kv_heads, n)

    def build(self, spec, costs, n, tokens, knobs, options):
        t = self.device_seconds(costs, spec, n, tokens, knobs, options)
        attn, mlp = [t(d, "attn") for d in range(n)], [t(d, "mlp") for d in range(n)]
        bits = tokens * spec.hidden * options.element_bits
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = ""
        for layer in range(spec.layers):
            a = [b.compute(d, "attn", layer, attn[d], [prev]) for d in devs]
            ar1 = b.comm("ar_attn", layer, "all_reduce", devs, bits, a, algorithm=options.algorithm)
            m = [b.compute(d, "mlp", layer, mlp[d], [ar1]) for d in devs]
            prev = b.comm("ar_mlp", layer, "all_reduce", devs, bits, m, algorithm=options.algorithm)
        return b.graph

    @staticmethod
    def shard_shape(spec, n) -> LayerShape:
        """Device 0's heads and MLP columns (the largest shard)."""
        sh = LayerShape.of(spec)
        (h0, h1), (k0, k1) = (bounds[0] for bounds in head_bounds(spec.heads, spec.kv_heads, n))
        f0 = split_bounds(sh.mlp_hidden, n)[0]
        shared = split_bounds(sh.shared_mlp_hidden, n)[0] if sh.shared_mlp_hidden else (0, 0)
        return replace(
            sh, heads=h1 - h0, kv_heads=k1 - k0, mlp_hidden=f0[1] - f0[0], shared_mlp_hidden=shared[1] - shared[0]
        )

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        s, sh, shard = DTYPE_BYTES[dtype], LayerShape.of(spec), self.shard_shape(spec, n)
        return {
            "attn": attn_block(shard, tokens, tokens, s, square_causal=sh.causal),
            "mlp": mlp_block(shard, tokens, s, out_dim=spec.hidden),
        }

    # -- memory and uneven head / column splits -----------------------------------------------------
    splits = "KV heads"

    def parts(self, spec, n, tokens, knobs, options):
        """KV heads per device (query heads follow their KV head), in proportion to the partition weights,
        bounded by each device's memory (with the same fraction of the MLP columns)."""
        return self._split(spec, n, tokens, options)[0]

    def _split(self, spec, n, tokens, options) -> tuple[list[int], list[int]]:
        width = LayerShape.of(spec).mlp_hidden  # each expert's, in an MoE model
        cols_of = lambda kv: max(1, round(width * kv / spec.kv_heads))  # noqa: E731
        kv = bounded_split(
            spec.kv_heads,
            n,
            options,
            lambda d, p: (
                self._memory(spec, n, tokens, tp_shard(spec, p, cols_of(p)), options.weight_bits, 0, 1.0 / n).total
            ),
        )
        if kv == proportional_split(spec.kv_heads, [1] * n):
            return kv, proportional_split(width, [1] * n)
        return kv, proportional_split(width, [float(k) for k in kv])

    def _shards(self, spec, n, options, tokens: int = 1) -> list[LayerShape]:
        kv, cols = self._split(spec, n, tokens, options)
        return [tp_shard(spec, k, c) for k, c in zip(kv, cols)]

    def _memory(self, spec, n, tokens, shard, weight_bits, output_tokens, outer_share: float) -> Memory:
        weights = spec.layers * layer_weights(shard, out_dim=spec.hidden) + outer_weights(spec) * outer_share
        return Memory(
            weights=weights * weight_bits / 8,
            kv_cache=kv_bytes(spec.layers, tokens + output_tokens, shard.kv_heads, shard.head_dim, shard),
            activations=activation_bytes(shard, tokens, tokens, tokens, tokens),
        )

    def device_op_costs(self, spec, n, tokens, knobs, parts, device, options):
        shard = self._shards(spec, n, options, tokens)[device]
        return {
            "attn": attn_block(shard, tokens, tokens, 4, square_causal=shard.causal),
            "mlp": mlp_block(shard, tokens, 4, out_dim=spec.hidden),
        }

    def memory(self, spec, n, tokens, knobs, options, output_tokens=0):
        """Each device: its heads' and columns' share of every layer (norms and output biases
        replicated), 1/N of the embeddings (vocab-parallel; head: root, device 0 all of them), the KV of
        all tokens for its KV heads."""
        root = _head(knobs) == "root"
        share = [(1.0 if d == 0 else 0.0) if root else 1.0 / n for d in range(n)]
        return [
            self._memory(spec, n, tokens, shard, options.weight_bits, output_tokens, share[d])
            for d, shard in enumerate(self._shards(spec, n, options, tokens))
        ]

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import TPBlock

        dev = TPBlock(block, n, device)
        x = torch.randn(1, tokens, block.hidden, dtype=block.dtype)
        return {"attn": lambda: dev.attn(x), "mlp": lambda: dev.mlp(x)}

    # -- LM head: vocab-parallel (every device its 1/N of the vocabulary) or whole on the root ------
    def head_cost(self, spec, n, knobs=None):
        return lm_head(
            spec.hidden, self._head_vocab(spec.vocab, n, knobs), spec.norm, 4, softcap=spec.final_softcap > 0
        )

    def head_devices(self, n, knobs=None):
        return (0,) if _head(knobs) == "root" else tuple(range(n))

    @staticmethod
    def _head_vocab(vocab: int, n: int, knobs=None) -> int:
        """Vocabulary rows of the head on a device computing it: all on the root, else ceil(V / N)."""
        return vocab if _head(knobs) == "root" else -(-vocab // n)

    # -- decode ---------------------------------------------------------------------------------
    def build_decode(self, b, spec, costs, n, prompt, steps, knobs, options):
        t = self.decode_device_seconds(costs, spec, n, knobs, options)
        bits = spec.hidden * options.element_bits
        devs = tuple(range(n))
        prev = b.sinks()
        for k in range(1, steps + 1):
            b.step(k)
            attn = [t(d, "attn_decode", prompt + k - 1) for d in devs]
            mlp = [t(d, "mlp_decode", prompt + k - 1) for d in devs]
            for layer in range(spec.layers):
                a = [b.compute(d, "attn_decode", layer, attn[d], prev) for d in devs]
                ar1 = b.comm("ar_attn", layer, "all_reduce", devs, bits, a, algorithm=options.algorithm)
                m = [b.compute(d, "mlp_decode", layer, mlp[d], [ar1]) for d in devs]
                prev = [b.comm("ar_mlp", layer, "all_reduce", devs, bits, m, algorithm=options.algorithm)]

    def decode_op_costs(self, spec, n, cache, knobs, dtype="float32"):
        s, shard = DTYPE_BYTES[dtype], self.shard_shape(spec, n)
        return {
            "attn_decode": attn_decode_block(shard, cache, s),
            "mlp_decode": mlp_block(shard, 1, s, out_dim=spec.hidden),
        }

    def device_decode_op_costs(self, spec, n, cache, knobs, device, options):
        shard = self._shards(spec, n, options, 1)[device]
        return {
            "attn_decode": attn_decode_block(shard, cache, 4),
            "mlp_decode": mlp_block(shard, 1, 4, out_dim=spec.hidden),
        }

    def decode_kernel_calls(self, block, n, cache, knobs):
        from astrasim.kernels.decode import Projections, step_calls
        from astrasim.kernels.parallel import TPBlock

        dev = TPBlock(block, n, 0)
        calls = step_calls(Projections.of_shard(dev), dev.mlp, cache, dtype=block.dtype)
        return {"attn_decode": calls["attn"], "mlp_decode": calls["mlp"]}


def _head(knobs) -> str:
    return getattr(knobs, "head", "split")


STRATEGY = TensorParallel()
