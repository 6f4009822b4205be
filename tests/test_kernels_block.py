"""Reference block: families (MHA/GQA, GELU/SwiGLU, LayerNorm/RMSNorm) and the causal mask."""

import pytest
import torch
from torch import nn

from astrasim.kernels.block import ReferenceBlock
from astrasim.models import get_model


def test_builtin_families_build_the_published_layers():
    gpt2 = ReferenceBlock(get_model("gpt2-s"))
    assert isinstance(gpt2.norm1, nn.LayerNorm) and gpt2.mlp.fc1.out_features == 3072 and gpt2.causal
    assert gpt2.q_proj.bias is not None
    vit = ReferenceBlock(get_model("vit-base"))
    assert not vit.causal
    n = sum(p.numel() for p in vit.parameters())
    assert n == 7_087_872  # ViT-Base: 12 layers have 85.0 M parameters in their blocks


def test_llama_like_block_has_gqa_swiglu_rmsnorm():
    b = ReferenceBlock.from_dims(64, 8, kv_heads=2, mlp_hidden=96, activation="swiglu", norm="rmsnorm", causal=True)
    assert isinstance(b.norm1, nn.RMSNorm) and b.k_proj.out_features == 2 * 8 and b.q_proj.bias is None
    assert {name for name, _ in b.mlp.named_children()} == {"gate", "up", "down"}
    y = b(torch.randn(2, 9, 64))
    assert y.shape == (2, 9, 64) and torch.isfinite(y).all()


def test_gqa_equals_mha_with_repeated_kv_heads():
    torch.manual_seed(0)
    gqa = ReferenceBlock.from_dims(32, 4, kv_heads=2, mlp_hidden=48, activation="swiglu", norm="rmsnorm", causal=True)
    mha = ReferenceBlock.from_dims(32, 4, kv_heads=4, mlp_hidden=48, activation="swiglu", norm="rmsnorm", causal=True)
    state = gqa.state_dict()
    hd = 8
    for name in ("k_proj.weight", "v_proj.weight"):
        w = state[name].view(2, hd, 32)
        state[name] = w.repeat_interleave(2, dim=0).reshape(4 * hd, 32)
    mha.load_state_dict(state)
    x = torch.randn(2, 11, 32)
    assert torch.allclose(gqa(x), mha(x), atol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_causal_mask_hides_later_tokens_only_when_causal(causal):
    torch.manual_seed(1)
    b = ReferenceBlock.from_dims(32, 4, causal=causal)
    x = torch.randn(1, 10, 32)
    x2 = x.clone()
    x2[:, 6:] += torch.randn(1, 4, 32)
    y, y2 = b(x), b(x2)
    same_prefix = torch.allclose(y[:, :6], y2[:, :6], atol=1e-6)
    assert same_prefix == causal
    assert not torch.allclose(y[:, 6:], y2[:, 6:])


def test_block_matches_a_hand_written_layer():
    torch.manual_seed(2)
    b = ReferenceBlock.from_dims(16, 2, mlp_hidden=32, causal=True)
    x = torch.randn(1, 5, 16)
    h = b.norm1(x)
    q, k, v = (p(h).view(1, 5, 2, 8).transpose(1, 2) for p in (b.q_proj, b.k_proj, b.v_proj))
    s = q @ k.transpose(-1, -2) / 8**0.5
    s = s.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf"))
    o = (s.softmax(-1) @ v).transpose(1, 2).reshape(1, 5, 16)
    h1 = x + b.o_proj(o)
    y = h1 + b.mlp.fc2(nn.functional.gelu(b.mlp.fc1(b.norm2(h1))))
    assert torch.allclose(b(x), y, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_blocks_run(dtype):
    torch.manual_seed(3)
    b32 = ReferenceBlock.from_dims(32, 4)
    b = ReferenceBlock.from_dims(32, 4, dtype=dtype)
    b.load_state_dict({k: v.to(dtype) for k, v in b32.state_dict().items()})
    x = torch.randn(1, 7, 32)
    y = b(x.to(dtype))
    assert y.dtype == dtype
    assert torch.allclose(y.float(), b32(x), atol=0.1)
