"""Single device: the whole model on one device, no communication.

Per layer: attn -> mlp. Profile rows: strategy=single, devices=1 (whatever N the scenario asks).
It is the reference every speedup is measured against.

Decode (output_tokens > 1): every step runs attn_decode -> mlp_decode per layer on the device
(one new token; attn_decode attends to the cache). Its decode rows (strategy=single, devices=1,
`tokens` = cache length) also time every strategy that decodes whole layers on one device
(sp, astra, pp): `decode_layers` is that shared step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from astrasim.compute.analytic import DTYPE_BYTES, LayerShape, attn_block, attn_decode_block, mlp_block
from astrasim.strategies.base import Builder, Strategy


class Single(Strategy):
    name = "single"
    summary = "the whole model on one device"
    ops = ("attn", "mlp")
    rank = 0
    paper_role = "reference"
    color, marker = "#000000", "o"
    single_device = True
    splits_tokens = False
    decode_ops = ("attn_decode", "mlp_decode")

    def build(self, spec, costs, n, tokens, knobs, options):
        t = self.device_seconds(costs, spec, 1, tokens, knobs, options)
        attn, mlp = t(0, "attn"), t(0, "mlp")
        b = self.graph_builder(spec, 1, tokens, knobs)
        prev = ""
        for layer in range(spec.layers):
            a = b.compute(0, "attn", layer, attn, [prev])
            prev = b.compute(0, "mlp", layer, mlp, [a])
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        s, sh = DTYPE_BYTES[dtype], LayerShape.of(spec)
        return {"attn": attn_block(sh, tokens, tokens, s, square_causal=sh.causal), "mlp": mlp_block(sh, tokens, s)}

    # memory: Strategy.memory's default (the whole model and the KV of every token on one device)

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        import torch

        from astrasim.kernels.parallel import SingleBlock

        dev = SingleBlock(block)
        x = torch.randn(1, tokens, block.hidden, dtype=block.dtype)
        h = dev.attn(x)
        return {"attn": lambda: dev.attn(x), "mlp": lambda: dev.mlp(h)}

    # -- decode ---------------------------------------------------------------------------------
    def layer_decode_seconds(self, costs, spec, options=None) -> Callable[..., float]:
        """(op, cache, device=0) -> seconds of a whole layer's decode op on `device` (what decode_layers
        takes): the single device's decode rows, scaled to that device's hardware in a fleet."""
        knobs = self.knobs()
        t = self.decode_seconds(costs, spec, 1, knobs)
        fleet = options.fleet if options is not None else None
        if fleet is None:
            return lambda op, cache, device=0: t(op, cache)

        def seconds(op: str, cache: int, device: int = 0) -> float:
            c = self.decode_op_costs(spec, 1, cache, knobs).get(op)
            return t(op, cache) * fleet.factor(device, c, c, options.weight_bits)

        return seconds

    @staticmethod
    def decode_layers(
        b: Builder,
        t: Callable[[str, int, int], float],
        device: int,
        layers: Iterable[int],
        cache: int,
        deps: Iterable[str],
        layer_deps: dict[int, list[str]] | None = None,
    ) -> str:
        """One token through whole `layers` on `device` (t: layer_decode_seconds); the last op's id.
        layer_deps: more deps of a layer's attn_decode (its KV cache arriving from elsewhere)."""
        attn, mlp = t("attn_decode", cache, device), t("mlp_decode", cache, device)
        prev = list(deps)
        last = ""
        for layer in layers:
            a = b.compute(device, "attn_decode", layer, attn, prev + (layer_deps or {}).get(layer, []))
            last = b.compute(device, "mlp_decode", layer, mlp, [a])
            prev = [last]
        return last

    def build_decode(self, b, spec, costs, n, prompt, steps, knobs, options):
        t = self.layer_decode_seconds(costs, spec, options)
        prev = b.sinks(0)
        for k in range(1, steps + 1):
            b.step(k)
            prev = [self.decode_layers(b, t, 0, range(spec.layers), prompt + k - 1, prev)]

    def decode_op_costs(self, spec, n, cache, knobs, dtype="float32"):
        s, sh = DTYPE_BYTES[dtype], LayerShape.of(spec)
        return {"attn_decode": attn_decode_block(sh, cache, s), "mlp_decode": mlp_block(sh, 1, s)}

    def decode_kernel_calls(self, block, n, cache, knobs):
        from astrasim.kernels.decode import Projections, step_calls

        calls = step_calls(Projections.of_block(block), block.mlp_residual, cache, dtype=block.dtype)
        return {"attn_decode": calls["attn"], "mlp_decode": calls["mlp"]}


STRATEGY = Single()
