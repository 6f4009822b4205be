"""ASTRA's codes on the wire: VQ code indices bit-packed to G log2 K bits per token.

The simulator counts exactly G * ceil(log2 K) bits per token, so a deployment (and the validation
harness) must pack the int64 indices that `GroupedVQ.encode` returns before sending them; the
profiler times this packing as part of `vq_encode` and the unpacking as part of `remote_kv`.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def pack_codes(codes: Tensor, bits: int) -> Tensor:
    """int64 codes (< 2**bits) -> uint8 bytes holding `bits` bits per code (little-endian bits)."""
    flat = codes.reshape(-1).to(torch.int64)
    shifts = torch.arange(bits, dtype=torch.int64)
    b = ((flat[:, None] >> shifts) & 1).reshape(-1)
    pad = (-b.numel()) % 8
    if pad:
        b = torch.cat([b, b.new_zeros(pad)])
    weights = 1 << torch.arange(8, dtype=torch.int64)
    return (b.reshape(-1, 8) * weights).sum(1).to(torch.uint8)


def unpack_codes(data: Tensor, count: int, bits: int) -> Tensor:
    """Inverse of pack_codes: the first `count` codes."""
    b = ((data.to(torch.int64)[:, None] >> torch.arange(8, dtype=torch.int64)) & 1).reshape(-1)[: count * bits]
    return (b.reshape(count, bits) << torch.arange(bits, dtype=torch.int64)).sum(1)


def packed_bytes(count: int, bits: int) -> int:
    return math.ceil(count * bits / 8)
