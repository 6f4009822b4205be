"""ASTRA's layer, simulated for N devices in one process (differentiable, for accuracy studies).

Device i holds the block input of its own tokens (``parts[i]``, [B, T_i, D]). In every layer it

1. quantizes its shared tokens with the layer's GroupedVQ and sends the codes to the others;
2. attends with its queries to its own tokens at full precision (K, V from norm1(x)) and to the
   other devices' tokens through their codes: X_hat = codebook[codes], K_hat, V_hat = projections
   of norm1(X_hat) with its own weights (mixed-precision attention: one softmax over [K; K_hat]);
3. runs out-proj, residual and the MLP on its own tokens.

Masks: non-causal models see every token. Causal models: a device sees its own tokens causally
and every token of the earlier devices (they all precede its own); later devices' tokens are
masked. With ``causal_skip=True`` (default) a device does not even decode later devices' codes
(they never need to be sent); with ``causal_skip=False`` it decodes them and masks them out
(same output, more compute and communication).

Distributed CLS (ViT, ``cls_copies=True``): token 0 of every part is that device's private copy
of the CLS token; it is neither quantized nor sent, attends like a local token, and the N copies
are mean-pooled after the last layer by :func:`pool_cls`. :func:`astra_parts` builds the parts
from a full sequence under the split rule of :mod:`astrasim.kernels.split`.

The per-device block used for timing is :class:`astrasim.kernels.parallel.AstraBlock` (same maths,
split into ops, partial attentions merged by log-sum-exp).
"""

from __future__ import annotations

import torch

from astrasim.kernels.attention import attend, attn_bias, causal_allowed
from astrasim.kernels.block import ReferenceBlock
from astrasim.kernels.split import astra_token_bounds
from astrasim.kernels.vq import GroupedVQ

Tensor = torch.Tensor


def astra_parts(x: Tensor, n_devices: int, *, cls_token: bool = False) -> list[Tensor]:
    """Split a full sequence [B, T, D] into the N device parts (with a CLS copy first in every part
    when cls_token: then x[:, 0] is the CLS and the T-1 other tokens are split)."""
    bounds = astra_token_bounds(x.shape[1], n_devices, cls_token)
    if cls_token:
        return [torch.cat([x[:, :1], x[:, a:b]], dim=1) for a, b in bounds]
    return [x[:, a:b] for a, b in bounds]


def pool_cls(parts: list[Tensor]) -> Tensor:
    """Mean of the N devices' CLS outputs (token 0 of every part): [B, D]."""
    return torch.stack([p[:, 0] for p in parts]).mean(0)


def astra_layer(
    block: ReferenceBlock,
    vq: GroupedVQ | None,
    parts: list[Tensor],
    *,
    cls_copies: bool = False,
    causal_skip: bool = True,
) -> tuple[list[Tensor], Tensor]:
    """One ASTRA layer on N = len(parts) devices; returns (per-device outputs, summed VQ loss).

    ``vq=None`` sends remote tokens at full precision (then ASTRA equals sequence parallelism)."""
    if cls_copies and block.causal:
        raise ValueError("distributed CLS copies are for non-causal (ViT) models")
    n = len(parts)
    shared = [p[:, 1:] if cls_copies else p for p in parts]
    loss = parts[0].new_zeros(())
    if vq is None:
        rebuilt = shared
    else:
        rebuilt = []
        for s in shared:
            x_hat, _, part_loss = vq(s)
            rebuilt.append(x_hat)
            loss = loss + part_loss
    remote_kv = [block.project_kv(block.norm1(x_hat)) for x_hat in rebuilt]

    outs = []
    for i, x in enumerate(parts):
        h = block.norm1(x)
        q = block.project_q(h)
        k, v = block.project_kv(h)
        senders = [j for j in range(n) if j != i and not (block.causal and causal_skip and j > i)]
        keys = torch.cat([k] + [remote_kv[j][0] for j in senders], dim=2)
        values = torch.cat([v] + [remote_kv[j][1] for j in senders], dim=2)
        bias = None
        if block.causal:
            t = x.shape[1]
            allowed = [causal_allowed(0, t, 0, t, device=x.device)]
            allowed += [torch.full((t, shared[j].shape[1]), j < i, device=x.device) for j in senders]
            bias = attn_bias(torch.cat(allowed, dim=1), q.dtype)
        o = attend(q, keys, values, bias=bias)
        outs.append(block.mlp_residual(x + block.o_proj(block.merge_heads(o))))
    return outs, loss
