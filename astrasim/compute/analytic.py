"""Analytic floating-point operations and minimal memory traffic of a Transformer layer's pieces
(each strategy composes its ops from these in its `op_costs`).

`flops` counts multiply and add separately (a [m, k] x [k, n] matmul is 2mkn), plus the
elementwise work of norms (LayerNorm 8, RMSNorm 5 per element), activations (GELU 8, SwiGLU 6 per
hidden unit), residual adds (1), softmax (5 per score) and the ASTRA merge. Attention is counted
over the (query, key) pairs its kernel computes: a square causal attention (own tokens, fused
causal kernel) computes T(T+1)/2 pairs, an attention with an explicit mask (sp: own queries over
all T keys) the full rectangle.

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

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.flops + other.flops, self.bytes + other.bytes, self.weights + other.weights,
                    self.kernels + other.kernels)


@dataclass(frozen=True)
class LayerShape:
    """The dimensions a layer's kernels see (a full layer, or one device's shard / slice of it)."""

    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp_hidden: int
    activation: str
    norm: str
    bias: bool
    causal: bool

    @classmethod
    def of(cls, spec: ModelSpec) -> "LayerShape":
        return cls(spec.hidden, spec.heads, spec.kv_heads, spec.head_dim, spec.mlp_hidden, spec.activation,
                   spec.norm, spec.norm == "layernorm", spec.causal)


def linear(m: int, din: int, dout: int, s: int, bias: bool) -> Cost:
    w = s * (din * dout + (dout if bias else 0))
    return Cost(2.0 * m * din * dout + (m * dout if bias else 0), s * (m * din + m * dout) + w, w, 1.0)


def norm(m: int, d: int, kind: str, s: int) -> Cost:
    return Cost((8.0 if kind == "layernorm" else 5.0) * m * d, s * (2.0 * m * d + 2 * d), s * 2.0 * d, 1.0)


def residual(m: int, d: int, s: int) -> Cost:
    return Cost(float(m * d), 3.0 * s * m * d, 0.0, 1.0)


def attention_core(heads: int, kv_heads: int, hd: int, tq: int, tk: int, pairs: float, s: int) -> Cost:
    return Cost(4.0 * heads * pairs * hd + 5.0 * heads * pairs, s * (2.0 * heads * tq * hd + 2.0 * kv_heads * tk * hd),
                0.0, 1.0)


def qkv(m: int, sh: LayerShape, s: int, *, q: bool = True, kv: bool = True) -> Cost:
    out = Cost()
    if q:
        out += linear(m, sh.hidden, sh.heads * sh.head_dim, s, sh.bias)
    if kv:
        out += linear(m, sh.hidden, 2 * sh.kv_heads * sh.head_dim, s, sh.bias)
    return out


def attn_block(sh: LayerShape, tq: int, tk: int, s: int, *, square_causal: bool) -> Cost:
    """norm1 (tk tokens) + Q (tq tokens) + K/V (tk tokens) + attention + out-proj + residual."""
    pairs = tq * (tq + 1) / 2 if square_causal else float(tq * tk)
    return (norm(tk, sh.hidden, sh.norm, s) + qkv(tq, sh, s, kv=False) + qkv(tk, sh, s, q=False)
            + attention_core(sh.heads, sh.kv_heads, sh.head_dim, tq, tk, pairs, s)
            + linear(tq, sh.heads * sh.head_dim, sh.hidden, s, sh.bias) + residual(tq, sh.hidden, s))


def attn_decode_block(sh: LayerShape, cache: int, s: int) -> Cost:
    """One decode step's attention: norm1, Q/K/V and out-proj of ONE token (every weight read once),
    attention over cache + 1 keys (the cached K/V read once), residual."""
    return (norm(1, sh.hidden, sh.norm, s) + qkv(1, sh, s)
            + attention_core(sh.heads, sh.kv_heads, sh.head_dim, 1, cache + 1, float(cache + 1), s)
            + linear(1, sh.heads * sh.head_dim, sh.hidden, s, sh.bias) + residual(1, sh.hidden, s))


def mlp_block(sh: LayerShape, m: int, s: int, *, out_dim: int | None = None) -> Cost:
    """norm2 + MLP + residual (tp: `out_dim` = full D output of a column shard)."""
    d_out = out_dim or sh.hidden
    f = sh.mlp_hidden
    if sh.activation == "swiglu":
        body = linear(m, sh.hidden, 2 * f, s, sh.bias) + Cost(6.0 * m * f, 3.0 * s * m * f, 0.0, 1.0)
    else:
        body = linear(m, sh.hidden, f, s, sh.bias) + Cost(8.0 * m * f, 2.0 * s * m * f, 0.0, 1.0)
    body += linear(m, f, d_out, s, sh.bias)
    return norm(m, sh.hidden, sh.norm, s) + body + residual(m, d_out, s)


def full_layer(sh: LayerShape, t: int, s: int) -> Cost:
    return attn_block(sh, t, t, s, square_causal=sh.causal) + mlp_block(sh, t, s)


def lm_head(hidden: int, vocab: int, norm_kind: str, s: int, rows: int = 1) -> Cost:
    """The final norm and the output projection (LM head) of `rows` positions over a `vocab`-wide shard,
    plus the embedding lookup of the next token (one row of hidden elements read and written)."""
    return norm(rows, hidden, norm_kind, s) + linear(rows, hidden, vocab, s, False) \
        + Cost(0.0, 2.0 * s * hidden, 0.0, 1.0)
