"""Pipeline parallelism: the layers split into N contiguous stages, one per device (llama.cpp RPC,
exo, EdgeShard, PipeEdge). Exact (the original model), and each device holds only its stage's
weights and KV cache: about 1/N of the model.

Stages: the tensor_split rule over the L layers (device 0 gets the first L/N layers, and one more
while L mod N is not used up), or the layer counts of the `stages` knob ("14,6,6,6": what a
placement search chooses by dynamic programming over per-layer cost, memory and the activation
transfer, astrasim/placement/stages.py). On a mixed fleet each stage's ops are scaled to its
device (Fleet.factor of the single device's op on that hardware).
Prefill with `chunks` = C (default 1): the prompt is split into C
chunks (the tensor_split rule over the T tokens) that flow through the stages, so stage s works
on chunk j while stage s+1 works on chunk j-1 (chunked prefill). Per chunk and stage: attn -> mlp
for each of its layers, then a `p2p` of the chunk's activation (T_j x D x b bits) to the next
stage. Chunk j's attention at a layer needs the K/V of chunks 0..j-1 at that layer (a dep on
chunk j-1's attn there).

Costs: a stage runs whole layers, so every op is the single device's (its profile rows, no rows
of pp's own). A chunk of q tokens after p earlier tokens attends to p + q keys: its attn time is the
single device's attn at q tokens scaled by the analytic FLOP ratio
F(q queries over p cached + q keys) / F(q queries, square causal), which grows with p (later
chunks cost more); mlp is the single device's at q tokens. With C = 1 this is exactly the single
device's layer at T tokens.

Decode (output_tokens > 1), every token crosses every stage: the last stage's sampled token id
(TOKEN_BITS) goes to stage 0 (`p2p`), each stage runs attn_decode -> mlp_decode (single's decode
rows) for its layers and sends the token's D x b activation to the next stage.
"""

from __future__ import annotations

from pydantic import Field

from astrasim.compute.analytic import Cost, LayerShape, attention_core, linear, norm, qkv, residual
from astrasim.compute.memory import Memory, activation_bytes, kv_bytes, layer_weights, outer_weights
from astrasim.errors import UserError
from astrasim.kernels.split import split_bounds
from astrasim.strategies.base import KnobError, Knobs, Strategy, split_tokens

TOKEN_BITS = 32  # a sampled token id sent back to stage 0 in decode


class PipelineKnobs(Knobs):
    chunks: int = Field(
        1,
        ge=1,
        description="prefill chunks C flowing through the stages (1 = the whole prompt at once); at most the tokens",
    )
    stages: str = Field(
        "",
        description="layers per stage, first device first, comma-separated ('14,6,6,6'); empty: the tensor_split rule",
    )


def chunk_attn_cost(sh: LayerShape, q: int, prefix: int, s: int) -> Cost:
    """Attention of q new tokens after `prefix` cached ones (causal): their norm, Q/K/V, out-proj and
    residual, and q x prefix + q(q+1)/2 (query, key) pairs."""
    pairs = q * prefix + q * (q + 1) / 2
    return (
        norm(q, sh.hidden, sh.norm, s)
        + qkv(q, sh, s)
        + attention_core(sh.heads, sh.kv_heads, sh.head_dim, q, prefix + q, pairs, s)
        + linear(q, sh.heads * sh.head_dim, sh.hidden, s, sh.bias)
        + residual(q, sh.hidden, s)
    )


class PipelineParallel(Strategy):
    name = "pp"
    summary = "layers split into N contiguous stages; the prompt (in chunks) and every token cross them"
    Knobs = PipelineKnobs
    ops = ()  # no rows of its own: a stage's ops are the single device's (module docstring)
    rows_from = "single"
    rank = 45
    paper_role = ""
    color, marker = "#CC79A7", "P"
    label_knobs = {"chunks": "C", "stages": "L"}
    splits = "layers"
    splits_tokens = False  # the layers are split; chunks (<= T, checked below) split the prompt

    def check(self, spec, n, tokens, knobs):
        if n > spec.layers:
            raise UserError(
                f"cannot split {spec.name}'s {spec.layers} layers into {n} pipeline stages; use at most "
                f"{spec.layers} devices",
                field="devices",
            )
        if knobs.stages:
            sizes = self.stage_sizes(knobs.stages)
            if sizes is None or len(sizes) != n or sum(sizes) != spec.layers or min(sizes) < 1:
                raise KnobError(
                    "stages",
                    f"stages='{knobs.stages}' must be {n} comma-separated layer counts >= 1 "
                    f"summing to {spec.name}'s {spec.layers} layers",
                )
        if knobs.chunks > tokens:
            raise KnobError(
                "chunks", f"chunks={knobs.chunks} is more than the {tokens} prompt tokens; use at most {tokens}"
            )

    @staticmethod
    def stage_sizes(text: str) -> list[int] | None:
        """'14,6,6,6' -> [14, 6, 6, 6] (None: not a list of integers)."""
        try:
            return [int(x) for x in text.split(",")]
        except ValueError:
            return None

    def stages(self, spec, n: int, knobs=None) -> list[range]:
        """The layers of each stage (device), contiguous: the `stages` knob, else the tensor_split rule."""
        if knobs is not None and knobs.stages:
            out, start = [], 0
            for size in self.stage_sizes(knobs.stages) or []:
                out.append(range(start, start + size))
                start += size
            return out
        return [range(a, b) for a, b in split_bounds(spec.layers, n, what="layers")]

    def parts(self, spec, n, tokens, knobs, options):
        """Layers per stage."""
        return [len(r) for r in self.stages(spec, n, knobs)]

    def device_factor(self, spec, options, device: int, op: str, tokens: int) -> float:
        """Time of a whole layer's prefill `op` on `device`'s hardware over its time in the costs (1 without
        a fleet); decode: Single.layer_decode_seconds scales the same way."""
        fleet = options.fleet
        if fleet is None:
            return 1.0
        one = self._one_device()
        c = one.op_costs(spec, 1, tokens, one.knobs()).get(op)
        return fleet.factor(device, c, c, options.weight_bits)

    @staticmethod
    def _one_device():
        from astrasim.strategies.single import STRATEGY

        return STRATEGY

    def chunk_seconds(self, costs, spec, tokens: int, chunks: int) -> list[tuple[float, float]]:
        """(attn, mlp) seconds of one layer for each chunk (module docstring)."""
        one, sh = self._one_device(), LayerShape.of(spec)
        out, prefix = [], 0
        for q in split_tokens(tokens, chunks):
            ratio = chunk_attn_cost(sh, q, prefix, 4).flops / chunk_attn_cost(sh, q, 0, 4).flops
            out.append(
                (
                    costs.seconds(spec.name, one.name, 1, "attn", q) * ratio,
                    costs.seconds(spec.name, one.name, 1, "mlp", q),
                )
            )
            prefix += q
        return out

    def build(self, spec, costs, n, tokens, knobs, options):
        stages = self.stages(spec, n, knobs)
        sizes = split_tokens(tokens, knobs.chunks)
        times = self.chunk_seconds(costs, spec, tokens, knobs.chunks)
        b = self.graph_builder(spec, n, tokens, knobs)
        for j, (q, (attn, mlp)) in enumerate(zip(sizes, times)):
            b.prefix = f"chunk{j}." if knobs.chunks > 1 else ""
            arrival = ""
            for s, layers in enumerate(stages):
                prev = arrival
                fa, fm = (self.device_factor(spec, options, s, op, q) for op in ("attn", "mlp"))
                for layer in layers:
                    kv_of_earlier = f"chunk{j - 1}.L{layer}.attn.d{s}" if j > 0 else ""
                    a = b.compute(s, "attn", layer, attn * fa, [prev, kv_of_earlier])
                    prev = b.compute(s, "mlp", layer, mlp * fm, [a])
                if s < n - 1:
                    arrival = b.comm(
                        "activation", layers[-1], "p2p", (s, s + 1), q * spec.hidden * options.element_bits, [prev]
                    )
        b.prefix = ""
        return b.graph

    def build_decode(self, b, spec, costs, n, prompt, steps, knobs, options):
        one = self._one_device()
        t = one.layer_decode_seconds(costs, spec, options)  # (op, cache, device): scaled to the stage's device
        stages = self.stages(spec, n, knobs)
        bits = spec.hidden * options.element_bits
        prev = b.sinks(n - 1)
        for k in range(1, steps + 1):
            b.step(k)
            cache = prompt + k - 1
            if n > 1:
                prev = [b.comm("next_token", -1, "p2p", (n - 1, 0), TOKEN_BITS, prev)]
            for s, layers in enumerate(stages):
                last = one.decode_layers(b, t, s, layers, cache, prev)
                prev = [b.comm("activation", layers[-1], "p2p", (s, s + 1), bits, [last])] if s < n - 1 else [last]

    def memory(self, spec, n, tokens, knobs, options, output_tokens=0):
        """Each stage holds its own layers' weights and KV cache (all prompt and generated tokens) and
        the activations of one chunk; the first and last stage also the embeddings and head (all of the
        outer weights on each of the two: conservative for untied models)."""
        sh = LayerShape.of(spec)
        chunk = max(split_tokens(tokens, knobs.chunks))
        out = []
        for s, layers in enumerate(self.stages(spec, n, knobs)):
            ends = s in (0, n - 1)  # the first stage embeds, the last applies the head
            w = len(layers) * layer_weights(sh) + (outer_weights(spec) if ends else 0)
            out.append(
                Memory(
                    weights=w * options.weight_bits / 8,
                    kv_cache=kv_bytes(len(layers), tokens + output_tokens, sh.kv_heads, sh.head_dim, sh),
                    activations=activation_bytes(sh, chunk, chunk, tokens, chunk),
                )
            )
        return out

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        return {}  # no rows of its own (module docstring)

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        """A stage runs whole layers: the single device's kernels (profiled under its name)."""
        from astrasim.strategies.single import STRATEGY as one_device

        return one_device.kernel_calls(block, 1, tokens, one_device.knobs(), cls_token)


STRATEGY = PipelineParallel()
