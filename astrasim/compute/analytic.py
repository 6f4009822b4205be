"""Analytic floating-point operations and minimal memory traffic of a Transformer layer's pieces
(each strategy composes its ops from these in its `op_costs`).

`flops` counts multiply and add separately (a [m, k] x [k, n] matmul is 2mkn), plus the
elementwise work of norms (LayerNorm 8, RMSNorm 5 per element), activations (GELU 8, SwiGLU 6,
GeGLU 9 per hidden unit), residual adds (1), softmax (5 per score, 3 more with soft-capping) and
the ASTRA merge. Attention is counted
over the (query, key) pairs its kernel computes: a square causal attention (own tokens, fused
causal kernel) computes T(T+1)/2 pairs, an attention with an explicit mask (sp: own queries over
all T keys) the full rectangle; a sliding window bounds each query's keys in the share of layers
that use it (costs are those of the average layer).

Mixture of experts (docs/models.md): a token runs the router, its k experts and the shared
experts. The weights an MoE layer reads are those of the distinct experts its batch routes to;
under uniform routing a batch of T tokens touches E x (1 - (1 - k/E)^T) of E experts in
expectation (one decode token: k; a 1024-token prefill of Mixtral or Qwen3-MoE: all of them).

`bytes` is the minimal traffic: weights read once, activations read and written once (attention
as a fused kernel: Q, K, V read, output written; VQ: embeddings, codebook, norms read, int64 codes
written), in the element size of the dtype. Both are used for roofline scaling to other hardware.
`kernels` counts the kernels an op launches (one per linear, norm, residual, activation and fused
attention), each paying the device's dispatch cost in the calibrated model (astrasim.compute.calibrated).
`weights` is the part of `bytes` that is weights (linear layers and norms), so a weight precision
other than the profiled dtype can rescale the memory-bound part (astrasim.compute.roofline.Fleet).
"""

from __future__ import annotations

from dataclasses import dataclass

from astrasim.models import ModelSpec

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
INDEX_BYTES = 8  # codes are int64 tensors


@dataclass(frozen=True)
class Cost:
    flops: float = 0.0
    bytes: float = 0.0
    weights: float = 0.0  # bytes of weights among `bytes`
    kernels: float = 0.0  # kernels launched (each pays the device's dispatch cost in the calibrated model)

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.flops + other.flops,
            self.bytes + other.bytes,
            self.weights + other.weights,
            self.kernels + other.kernels,
        )


@dataclass(frozen=True)
class LayerShape:
    """The dimensions a layer's kernels see (a full layer, or one device's shard / slice of it).

    mlp_hidden is the MLP's width, of each expert in an MoE layer. The fields after `causal` carry
    the architecture details of ModelSpec (astrasim.models): qkv_bias (None: as bias), qk_norm,
    sandwich_norm, the sliding window and the share of layers using it (costs are per average
    layer), attention soft-capping, and the experts: `experts` routed ones of which each token takes
    `experts_per_token`, `local_experts` of them held by this device (None: all; ep holds a share),
    the shared experts' total width and their gate."""

    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp_hidden: int
    activation: str
    norm: str
    bias: bool
    causal: bool
    qkv_bias: bool | None = None
    qk_norm: bool = False
    sandwich_norm: bool = False
    window: int = 0
    window_share: float = 0.0
    softcap: bool = False
    experts: int = 0
    experts_per_token: int = 0
    local_experts: int | None = None
    shared_mlp_hidden: int = 0
    shared_gate: bool = False

    def __post_init__(self) -> None:
        if self.qkv_bias is None:
            object.__setattr__(self, "qkv_bias", self.bias)

    @property
    def gated(self) -> bool:
        return self.activation in GATED

    @property
    def held_experts(self) -> int:
        return self.experts if self.local_experts is None else self.local_experts

    @classmethod
    def of(cls, spec: ModelSpec) -> LayerShape:
        return cls(
            spec.hidden,
            spec.heads,
            spec.kv_heads,
            spec.head_dim,
            spec.expert_mlp_hidden if spec.moe else spec.mlp_hidden,
            spec.activation,
            spec.norm,
            bool(spec.bias),
            spec.causal,
            qkv_bias=spec.qkv_bias,
            qk_norm=spec.qk_norm,
            sandwich_norm=spec.sandwich_norm,
            window=spec.sliding_window,
            window_share=spec.window_layers / spec.layers if spec.sliding_window else 0.0,
            softcap=spec.attn_softcap > 0,
            experts=spec.experts,
            experts_per_token=spec.experts_per_token,
            shared_mlp_hidden=spec.shared_experts * spec.shared_expert_mlp_hidden,
            shared_gate=spec.shared_expert_gate,
        )


GATED = ("swiglu", "geglu")
ACTIVATION_FLOPS = {"gelu": 8.0, "swiglu": 6.0, "geglu": 9.0}  # per hidden unit (GeGLU: tanh-GELU + the product)
SOFTCAP_FLOPS = 3.0  # per attention score: divide, tanh, multiply


def causal_pairs(t: float, window: int = 0) -> float:
    """(query, key) pairs of a causal attention over t tokens, each query seeing at most `window` keys."""
    if not window or t <= window:
        return t * (t + 1) / 2
    return window * (window + 1) / 2 + (t - window) * window


def expected_experts(held: int, experts: int, per_token: int, tokens: float) -> float:
    """Expected distinct experts, among `held` of `experts`, that `tokens` tokens route to when each token
    picks `per_token` experts uniformly at random: held * (1 - (1 - k/E)^T). One token: k*held/E; a long
    prefill: every held expert. This is how many experts' weights a batch of T tokens reads."""
    if experts <= 0 or tokens <= 0:
        return 0.0
    return held * (1.0 - (1.0 - per_token / experts) ** tokens)


def linear(m: float, din: int, dout: int, s: int, bias: bool) -> Cost:
    w = s * (din * dout + (dout if bias else 0))
    return Cost(2.0 * m * din * dout + (m * dout if bias else 0), s * (m * din + m * dout) + w, w, 1.0)


def norm(m: int, d: int, kind: str, s: int) -> Cost:
    return Cost((8.0 if kind == "layernorm" else 5.0) * m * d, s * (2.0 * m * d + 2 * d), s * 2.0 * d, 1.0)


def residual(m: int, d: int, s: int) -> Cost:
    return Cost(float(m * d), 3.0 * s * m * d, 0.0, 1.0)


def attention_core(
    heads: int, kv_heads: int, hd: int, tq: float, tk: float, pairs: float, s: int, softcap: bool = False
) -> Cost:
    score = 5.0 + (SOFTCAP_FLOPS if softcap else 0.0)
    return Cost(
        4.0 * heads * pairs * hd + score * heads * pairs,
        s * (2.0 * heads * tq * hd + 2.0 * kv_heads * tk * hd),
        0.0,
        1.0,
    )


def attention_pairs(sh: LayerShape, tq: int, tk: int, square_causal: bool) -> float:
    """Pairs an attention computes (square causal: tq(tq+1)/2; with a mask: the tq x tk rectangle), each
    query bounded by the sliding window in the windowed share of the layers."""
    full = tq * (tq + 1) / 2 if square_causal else float(tq * tk)
    if not sh.window:
        return full
    windowed = causal_pairs(tq, sh.window) if square_causal else float(tq * min(tk, sh.window))
    return sh.window_share * windowed + (1 - sh.window_share) * full


def attended_keys(sh: LayerShape, keys: int) -> float:
    """Keys one decode query reads, averaged over the layers (a windowed layer keeps the last `window`)."""
    if not sh.window:
        return float(keys)
    return sh.window_share * min(keys, sh.window) + (1 - sh.window_share) * keys


def qkv(m: int, sh: LayerShape, s: int, *, q: bool = True, kv: bool = True) -> Cost:
    """Q and/or K/V projections of m tokens (with Qwen3's per-head RMSNorm of q and k)."""
    out = Cost()
    if q:
        out += linear(m, sh.hidden, sh.heads * sh.head_dim, s, bool(sh.qkv_bias))
        if sh.qk_norm:
            out += norm(m * sh.heads, sh.head_dim, "rmsnorm", s)
    if kv:
        out += linear(m, sh.hidden, 2 * sh.kv_heads * sh.head_dim, s, bool(sh.qkv_bias))
        if sh.qk_norm:
            out += norm(m * sh.kv_heads, sh.head_dim, "rmsnorm", s)
    return out


def attn_block(sh: LayerShape, tq: int, tk: int, s: int, *, square_causal: bool) -> Cost:
    """norm1 (tk tokens) + Q (tq tokens) + K/V (tk tokens) + attention + out-proj + residual."""
    pairs = attention_pairs(sh, tq, tk, square_causal)
    return (
        norm(tk, sh.hidden, sh.norm, s)
        + qkv(tq, sh, s, kv=False)
        + qkv(tk, sh, s, q=False)
        + attention_core(sh.heads, sh.kv_heads, sh.head_dim, tq, tk, pairs, s, sh.softcap)
        + linear(tq, sh.heads * sh.head_dim, sh.hidden, s, sh.bias)
        + post_norm(tq, sh, s)
        + residual(tq, sh.hidden, s)
    )


def post_norm(m: int, sh: LayerShape, s: int) -> Cost:
    """Gemma 2's norm after attention / after the MLP (nothing for other models)."""
    return norm(m, sh.hidden, sh.norm, s) if sh.sandwich_norm else Cost()


def attn_decode_block(sh: LayerShape, cache: int, s: int) -> Cost:
    """One decode step's attention: norm1, Q/K/V and out-proj of ONE token (every weight read once),
    attention over cache + 1 keys (the cached K/V read once; a windowed layer only its window), residual."""
    keys = attended_keys(sh, cache + 1)
    return (
        norm(1, sh.hidden, sh.norm, s)
        + qkv(1, sh, s)
        + attention_core(sh.heads, sh.kv_heads, sh.head_dim, 1, keys, keys, s, sh.softcap)
        + linear(1, sh.heads * sh.head_dim, sh.hidden, s, sh.bias)
        + post_norm(1, sh, s)
        + residual(1, sh.hidden, s)
    )


def mlp_body(sh: LayerShape, m: float, width: int, d_out: int, s: int, copies: float = 1.0) -> Cost:
    """A dense MLP `width` wide over m tokens (gated: up and gate in one [D, 2F] matmul); `copies`: how
    many such weight sets are read (the distinct experts a batch touches)."""
    up = 2 * width if sh.gated else width
    act = Cost(ACTIVATION_FLOPS[sh.activation] * m * width, (3.0 if sh.gated else 2.0) * s * m * width, 0.0, 1.0)
    body = linear(m, sh.hidden, up, s, sh.bias) + act + linear(m, width, d_out, s, sh.bias)
    extra = (copies - 1.0) * body.weights
    return Cost(body.flops, body.bytes + extra, body.weights + extra, body.kernels)


def routing(sh: LayerShape, m: float, d_out: int, s: int) -> Cost:
    """What an MoE layer runs on a token's own device: the router over its m tokens (a [D, E] matmul,
    softmax and top-k) and the shared experts (with their sigmoid gate)."""
    out = linear(m, sh.hidden, sh.experts, s, False) + Cost(5.0 * m * sh.experts, s * m * sh.experts, 0.0, 1.0)
    if sh.shared_mlp_hidden:
        out += mlp_body(sh, m, sh.shared_mlp_hidden, d_out, s)
        if sh.shared_gate:
            out += linear(m, sh.hidden, 1, s, False) + Cost(5.0 * m * d_out, s * 2.0 * m * d_out, 0.0, 2.0)
    return out


def held_experts_cost(sh: LayerShape, batch: float, d_out: int, s: int) -> Cost:
    """The experts this device holds, over a batch of `batch` tokens routed uniformly at random: the
    expected batch*k*held/E token-expert assignments that land here, the weights of the distinct held
    experts they touch (expected_experts: a decode token reads k*held/E experts, a long prefill all
    held), and the weighted sum of the outputs."""
    e, k, held = sh.experts, sh.experts_per_token, sh.held_experts
    assignments = batch * k * held / e
    out = mlp_body(sh, assignments, sh.mlp_hidden, d_out, s, expected_experts(held, e, k, batch))
    return out + Cost(2.0 * assignments * d_out, s * 2.0 * assignments * d_out, 0.0, 1.0)


def moe_body(sh: LayerShape, m: float, d_out: int, s: int) -> Cost:
    """An MoE MLP over m tokens on one device holding (its column share of) every expert."""
    return routing(sh, m, d_out, s) + held_experts_cost(sh, m, d_out, s)


def mlp_block(sh: LayerShape, m: int, s: int, *, out_dim: int | None = None) -> Cost:
    """norm2 + MLP (dense, or mixture of experts) + residual (tp: `out_dim` = full D output of a column shard)."""
    d_out = out_dim or sh.hidden
    body = moe_body(sh, m, d_out, s) if sh.experts else mlp_body(sh, m, sh.mlp_hidden, d_out, s)
    return norm(m, sh.hidden, sh.norm, s) + body + post_norm(m, sh, s) + residual(m, d_out, s)


def full_layer(sh: LayerShape, t: int, s: int) -> Cost:
    return attn_block(sh, t, t, s, square_causal=sh.causal) + mlp_block(sh, t, s)


def lm_head(hidden: int, vocab: int, norm_kind: str, s: int, rows: int = 1, softcap: bool = False) -> Cost:
    """The final norm and the output projection (LM head) of `rows` positions over a `vocab`-wide shard,
    plus the embedding lookup of the next token (one row of hidden elements read and written);
    `softcap`: the logits' tanh soft-capping (Gemma 2's final_softcap)."""
    capped = Cost(SOFTCAP_FLOPS * rows * vocab, 2.0 * s * rows * vocab, 0.0, 1.0) if softcap else Cost()
    return (
        norm(rows, hidden, norm_kind, s)
        + linear(rows, hidden, vocab, s, False)
        + Cost(0.0, 2.0 * s * hidden, 0.0, 1.0)
        + capped
    )
