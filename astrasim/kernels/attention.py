"""Attention primitives shared by the reference block, ASTRA's mixed-precision attention and the
per-device blocks of every strategy.

Shapes: q [B, H, Tq, hd], k / v [B, Hkv, Tk, hd] (grouped-query when Hkv < H: query head h uses
KV head h // (H / Hkv)). Masks are *additive* float biases [Tq, Tk] (0 = attend, -inf = masked) in
the query dtype, built once by :func:`attn_bias` and reused, so no kernel pays for building them.

* :func:`attend` is the differentiable path (``torch.nn.functional.scaled_dot_product_attention``).
* :func:`attend_lse` also returns the log-sum-exp of every query row; partial attentions over
  disjoint key sets (ASTRA's local and remote tokens) are then combined exactly by
  :func:`merge_partials` (the flash-attention merge). On CPU it calls torch's fused flash kernel
  (``aten._scaled_dot_product_flash_attention_for_cpu``, the kernel SDPA itself dispatches to), so
  split and unsplit attention are timed with the same kernel; elsewhere it falls back to a plain
  matmul-softmax implementation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def expand_kv(kv: Tensor, heads: int) -> Tensor:
    """Repeat KV heads so every query head has its own (grouped-query attention)."""
    kv_heads = kv.shape[1]
    if kv_heads == heads:
        return kv
    return kv.repeat_interleave(heads // kv_heads, dim=1)


def causal_allowed(q_start: int, tq: int, k_start: int, tk: int, *, device=None) -> Tensor:
    """Boolean [tq, tk]: True where the key's global position is <= the query's (causal attention of
    queries at positions q_start.. over keys at positions k_start..)."""
    qpos = torch.arange(q_start, q_start + tq, device=device)[:, None]
    kpos = torch.arange(k_start, k_start + tk, device=device)[None, :]
    return kpos <= qpos


def attn_bias(allowed: Tensor, dtype: torch.dtype) -> Tensor:
    """Additive mask from a boolean `allowed` matrix: 0 where allowed, -inf elsewhere."""
    bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return bias.masked_fill_(~allowed, float("-inf"))


def attend(q: Tensor, k: Tensor, v: Tensor, *, bias: Tensor | None = None, is_causal: bool = False) -> Tensor:
    """softmax(q k^T / sqrt(hd) + bias) v, differentiable. `is_causal` only for Tq == Tk."""
    heads = q.shape[1]
    return F.scaled_dot_product_attention(
        q, expand_kv(k, heads), expand_kv(v, heads), attn_mask=bias, is_causal=is_causal and bias is None
    )


def attend_lse(
    q: Tensor, k: Tensor, v: Tensor, *, bias: Tensor | None = None, is_causal: bool = False
) -> tuple[Tensor, Tensor]:
    """Attention plus the float32 log-sum-exp [B, H, Tq] of the scaled, masked scores of every query.

    With no keys (Tk = 0) the output is zero and the lse -inf, so merging it is a no-op."""
    heads = q.shape[1]
    b, _, tq, hd = q.shape
    if k.shape[2] == 0:
        return q.new_zeros(q.shape), torch.full((b, heads, tq), float("-inf"), device=q.device)
    k, v = expand_kv(k, heads), expand_kv(v, heads)
    if _FLASH_CPU is not None and q.device.type == "cpu":
        out, lse = _FLASH_CPU(q, k, v, 0.0, is_causal and bias is None, attn_mask=bias)
        return out, lse
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * (1.0 / math.sqrt(hd))
    if bias is not None:
        scores = scores + bias.float()
    elif is_causal:
        scores = scores + attn_bias(causal_allowed(0, tq, 0, k.shape[2], device=q.device), torch.float32)
    lse = torch.logsumexp(scores, dim=-1)
    probs = torch.exp(scores - lse.unsqueeze(-1)).nan_to_num_(0.0)
    return torch.matmul(probs.to(v.dtype), v), lse


def merge_partials(partials: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
    """Exact combination of attentions over disjoint key sets from their (output, lse) pairs:
    out = sum_j out_j * exp(lse_j - logsumexp_j lse_j), folded pairwise (elementwise ops only)."""
    out, lse = partials[0]
    for o, part_lse in partials[1:]:
        total = torch.logaddexp(lse, part_lse)
        w_acc = torch.exp(lse - total).nan_to_num_(0.0).unsqueeze(-1).to(out.dtype)
        w_new = torch.exp(part_lse - total).nan_to_num_(0.0).unsqueeze(-1).to(o.dtype)
        out = torch.addcmul(out * w_acc, o, w_new)
        lse = total
    return out
