"""One decode step: a single new token through a layer, attending to a KV cache.

The cache is preallocated (capacity = the longest cache the step will see) and written in place,
as llama.cpp and vLLM do, so a step reads the cached K, V once and copies nothing: the step is
memory-bound (every weight read once for one token, plus the cache). Grouped-query models attend
with SDPA's ``enable_gqa`` (no repeated K/V heads). The same kernel serves a whole layer
(single, pp, sp and ASTRA's decoding device), a tensor-parallel shard (its heads; the output is a
partial sum) and a DeTransformer decoupled layer (a narrower ReferenceBlock).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


@dataclass
class Projections:
    """The attention weights one device holds for a layer (all heads, or its shard)."""

    norm: nn.Module
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear
    heads: int
    kv_heads: int
    head_dim: int

    @classmethod
    def of_block(cls, block) -> Projections:
        """A ReferenceBlock's own (whole layer, or a decoupled layer's slice)."""
        return cls(
            block.norm1,
            block.q_proj,
            block.k_proj,
            block.v_proj,
            block.o_proj,
            block.heads,
            block.kv_heads,
            block.head_dim,
        )

    @classmethod
    def of_shard(cls, dev) -> Projections:
        """A tensor-parallel device's heads (astrasim.kernels.parallel.TPBlock)."""
        return cls(
            dev.block.norm1, dev.q_proj, dev.k_proj, dev.v_proj, dev.o_proj, dev.heads, dev.kv_heads, dev.block.head_dim
        )


class KVCache:
    """Preallocated K and V [B, kv_heads, capacity, head_dim] of one layer on one device."""

    def __init__(self, kv_heads: int, head_dim: int, capacity: int, *, dtype: torch.dtype, batch: int = 1):
        self.k = torch.zeros(batch, kv_heads, capacity, head_dim, dtype=dtype)
        self.v = torch.zeros_like(self.k)

    def fill(self, k: Tensor, v: Tensor) -> None:
        """Store the prompt's K, V [B, kv_heads, T, head_dim] at positions 0..T-1."""
        t = k.shape[2]
        self.k[:, :, :t].copy_(k)
        self.v[:, :, :t].copy_(v)


def attn_step(p: Projections, x: Tensor, cache: KVCache, pos: int, *, residual: bool = True) -> Tensor:
    """x [B, 1, D] at position `pos`: norm1, Q/K/V of the new token, K/V written to cache slot `pos`,
    attention over slots 0..pos, out-proj (+ residual). A shard (residual=False) returns its partial sum."""
    b = x.shape[0]
    h = p.norm(x)
    q = p.q(h).view(b, 1, p.heads, p.head_dim).transpose(1, 2)
    cache.k[:, :, pos] = p.k(h).view(b, p.kv_heads, p.head_dim)
    cache.v[:, :, pos] = p.v(h).view(b, p.kv_heads, p.head_dim)
    k, v = cache.k[:, :, : pos + 1], cache.v[:, :, : pos + 1]
    o = F.scaled_dot_product_attention(q, k, v, enable_gqa=p.kv_heads != p.heads)
    out = p.o(o.transpose(1, 2).reshape(b, 1, p.heads * p.head_dim))
    return x + out if residual else out


def step_calls(p: Projections, mlp, cache_len: int, *, dtype: torch.dtype, residual: bool = True) -> dict:
    """Timed calls of one decode step at a cache of `cache_len` tokens: 'attn' and 'mlp' (mlp maps
    the attention output h to the layer output)."""
    width = p.q.in_features
    cache = KVCache(p.kv_heads, p.head_dim, cache_len + 1, dtype=dtype)
    x = torch.randn(1, 1, width, dtype=dtype)
    h = attn_step(p, x, cache, cache_len, residual=residual)
    return {"attn": lambda: attn_step(p, x, cache, cache_len, residual=residual), "mlp": lambda: mlp(h)}
