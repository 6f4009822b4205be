"""ASTRA's mixed-precision layer: exact without quantization, masks across partitions, CLS copies."""

import pytest
import torch

from astrasim.kernels.astra import astra_layer, astra_parts, pool_cls
from astrasim.kernels.block import ReferenceBlock
from astrasim.kernels.vq import GroupedVQ

TOL = dict(atol=2e-5, rtol=1e-4)  # float32, hidden 32: per-element error of a reordered softmax


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tokens, n", [(16, 4), (13, 4), (13, 5), (7, 1)])
def test_full_precision_astra_equals_the_full_block(causal, tokens, n):
    torch.manual_seed(tokens * n)
    block = ReferenceBlock.from_dims(32, 4, causal=causal)
    x = torch.randn(2, tokens, 32)
    parts = astra_parts(x, n)
    assert [p.shape[1] for p in parts] == [len(c) for c in torch.tensor_split(torch.arange(tokens), n)]
    outs, loss = astra_layer(block, None, parts)
    assert loss.item() == 0.0
    assert torch.allclose(torch.cat(outs, dim=1), block(x), **TOL)


def test_causal_skip_does_not_change_the_output():
    torch.manual_seed(0)
    block = ReferenceBlock.from_dims(32, 4, causal=True)
    vq = GroupedVQ(32, 4, codebook_size=16).eval()
    parts = astra_parts(torch.randn(1, 14, 32), 3)
    a, _ = astra_layer(block, vq, parts, causal_skip=True)
    b, _ = astra_layer(block, vq, parts, causal_skip=False)
    for u, v in zip(a, b):
        assert torch.allclose(u, v, **TOL)


def test_causal_device_ignores_later_devices():
    torch.manual_seed(1)
    block = ReferenceBlock.from_dims(32, 4, causal=True)
    vq = GroupedVQ(32, 2, codebook_size=16).eval()
    parts = astra_parts(torch.randn(1, 12, 32), 3)
    changed = [parts[0], parts[1], parts[2] + torch.randn_like(parts[2])]
    a, _ = astra_layer(block, vq, parts)
    b, _ = astra_layer(block, vq, changed)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # ...and a non-causal device does see them
    block.causal = False
    a, _ = astra_layer(block, vq, parts)
    b, _ = astra_layer(block, vq, changed)
    assert not torch.allclose(a[0], b[0])


def test_remote_tokens_go_through_the_codes():
    """Remote tokens that are codewords are rebuilt exactly; perturbing a remote token within its
    Voronoi cell does not change other devices' outputs, while local tokens stay full precision."""
    torch.manual_seed(2)
    block = ReferenceBlock.from_dims(32, 4)
    vq = GroupedVQ(32, 4, codebook_size=16).eval()
    codes = torch.randint(0, 16, (1, 12, 4))
    x = vq.decode(codes).detach()
    parts = astra_parts(x, 3)
    outs, _ = astra_layer(block, vq, parts)
    assert torch.allclose(torch.cat(outs, 1), block(x), **TOL)
    nudged = [parts[0], parts[1] + 1e-4, parts[2]]
    outs2, _ = astra_layer(block, vq, nudged)
    assert torch.equal(outs2[0], outs[0]) and torch.equal(outs2[2], outs[2])
    assert not torch.equal(outs2[1], outs[1])


def test_distributed_cls_copies_are_local_and_pooled():
    torch.manual_seed(3)
    block = ReferenceBlock.from_dims(32, 4)
    x = torch.randn(2, 13, 32)  # token 0 = CLS, 12 patches
    parts = astra_parts(x, 4, cls_token=True)
    assert [p.shape[1] for p in parts] == [4, 4, 4, 4]
    assert all(torch.equal(p[:, 0], x[:, 0]) for p in parts)
    full = block(x)
    outs, _ = astra_layer(block, None, parts, cls_copies=True)
    # every CLS copy sees the CLS once plus all patches: each equals the unsplit CLS output
    for o in outs:
        assert torch.allclose(o[:, 0], full[:, 0], **TOL)
    assert torch.allclose(pool_cls(outs), full[:, 0], **TOL)
    assert torch.allclose(torch.cat([o[:, 1:] for o in outs], 1), full[:, 1:], **TOL)
    # with VQ: patches are codewords, the CLS is not; exact only if the CLS is never quantized
    vq = GroupedVQ(32, 4, codebook_size=16).eval()
    patches = vq.decode(torch.randint(0, 16, (2, 12, 4))).detach()
    x = torch.cat([torch.randn(2, 1, 32) * 3, patches], dim=1)
    outs, _ = astra_layer(block, vq, astra_parts(x, 4, cls_token=True), cls_copies=True)
    assert torch.allclose(pool_cls(outs), block(x)[:, 0], **TOL)


def test_pool_cls_is_the_mean_of_the_copies():
    parts = [torch.full((2, 3, 4), float(i)) for i in range(4)]
    assert torch.equal(pool_cls(parts), torch.full((2, 4), 1.5))


def test_layer_is_differentiable_and_noise_is_training_only():
    torch.manual_seed(4)
    block = ReferenceBlock.from_dims(32, 4, causal=True)
    vq = GroupedVQ(32, 4, codebook_size=16, beta=1e-3, noise_lambda=0.5)
    parts = [p.clone().requires_grad_(True) for p in astra_parts(torch.randn(1, 12, 32), 3)]
    outs, loss = astra_layer(block, vq, parts)
    assert loss.item() > 0
    (torch.cat(outs, 1).pow(2).mean() + loss).backward()
    assert all(p.grad is not None for p in parts)
    assert block.k_proj.weight.grad.abs().sum() > 0 and vq.codebook.grad.abs().sum() > 0
    vq.eval()
    e1, _ = astra_layer(block, vq, parts)
    e2, _ = astra_layer(block, vq, parts)
    assert all(torch.equal(a, b) for a, b in zip(e1, e2))
    vq.train()
    t1, _ = astra_layer(block, vq, parts)
    assert not torch.allclose(t1[2], e1[2])
    assert torch.equal(t1[0], e1[0])  # causal device 0 sees no remote (noisy) tokens
