"""Sequence parallelism (Voltage style).

Tokens are split as torch.tensor_split does; every device holds the full model. Per layer: an
all-gather of the block input (each device contributes T/N x D x b bits), then attn (Q of the
local tokens, K and V of all T tokens) -> mlp on the local tokens. The first layer gathers too:
each device starts with only its own tokens' embeddings.

Decode (output_tokens > 1), as the ASTRA paper does it: after the distributed prefill, the last
device (it holds the prompt's last token, hence the first output token) decodes alone, whole
layers, timed by the single device's decode rows (astrasim.strategies.lastdevice). Its KV cache
(knob decode_kv):
* "local" (default): already there. sp's attn projects K and V of ALL T gathered tokens on every
  device, so the last device computed the full-precision cache of every prompt token itself.
* "sent": a Voltage-style device keeps only its own tokens' K/V; after each layer's attn every
  other device sends its tokens' K and V (T_i x 2 x kv_heads x head_dim x b bits) to the last
  device (one `gather` per layer, overlapping the rest of the prefill); decode step 1's layer l
  waits for it.
"""

from __future__ import annotations

from pydantic import Field

from astrasim.compute.analytic import DTYPE_BYTES, LayerShape, attn_block, mlp_block
from astrasim.compute.memory import Memory, activation_bytes, kv_bytes, model_weights
from astrasim.compute.partition import bounded_split
from astrasim.kernels.split import token_bounds
from astrasim.strategies.base import Knobs, Strategy
from astrasim.strategies.lastdevice import DECODE_KV_HELP, DecodeKV, decode_on_last_device


class SPKnobs(Knobs):
    decode_kv: DecodeKV = Field("local", description=DECODE_KV_HELP)


def sp_layer_costs(spec, n: int, tokens: int, dtype: str, own: int | None = None) -> dict:
    """attn (own T/N queries over all T keys, explicit mask) and mlp of device 0's tokens (or `own`)."""
    s, sh = DTYPE_BYTES[dtype], LayerShape.of(spec)
    if own is None:
        a, b = token_bounds(tokens, n)[0]
        own = b - a
    return {"attn": attn_block(sh, own, tokens, s, square_causal=False), "mlp": mlp_block(sh, own, s)}


def sp_memory(spec, tokens: int, own: int, weight_bits: int, kept: int) -> Memory:
    """A full replica that gathers the T-token block input and keeps the KV of `kept` tokens."""
    sh = LayerShape.of(spec)
    return Memory(
        weights=model_weights(spec, sh) * weight_bits / 8,
        kv_cache=kv_bytes(spec.layers, kept, sh.kv_heads, sh.head_dim, sh),
        activations=activation_bytes(sh, tokens, own, tokens, own),
    )


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
    Knobs = SPKnobs
    label_knobs = {"decode_kv": "kv"}

    def check(self, spec, n, tokens, knobs):
        token_bounds(tokens, n)

    def build(self, spec, costs, n, tokens, knobs, options):
        t = self.device_seconds(costs, spec, n, tokens, knobs, options)
        attn, mlp = [t(d, "attn") for d in range(n)], [t(d, "mlp") for d in range(n)]
        bits = tokens / n * spec.hidden * options.element_bits  # mean contribution (uneven parts: same total)
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = [""] * n
        for layer in range(spec.layers):
            ag = b.comm("ag_input", layer, "all_gather", devs, bits, prev, algorithm=options.algorithm)
            for d in devs:
                a = b.compute(d, "attn", layer, attn[d], [ag])
                prev[d] = b.compute(d, "mlp", layer, mlp[d], [a])
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        return sp_layer_costs(spec, n, tokens, dtype)

    # -- memory and uneven token splits ----------------------------------------------------------
    def parts(self, spec, n, tokens, knobs, options):
        """Tokens per device, in proportion to speed, bounded by each device's memory."""
        return bounded_split(tokens, n, options, lambda d, p: sp_memory(spec, tokens, p, options.weight_bits, p).total)

    def device_op_costs(self, spec, n, tokens, knobs, parts, device, options):
        return sp_layer_costs(spec, n, tokens, "float32", own=parts[device])

    def memory(self, spec, n, tokens, knobs, options, output_tokens=0):
        """Full weights everywhere; each device keeps the KV of its own tokens (the last device also
        of the generated ones) and gathers the whole T-token input of a layer."""
        own = self.parts(spec, n, tokens, knobs, options)
        return [
            sp_memory(spec, tokens, own[d], options.weight_bits, own[d] + (output_tokens if d == n - 1 else 0))
            for d in range(n)
        ]

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import SPBlock

        return sp_kernel_calls(SPBlock(block, n, device), torch.randn(1, tokens, block.hidden, dtype=block.dtype))

    def build_decode(self, b, spec, costs, n, prompt, steps, knobs, options):
        decode_on_last_device(
            b,
            spec,
            costs,
            n,
            prompt,
            steps,
            options.element_bits,
            "attn" if knobs.decode_kv == "sent" else None,
            options=options,
        )


STRATEGY = SequenceParallel()
