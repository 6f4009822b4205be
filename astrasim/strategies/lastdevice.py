"""Decode on the last device after a sequence-parallel prefill: what sp and astra share.

As the ASTRA paper does it: after the distributed prefill, the last device (it holds the prompt's
last token, hence the first output token) decodes alone, whole layers, timed by the single device's
decode rows. Its KV cache of the other devices' prompt tokens (knob `decode_kv`) is either built
during the prefill ("local") or sent to it per layer in full precision ("sent").
"""

from __future__ import annotations

from typing import Literal

from astrasim.strategies.base import Builder, split_tokens

DecodeKV = Literal["local", "sent"]
DECODE_KV_HELP = (
    "generation: the decoding (last) device's KV cache of the other devices' prompt tokens: "
    "local (built during the prefill) or sent (full-precision K/V sent to it per layer)"
)


def decode_on_last_device(
    b: Builder, spec, costs, n: int, prompt: int, steps: int, element_bits: int, kv_sent_after: str | None, options=None
) -> None:
    """Decode steps on device N-1 after a sequence-parallel prefill (whole layers, single's decode
    rows). kv_sent_after: None = the cache is local; else the prefill op (per layer and device) after
    which a device's own K/V exist, and they are gathered to device N-1 layer by layer."""
    from astrasim.strategies.single import STRATEGY as one_device

    last = n - 1
    t = one_device.layer_decode_seconds(costs, spec, options)
    prev = b.sinks(last)
    layer_deps: dict[int, list[str]] = {}
    if kv_sent_after is not None and n > 1:
        own = split_tokens(prompt, n)
        bits = sum(own[:last]) / last * 2 * spec.kv_heads * spec.head_dim * element_bits
        for layer in range(spec.layers):
            deps = [b.compute_id(d, kv_sent_after, layer) for d in range(n)]
            layer_deps[layer] = [b.comm("kv_to_decoder", layer, "gather", range(n), bits, deps, root=last)]
    for k in range(1, steps + 1):
        b.step(k)
        prev = [
            one_device.decode_layers(
                b, t, last, range(spec.layers), prompt + k - 1, prev, layer_deps if k == 1 else None
            )
        ]
