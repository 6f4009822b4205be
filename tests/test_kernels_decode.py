"""The decode-step kernel equals the last row of the full causal layer (whole layer and tp shards)."""

import pytest

torch = pytest.importorskip("torch")

from astrasim.kernels.block import ReferenceBlock  # noqa: E402
from astrasim.kernels.decode import KVCache, Projections, attn_step  # noqa: E402
from astrasim.kernels.parallel import TPBlock  # noqa: E402
from astrasim.kernels.split import head_bounds  # noqa: E402


@pytest.mark.parametrize("kv_heads, act, norm", [(4, "gelu", "layernorm"), (2, "swiglu", "rmsnorm")])
def test_one_token_over_the_cache_is_the_causal_layers_last_row(kv_heads, act, norm):
    torch.manual_seed(0)
    blk = ReferenceBlock.from_dims(64, 4, kv_heads=kv_heads, causal=True, activation=act, norm=norm).eval()
    x = torch.randn(1, 9, 64)
    with torch.no_grad():
        k, v = blk.project_kv(blk.norm1(x[:, :8]))
        cache = KVCache(kv_heads, 16, 12, dtype=torch.float32)  # capacity above what is used
        cache.fill(k, v)
        y = blk.mlp_residual(attn_step(Projections.of_block(blk), x[:, 8:], cache, 8))
        torch.testing.assert_close(y, blk(x)[:, -1:], rtol=1e-5, atol=1e-5)
        parts = 0
        for r in range(2):
            dev = TPBlock(blk, 2, r)
            (_, _), (k0, k1) = (b[r] for b in head_bounds(4, kv_heads, 2))
            c = KVCache(dev.kv_heads, 16, 9, dtype=torch.float32)
            c.fill(k[:, k0:k1], v[:, k0:k1])
            parts = parts + attn_step(Projections.of_shard(dev), x[:, 8:], c, 8, residual=r == 0)
        torch.testing.assert_close(parts, blk.attn_residual(x)[:, -1:], rtol=1e-5, atol=1e-5)
