"""An example strategy with a profiled knob of its own: ring sequence parallelism with windowed attention.

This file is the recipe of docs/strategies.md, "Adding a strategy": a module that defines one
Strategy object and exports it as STRATEGY. Shipped, it would be astrasim/strategies/ring_sp.py and
nothing else would change; here the test tests/test_example_strategy.py registers it for the
duration of the test (astrasim.strategies.registry.registered) and runs it through the graph
builder, the profile key, a synthetic profile, a sweep and its plot, and the validation harness's
per-device kernel calls.

ring-sp splits the tokens as torch.tensor_split does. Per layer, device s sends its block input
(T_s x D x b bits) to the next `hops` devices of the ring (one `broadcast` rooted at s), and each
device attends with its own queries over its own tokens and those of the `hops` devices before it
(a window of whole shards: approximate, unlike sp), then runs the MLP of its own tokens:

    attn   norm1, Q of the own tokens, K/V and attention over the window, out-proj, residual
    mlp    norm2, MLP, residual of the own tokens

`hops` changes the shape of attn, so its profile rows are keyed by it: `profiled_knobs = ("hops",)`
gives profile tables a `hops` column (0 in every other strategy's rows, and 0 when a file lacks it).
"""

from __future__ import annotations

from pydantic import Field

from astrasim.compute.analytic import DTYPE_BYTES, LayerShape, attn_block, mlp_block
from astrasim.kernels.split import token_bounds
from astrasim.strategies.base import Knobs, Strategy, split_tokens


class RingKnobs(Knobs):
    hops: int = Field(1, ge=1, description="devices before it whose tokens a device attends to (at most N - 1)")


def window(n: int, hops: int, device: int) -> list[int]:
    """The devices whose tokens `device` attends to besides its own, nearest first (ring order)."""
    return [(device - k) % n for k in range(1, min(hops, n - 1) + 1)]


class RingSP(Strategy):
    name = "ring-sp"
    summary = "tokens split, each device attends to its ring neighbours' shards (windowed attention)"
    Knobs = RingKnobs
    ops = ("attn", "mlp")  # the profile op names, in program order
    rank = 60  # display order (tables, plots)
    color, marker = "#999999", "p"  # one look per strategy: the registry refuses a taken one
    exact = False  # windowed attention changes the model's output
    profiled_knobs = ("hops",)  # a profile column: rows are measured per hops value
    profile_values = {"hops": (1, 2)}  # what `astrasim profile` measures unless --knob hops=... says
    label_knobs = {"hops": "H"}  # label 'ring-sp H=2' when hops is not the default

    def check(self, spec, n, tokens, knobs):
        token_bounds(tokens, n)  # a UserError when there are fewer tokens than devices

    def build(self, spec, costs, n, tokens, knobs, options):
        t = self.device_seconds(costs, spec, n, tokens, knobs, options)  # (device, op) -> seconds
        own = split_tokens(tokens, n)
        b = self.graph_builder(spec, n, tokens, knobs)
        prev = [""] * n
        for layer in range(spec.layers):
            sent = {}  # device s's block input goes to the devices whose window holds s
            for s in range(n if n > 1 else 0):
                to = [s, *(d for d in range(n) if s in window(n, knobs.hops, d))]
                sent[s] = b.comm(
                    f"ring_from{s}",
                    layer,
                    "broadcast",
                    to,
                    own[s] * spec.hidden * options.element_bits,
                    [prev[s]],
                    root=s,
                )
            for d in range(n):
                a = b.compute(d, "attn", layer, t(d, "attn"), [prev[d], *(sent[s] for s in window(n, knobs.hops, d))])
                prev[d] = b.compute(d, "mlp", layer, t(d, "mlp"), [a])
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        """Device 0's ops (the largest shard): own queries over own + window tokens."""
        s, sh = DTYPE_BYTES[dtype], LayerShape.of(spec)
        own = split_tokens(tokens, n)
        keys = own[0] + sum(own[j] for j in window(n, knobs.hops, 0))
        return {"attn": attn_block(sh, own[0], keys, s, square_causal=False), "mlp": mlp_block(sh, own[0], s)}

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        """The real torch calls of `device`'s ops (torch imported lazily: the simulator runs without it)."""
        import torch

        from astrasim.kernels.attention import attend

        bounds = token_bounds(tokens, n)
        x = torch.randn(1, tokens, block.hidden, dtype=block.dtype)
        x_win = torch.cat([x[:, a:b] for a, b in (bounds[j] for j in [device, *window(n, knobs.hops, device)])], 1)
        m = bounds[device][1] - bounds[device][0]

        def attn():
            h = block.norm1(x_win)
            k, v = block.project_kv(h)
            o = attend(block.project_q(h[:, :m]), k, v)
            return x_win[:, :m] + block.o_proj(block.merge_heads(o))

        h = attn()
        return {"attn": attn, "mlp": lambda: block.mlp_residual(h)}


STRATEGY = RingSP()
