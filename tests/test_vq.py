"""Grouped VQ: exact nearest codes, gather decode, sizes, loss, straight-through and noise."""

import math

import pytest
import torch

from astrasim.errors import UserError
from astrasim.kernels.vq import GroupedVQ, nearest


def brute_force_codes(vq: GroupedVQ, x: torch.Tensor) -> torch.Tensor:
    """Nearest code of every (token, group) by explicit distances, one group at a time."""
    flat = x.reshape(-1, vq.groups, vq.group_dim)
    cols = []
    for g in range(vq.groups):
        d = ((flat[:, g, None, :] - vq.codebook[g][None]) ** 2).sum(-1)  # [M, K]
        cols.append(d.argmin(-1))
    return torch.stack(cols, -1).reshape(*x.shape[:-1], vq.groups)


@pytest.mark.parametrize("groups", [1, 4, 8])
def test_encode_equals_brute_force_nearest_code(groups):
    torch.manual_seed(groups)
    vq = GroupedVQ(32, groups, codebook_size=64).double()
    x = torch.randn(3, 17, 32, dtype=torch.float64)
    codes = vq.encode(x)
    assert codes.shape == (3, 17, groups) and codes.dtype == torch.long
    assert torch.equal(codes, brute_force_codes(vq, x))


def test_encode_float32_picks_a_nearest_code():
    """In float32 a near-tie may flip; the chosen code's distance must equal the minimum (to rounding)."""
    torch.manual_seed(0)
    vq = GroupedVQ(48, 4, codebook_size=128)
    x = torch.randn(200, 48)
    codes = vq.encode(x)
    flat = x.reshape(-1, 4, 12).double()
    cb = vq.codebook.detach().double()
    dist = ((flat[:, :, None, :] - cb[None]) ** 2).sum(-1)  # [M, G, K]
    chosen = dist.gather(-1, codes[:, :, None]).squeeze(-1)
    assert torch.allclose(chosen, dist.min(-1).values, rtol=1e-5, atol=1e-5)
    assert (codes == brute_force_codes(vq, x)).float().mean() > 0.99


@pytest.mark.parametrize("k", [64, 1024, 100])
def test_nearest_matches_argmin_including_ties(k):
    s = torch.randn(4, 10, k)
    s[0, 0, 5] = s[0, 0, 40] = s[0, 0].min() - 1  # a tie across blocks: first index wins
    s[1, 0, 33] = s[1, 0, 34] = s[1, 0].min() - 1  # a tie inside a block
    s[2, 3, :] = 0.0  # all equal
    assert torch.equal(nearest(s), s.argmin(-1))
    assert nearest(s)[0, 0] == 5 and nearest(s)[1, 0] == 33 and nearest(s)[2, 3] == 0


def test_decode_is_a_gather_of_each_groups_codebook():
    vq = GroupedVQ(12, 3, codebook_size=8)
    codes = torch.tensor([[[1, 7, 0], [2, 2, 2]]])
    x_hat = vq.decode(codes)
    assert x_hat.shape == (1, 2, 12)
    cb = vq.codebook.detach()
    assert torch.equal(x_hat[0, 0], torch.cat([cb[0, 1], cb[1, 7], cb[2, 0]]))
    assert torch.equal(x_hat[0, 1], torch.cat([cb[0, 2], cb[1, 2], cb[2, 2]]))


def test_codes_of_codewords_are_themselves():
    vq = GroupedVQ(16, 4, codebook_size=32)
    codes = torch.randint(0, 32, (50, 4))
    assert torch.equal(vq.encode(vq.decode(codes)), codes)


def test_code_norm_cache_follows_codebook_updates():
    vq = GroupedVQ(8, 2, codebook_size=16)
    x = torch.randn(30, 8)
    vq.encode(x)
    with torch.no_grad():
        vq.codebook.mul_(3.0).add_(1.0)
    assert torch.equal(vq.encode(x), brute_force_codes(vq, x))


@pytest.mark.parametrize(
    "dim, groups, k, ratio",
    [
        (768, 1, 1024, 2457.6),  # ViT-Base G=1 (ASTRA.md)
        (768, 32, 1024, 76.8),  # ViT-Base G=32
        (1024, 32, 1024, 102.4),  # GPT2-M G=32
        (768, 16, 1024, 153.6),
    ],
)
def test_bits_per_token_and_compression(dim, groups, k, ratio):
    vq = GroupedVQ(dim, groups, codebook_size=k)
    assert vq.bits_per_token == groups * math.log2(k)
    assert vq.compression_ratio() == pytest.approx(ratio)


def test_bad_group_count_is_a_user_error():
    with pytest.raises(UserError, match="groups"):
        GroupedVQ(768, 7)


def test_loss_and_straight_through_gradient():
    torch.manual_seed(1)
    vq = GroupedVQ(16, 4, codebook_size=32, beta=0.5).eval()
    x = torch.randn(10, 16, requires_grad=True)
    x_hat, codes, loss = vq(x)
    q = vq.decode(codes).detach()
    assert torch.equal(x_hat.detach(), q)
    expected = 0.5 * 2 * torch.mean((x.detach() - q) ** 2)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    w = torch.randn(16)
    (x_hat * w).sum().backward()
    assert torch.allclose(x.grad, w.expand(10, 16))  # identity gradient through the quantizer
    vq.zero_grad()
    x2 = x.detach().clone().requires_grad_(True)
    _, _, loss2 = vq(x2)
    loss2.backward()
    assert vq.codebook.grad is not None and vq.codebook.grad.abs().sum() > 0


def test_noise_only_in_training_mode():
    torch.manual_seed(2)
    vq = GroupedVQ(16, 2, codebook_size=16, noise_lambda=0.3)
    x = torch.randn(64, 16)
    vq.eval()
    clean = vq.decode(vq.encode(x))
    assert torch.equal(vq(x)[0], clean) and torch.equal(vq(x)[0], vq(x)[0])
    vq.train()
    noisy1, noisy2 = vq(x)[0], vq(x)[0]
    assert not torch.equal(noisy1, clean) and not torch.equal(noisy1, noisy2)
    # the noise follows the residual's scale: lambda * std(residual) per feature
    residual = x - clean
    noise = (noisy1 - clean) / 0.3
    assert noise.std(0).mean().item() == pytest.approx(residual.std(0).mean().item(), rel=0.3)
    vq.noise_lambda = 0.0
    assert torch.equal(vq(x)[0], clean)  # lambda = 0: no noise even in training


def test_init_from_data_puts_codes_on_samples():
    torch.manual_seed(3)
    vq = GroupedVQ(8, 2, codebook_size=16)
    x = torch.randn(100, 8)
    vq.init_from(x)
    x_hat = vq.decode(vq.encode(x[:5]))
    groups = x.reshape(100, 2, 4)
    for g in range(2):
        members = {tuple(r.tolist()) for r in groups[:, g]}
        assert all(tuple(c.tolist()) in members for c in vq.codebook[g].detach())
    assert x_hat.shape == (5, 8)
