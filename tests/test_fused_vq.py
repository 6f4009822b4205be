"""The fused C encode (astrasim/kernels/vq_nearest.c) against the torch path of GroupedVQ.encode."""

from __future__ import annotations

import pytest
import torch

from astrasim.kernels import fused
from astrasim.kernels.vq import GroupedVQ

pytestmark = pytest.mark.skipif(not fused.available(), reason="no C compiler: GroupedVQ.encode uses torch")


def torch_path(vq: GroupedVQ, x: torch.Tensor, monkeypatch) -> torch.Tensor:
    with monkeypatch.context() as m:
        m.setattr(fused, "available", lambda: False)
        return vq.encode(x)


@pytest.mark.parametrize(
    "dim, groups, k, tokens", [(768, 1, 1024, 256), (768, 32, 1024, 257), (512, 16, 128, 5), (96, 4, 64, 1)]
)
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_encode_equals_the_torch_path(dim, groups, k, tokens, threads, monkeypatch):
    torch.manual_seed(groups * 7 + tokens)
    vq = GroupedVQ(dim, groups, k).eval()
    x = torch.randn(1, tokens, dim)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert vq._fused_ok(x)
        codes = vq.encode(x)
    finally:
        torch.set_num_threads(before)
    ref = torch_path(vq, x, monkeypatch)
    # float32 sums in another order may flip a near-tie; the chosen code must then be as near
    same = codes == ref
    assert same.float().mean() > 0.999
    if not same.all():
        xg = x.reshape(-1, groups, dim // groups)
        cb = vq.codebook.detach()
        gi = torch.arange(groups)
        d_new = ((xg - cb[gi, codes.reshape(-1, groups)]) ** 2).sum(-1)
        d_ref = ((xg - cb[gi, ref.reshape(-1, groups)]) ** 2).sum(-1)
        assert torch.allclose(d_new, d_ref, rtol=1e-5, atol=1e-5)


def test_ties_go_to_the_first_code_and_codewords_map_to_themselves():
    vq = GroupedVQ(64, 2, 128).eval()
    with torch.no_grad():
        vq.codebook[:, 64:] = vq.codebook[:, :64]  # every code twice: the first copy must win
    codes = torch.randint(0, 64, (1, 9, 2))
    assert torch.equal(vq.encode(vq.decode(codes)), codes)


def test_codebook_updates_reach_the_fused_tables():
    torch.manual_seed(0)
    vq = GroupedVQ(64, 2, 64).eval()
    x = torch.randn(1, 8, 64)
    with torch.no_grad():
        vq.codebook.copy_(torch.randn_like(vq.codebook))
        vq.codebook[:, 5] = x[0, 3].reshape(2, 32)  # token 3 now sits exactly on code 5
    assert vq.encode(x)[0, 3].tolist() == [5, 5]


def test_unsupported_inputs_take_the_torch_path(monkeypatch):
    vq = GroupedVQ(64, 2, 100).eval()  # K not a multiple of the kernel's tile
    assert not vq._fused_ok(torch.randn(1, 4, 64))
    vq64 = GroupedVQ(64, 2, 64).double()
    assert not vq64._fused_ok(torch.randn(1, 4, 64, dtype=torch.float64))
    monkeypatch.setenv("ASTRASIM_FUSED_VQ", "0")
    assert not GroupedVQ(64, 2, 64)._fused_ok(torch.randn(1, 4, 64))
