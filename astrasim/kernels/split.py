"""How work is split over N devices: tokens (sequence), heads and MLP columns (tensor), and the
hidden slice of a DeTransformer decoupled layer.

The one rule, for every count: ``torch.tensor_split`` order. ``total`` items over ``n`` devices
give ``total // n`` items to every device and one more to the first ``total % n`` devices, in
order (197 tokens over 4 devices: 50, 49, 49, 49; 12 heads over 5 devices: 3, 3, 2, 2, 2).
Device 0 always holds the largest share. A device that would get nothing is a UserError: every
strategy needs at least one token (sp, astra) or one head and one MLP column (tp, bp) per device.

Heads of a grouped-query model are split by KV head (a query head always stays with its KV head):
device i gets ``kv_i`` KV heads (the rule over ``kv_heads``) and ``kv_i * heads / kv_heads`` query
heads. So tp / bp need ``n_devices <= kv_heads``.
"""

from __future__ import annotations

from astrasim.errors import UserError


def split_sizes(total: int, n: int, *, what: str = "items") -> list[int]:
    """Sizes of the n shares of `total` items under the tensor_split rule (first total % n get one more)."""
    if n < 1:
        raise UserError(f"must be at least 1, got {n}", field="devices")
    if total < n:
        raise UserError(
            f"cannot split {total} {what} over {n} devices: every device needs at least one; "
            f"use at most {total} devices",
            field="devices",
        )
    base, extra = divmod(total, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def split_bounds(total: int, n: int, *, what: str = "items") -> list[tuple[int, int]]:
    """[start, end) of each device's contiguous share, in device order."""
    bounds, start = [], 0
    for size in split_sizes(total, n, what=what):
        bounds.append((start, start + size))
        start += size
    return bounds


def token_bounds(tokens: int, n: int) -> list[tuple[int, int]]:
    """Token range of every device for sequence splits (sp, bp-sp, astra without CLS copies)."""
    return split_bounds(tokens, n, what="tokens")


def head_bounds(heads: int, kv_heads: int, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(query-head ranges, KV-head ranges) of every device for tp and bp; KV heads are split by the rule
    and each device keeps the query heads attached to its KV heads."""
    if heads % kv_heads:
        raise UserError(f"heads={heads} must be divisible by kv_heads={kv_heads}", field="model.kv_heads")
    if n > kv_heads:
        raise UserError(
            f"cannot split {kv_heads} KV heads over {n} devices (tensor/block parallelism needs "
            f"at least one KV head per device); use at most {kv_heads} devices",
            field="devices",
        )
    group = heads // kv_heads
    kv = split_bounds(kv_heads, n, what="KV heads")
    return [(a * group, b * group) for a, b in kv], kv


def astra_token_bounds(tokens: int, n: int, cls_token: bool) -> list[tuple[int, int]]:
    """Ranges of the *shared* tokens of every ASTRA device. With distributed CLS (ViT), token 0 is the
    CLS and is replicated: the T-1 patch tokens are split by the rule (ranges index into tokens 1..T-1,
    shifted by one), and every device prepends its own CLS copy."""
    if not cls_token:
        return token_bounds(tokens, n)
    return [(a + 1, b + 1) for a, b in split_bounds(tokens - 1, n, what="patch tokens")]
