"""Analytic floating-point operations and minimal memory traffic of every profiled op.

`flops` counts multiply and add separately (a [m, k] x [k, n] matmul is 2mkn), plus the
elementwise work of norms (LayerNorm 8, RMSNorm 5 per element), activations (GELU 8, SwiGLU 6 per
hidden unit), residual adds (1), softmax (5 per score) and the ASTRA merge. Attention is counted
over the (query, key) pairs its kernel computes: a square causal attention (own tokens, fused
causal kernel) computes T(T+1)/2 pairs, an attention with an explicit mask (sp: own queries over
all T keys) the full rectangle.

`bytes` is the minimal traffic: weights read once, activations read and written once (attention
as a fused kernel: Q, K, V read, output written; VQ: embeddings, codebook, norms read, int64 codes
written), in the element size of the dtype. Both are used for roofline scaling to other hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

from astrasim.kernels.split import astra_token_bounds, head_bounds, split_bounds, token_bounds
from astrasim.models import ModelSpec

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
INDEX_BYTES = 8  # codes are int64 tensors


@dataclass(frozen=True)
class Cost:
    flops: float = 0.0
    bytes: float = 0.0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.flops + other.flops, self.bytes + other.bytes)


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
    return Cost(2.0 * m * din * dout + (m * dout if bias else 0), s * (din * dout + m * din + m * dout + (dout if bias else 0)))


def norm(m: int, d: int, kind: str, s: int) -> Cost:
    return Cost((8.0 if kind == "layernorm" else 5.0) * m * d, s * (2.0 * m * d + 2 * d))


def residual(m: int, d: int, s: int) -> Cost:
    return Cost(float(m * d), 3.0 * s * m * d)


def attention_core(heads: int, kv_heads: int, hd: int, tq: int, tk: int, pairs: float, s: int) -> Cost:
    return Cost(4.0 * heads * pairs * hd + 5.0 * heads * pairs, s * (2.0 * heads * tq * hd + 2.0 * kv_heads * tk * hd))


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


def mlp_block(sh: LayerShape, m: int, s: int, *, out_dim: int | None = None) -> Cost:
    """norm2 + MLP + residual (tp: `out_dim` = full D output of a column shard)."""
    d_out = out_dim or sh.hidden
    f = sh.mlp_hidden
    if sh.activation == "swiglu":
        body = linear(m, sh.hidden, 2 * f, s, sh.bias) + Cost(6.0 * m * f, 3.0 * s * m * f)
    else:
        body = linear(m, sh.hidden, f, s, sh.bias) + Cost(8.0 * m * f, 2.0 * s * m * f)
    body += linear(m, f, d_out, s, sh.bias)
    return norm(m, sh.hidden, sh.norm, s) + body + residual(m, d_out, s)


def full_layer(sh: LayerShape, t: int, s: int) -> Cost:
    return attn_block(sh, t, t, s, square_causal=sh.causal) + mlp_block(sh, t, s)


def op_costs(spec: ModelSpec, strategy: str, n: int, tokens: int, *, groups: int = 0, codebook: int = 0,
             dtype: str = "float32") -> dict[str, Cost]:
    """Cost of every op of `strategy` on device 0 (the largest shard) for one layer."""
    s = DTYPE_BYTES[dtype]
    sh = LayerShape.of(spec)
    d, t = spec.hidden, tokens
    if strategy == "single":
        return {"attn": attn_block(sh, t, t, s, square_causal=sh.causal), "mlp": mlp_block(sh, t, s)}
    if strategy == "tp":
        (h0, h1), (k0, k1) = (b[0] for b in head_bounds(spec.heads, spec.kv_heads, n))
        f0 = split_bounds(spec.mlp_hidden, n)[0]
        shard = LayerShape(d, h1 - h0, k1 - k0, sh.head_dim, f0[1] - f0[0], sh.activation, sh.norm, sh.bias, sh.causal)
        return {"attn": attn_block(shard, t, t, s, square_causal=sh.causal), "mlp": mlp_block(shard, t, s, out_dim=d)}
    a, b = token_bounds(t, n)[0]
    t0 = b - a
    sp_ops = {"attn": attn_block(sh, t0, t, s, square_causal=False), "mlp": mlp_block(sh, t0, s)}
    if strategy == "sp":
        return sp_ops
    if strategy in ("bp-ag", "bp-sp"):
        (h0, h1), (k0, k1) = (b[0] for b in head_bounds(spec.heads, spec.kv_heads, n))
        f0 = split_bounds(spec.mlp_hidden, n)[0]
        sl = LayerShape((h1 - h0) * sh.head_dim, h1 - h0, k1 - k0, sh.head_dim, f0[1] - f0[0], sh.activation,
                        sh.norm, sh.bias, sh.causal)
        ops = {"decoupled_layer": full_layer(sl, t, s)}
        if strategy == "bp-ag":
            ops["full_layer"] = full_layer(sh, t, s)
        else:
            ops.update(sp_ops)
        return ops
    if strategy == "astra":
        bounds = astra_token_bounds(t, n, spec.cls_token)
        m = bounds[0][1] - bounds[0][0]                 # own shared (quantized) tokens
        local = m + (1 if spec.cls_token else 0)        # own tokens incl. the CLS copy
        remote = sum(b - a for a, b in bounds[1:])      # every other device's shared tokens
        gd = d // groups
        hd, heads = sh.head_dim, sh.heads
        ops = {
            "vq_encode": Cost(2.0 * m * groups * gd * codebook + 2.0 * m * groups * codebook,
                              s * (m * d + groups * codebook * (gd + 1)) + INDEX_BYTES * m * groups),
            "local_attn": (norm(local, d, sh.norm, s) + qkv(local, sh, s)
                           + attention_core(heads, sh.kv_heads, hd, local, local,
                                            local * (local + 1) / 2 if sh.causal else float(local * local), s)),
            "remote_kv": (Cost(0.0, INDEX_BYTES * remote * groups + 2.0 * s * remote * d)
                          + norm(remote, d, sh.norm, s) + qkv(remote, sh, s, q=False)),
            "remote_attn": attention_core(heads, sh.kv_heads, hd, local, remote, float(local * remote), s),
            "merge": (Cost(heads * local * (3.0 * hd + 6), s * (3.0 * heads * local * hd) + 8.0 * heads * local)
                      + linear(local, heads * hd, d, s, sh.bias) + residual(local, d, s)),
            "mlp": mlp_block(sh, local, s),
        }
        if remote == 0:  # one device: nothing to decode or attend to
            ops["remote_kv"] = ops["remote_attn"] = Cost()
        if spec.cls_token:
            ops["cls_pool"] = Cost(float(n * d), s * (n * d + d))
        return ops
    raise ValueError(f"unknown strategy {strategy!r}")
