"""Expert parallelism for mixture-of-experts models.

Device i holds the attention, norms, router and shared experts whole and E/N of the routed experts
(contiguous ranges, torch.tensor_split's order). Tokens are split as in sp. Per layer:
  all-gather of the block input (each device contributes T/N x D x b bits, as sp) ->
  attn (own T/N queries over all T keys, norm2, router and shared experts of the own tokens) ->
  dispatch: an all-to-all sending each token to the devices holding its k experts ->
  experts (the held experts over the token-expert pairs that land here) ->
  combine: the all-to-all back (the same bits) -> next layer.
Under uniform routing each device sends each other device (T/N) x k/N token copies:
T k / N^2 x D x b bits per pair in each all-to-all (the expected traffic; a skewed router sends more
to the devices of its favourite experts). A device's held experts see T k / N token-expert pairs and
read the weights of the E/N x (1 - (1 - k/E)^T) of them the batch touches (compute.analytic).

Decode (output_tokens > 1): the last device (it holds the prompt's last token and, having projected
K/V of every gathered token as sp does, the whole cache) runs attn_decode and routes the new token;
per layer the token's hidden state is broadcast (D x b bits) to the devices, each runs its expected
share k/N of the token's experts (experts_decode), and their outputs are gathered back (D x b bits
each): 2 messages per layer and token, latency-bound like tp's all-reduces.
Profile rows: strategy=ep (ops attn, experts; decode: attn_decode, experts_decode).
"""

from __future__ import annotations

import math
from dataclasses import replace

from astrasim.compute.analytic import (
    DTYPE_BYTES,
    LayerShape,
    attn_block,
    attn_decode_block,
    held_experts_cost,
    norm,
    residual,
    routing,
)
from astrasim.compute.memory import Memory, activation_bytes, kv_bytes, layer_weights, outer_weights
from astrasim.errors import UserError
from astrasim.kernels.split import split_bounds, token_bounds
from astrasim.strategies.base import Strategy


def held_shape(spec, n: int, device: int = 0) -> LayerShape:
    """The layer as device `device` holds it: every non-expert weight, its range of the routed experts."""
    e0, e1 = split_bounds(spec.experts, n, what="experts")[device]
    return replace(LayerShape.of(spec), local_experts=e1 - e0)


class ExpertParallel(Strategy):
    name = "ep"
    summary = "MoE experts spread over devices, tokens split; two all-to-alls per layer carry tokens to their experts"
    ops = ("attn", "experts")
    decode_ops = ("attn_decode", "experts_decode")
    rank = 35
    paper_role = ""
    color, marker = "#882255", "X"

    def applies(self, spec):
        return spec.moe

    def check(self, spec, n, tokens, knobs):
        if not spec.moe:
            raise UserError(
                f"ep spreads the experts of a mixture-of-experts model; {spec.name} has none (experts: 0); "
                f"drop ep for it or pick an MoE model (mixtral-8x7b, qwen3-30b-a3b)",
                field="strategies",
            )
        if n > spec.experts:
            raise UserError(
                f"cannot spread {spec.experts} experts of {spec.name} over {n} devices; use at most "
                f"{spec.experts} devices",
                field="devices",
            )
        token_bounds(tokens, n)

    @staticmethod
    def dispatch_bits(spec, n: int, tokens: int, element_bits: int) -> float:
        """Bits each device sends each other device in one all-to-all (uniform routing, mean token split)."""
        return tokens * spec.experts_per_token / (n * n) * spec.hidden * element_bits

    def build(self, spec, costs, n, tokens, knobs, options):
        t = self.device_seconds(costs, spec, n, tokens, knobs, options)
        attn, experts = [t(d, "attn") for d in range(n)], [t(d, "experts") for d in range(n)]
        gather_bits = tokens / n * spec.hidden * options.element_bits
        a2a_bits = self.dispatch_bits(spec, n, tokens, options.element_bits)
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = [""] * n
        for layer in range(spec.layers):
            ag = b.comm("ag_input", layer, "all_gather", devs, gather_bits, prev, algorithm=options.algorithm)
            a = [b.compute(d, "attn", layer, attn[d], [ag]) for d in devs]
            dispatch = b.comm("dispatch", layer, "all_to_all", devs, a2a_bits, a)
            e = [b.compute(d, "experts", layer, experts[d], [dispatch]) for d in devs]
            combine = b.comm("combine", layer, "all_to_all", devs, a2a_bits, e)
            prev = [combine] * n
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        """Device 0: attention of its own tokens plus their norm2 and routing; its experts over the batch."""
        a, b = token_bounds(tokens, n)[0]
        return self._layer_costs(spec, n, tokens, b - a, 0, DTYPE_BYTES[dtype])

    def device_op_costs(self, spec, n, tokens, knobs, parts, device, options):
        """Device `device`: its share of the tokens (parts) and its range of the experts."""
        return self._layer_costs(spec, n, tokens, parts[device], device, 4)

    @staticmethod
    def _layer_costs(spec, n, tokens, own, device, s):
        sh = LayerShape.of(spec)
        return {
            "attn": attn_block(sh, own, tokens, s, square_causal=False)
            + norm(own, sh.hidden, sh.norm, s)
            + routing(sh, own, sh.hidden, s),
            "experts": held_experts_cost(held_shape(spec, n, device), tokens, sh.hidden, s)
            + residual(own, sh.hidden, s),
        }

    # -- memory ---------------------------------------------------------------------------------
    def memory(self, spec, n, tokens, knobs, options, output_tokens=0):
        """Each device: the non-expert weights and embeddings whole, its range of the experts, the KV of its own
        tokens (the decoding last device: of every prompt and generated token), activations as sp plus the
        expert pairs it receives."""
        own = [b - a for a, b in token_bounds(tokens, n)]
        out = []
        for d in range(n):
            sh = held_shape(spec, n, d)
            kept = tokens + output_tokens if d == n - 1 else own[d]
            received = math.ceil(tokens * spec.experts_per_token * sh.held_experts / spec.experts)
            out.append(
                Memory(
                    weights=(spec.layers * layer_weights(sh) + outer_weights(spec)) * options.weight_bits / 8,
                    kv_cache=kv_bytes(spec.layers, kept, sh.kv_heads, sh.head_dim, sh),
                    activations=max(
                        activation_bytes(sh, tokens, own[d], tokens, own[d]),
                        activation_bytes(replace(sh, experts=0), 0, 0, 0, received),
                    ),
                )
            )
        return out

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import SPBlock

        moe = block.mlp
        dev = SPBlock(block, n, device)
        x = torch.randn(1, tokens, block.hidden, dtype=block.dtype)
        h = dev.attn(x)
        e0, e1 = split_bounds(len(moe.experts), n, what="experts")[device]
        pairs = max(1, round(tokens * moe.k * (e1 - e0) / len(moe.experts)))
        rows = torch.randn(pairs, block.hidden, dtype=block.dtype)
        chunks = list(zip(range(e0, e1), torch.tensor_split(rows, e1 - e0)))

        def attn():
            y = dev.attn(x)
            z = block.norm2(y).reshape(-1, block.hidden)
            torch.topk(torch.softmax(moe.router(z), dim=-1), moe.k, dim=-1)
            if moe.shared is not None:
                moe.shared(z)
            return y

        return {"attn": attn, "experts": lambda: [moe.experts[e](c) for e, c in chunks if len(c)] + [h]}

    # -- decode ---------------------------------------------------------------------------------
    def build_decode(self, b, spec, costs, n, prompt, steps, knobs, options):
        t = self.decode_device_seconds(costs, spec, n, knobs, options)
        last, devs = n - 1, tuple(range(n))
        bits = spec.hidden * options.element_bits
        prev = b.sinks(last)
        for k in range(1, steps + 1):
            b.step(k)
            cache = prompt + k - 1
            attn, experts = t(last, "attn_decode", cache), [t(d, "experts_decode", cache) for d in devs]
            for layer in range(spec.layers):
                a = b.compute(last, "attn_decode", layer, attn, prev)
                out = b.comm("to_experts", layer, "broadcast", devs, bits, [a], root=last)
                e = [b.compute(d, "experts_decode", layer, experts[d], [out]) for d in devs]
                prev = [b.comm("from_experts", layer, "gather", devs, bits, e, root=last)]

    def decode_op_costs(self, spec, n, cache, knobs, dtype="float32"):
        return self._decode_costs(spec, n, cache, 0, DTYPE_BYTES[dtype])

    def device_decode_op_costs(self, spec, n, cache, knobs, device, options):
        return self._decode_costs(spec, n, cache, device, 4)

    @staticmethod
    def _decode_costs(spec, n, cache, device, s):
        """attn_decode (with the token's routing) on the last device; device `device`'s expected share of the
        token's experts (k x held / E of them)."""
        sh = LayerShape.of(spec)
        return {
            "attn_decode": attn_decode_block(sh, cache, s)
            + norm(1, sh.hidden, sh.norm, s)
            + routing(sh, 1, sh.hidden, s),
            "experts_decode": held_experts_cost(held_shape(spec, n, device), 1, sh.hidden, s)
            + residual(1, sh.hidden, s),
        }


STRATEGY = ExpertParallel()
