"""Per-device blocks of every strategy against the full reference block, incl. uneven splits."""

import pytest
import torch

from astrasim.errors import UserError
from astrasim.kernels.astra import astra_layer, astra_parts
from astrasim.kernels.block import ReferenceBlock
from astrasim.kernels.parallel import (
    AstraBlock,
    BPAGBlock,
    BPSPBlock,
    SingleBlock,
    SPBlock,
    TPBlock,
)
from astrasim.kernels.split import head_bounds, split_sizes, token_bounds
from astrasim.kernels.vq import GroupedVQ
from astrasim.models import model_from_dict

# float32, hidden <= 48: summing N partial outputs / reordering a softmax changes results by ~1e-6
TOL = dict(atol=2e-5, rtol=1e-4)

BLOCKS = {
    "mha": dict(hidden=32, heads=4),
    "mha12": dict(hidden=48, heads=12),  # 12 heads, for the 5-device uneven split
    "gqa": dict(hidden=32, heads=8, kv_heads=2, mlp_hidden=40, activation="swiglu", norm="rmsnorm"),
}


def make_block(kind, causal):
    torch.manual_seed(hash((kind, causal)) % 1000)
    block = ReferenceBlock.from_dims(**BLOCKS[kind], causal=causal)
    with torch.no_grad():  # non-trivial norm parameters, so slicing them is checked too
        for p in (*block.norm1.parameters(), *block.norm2.parameters()):
            p.add_(0.1 * torch.randn_like(p))
    return block


def test_split_rule_is_tensor_split():
    assert split_sizes(197, 4) == [50, 49, 49, 49]
    assert split_sizes(12, 5) == [3, 3, 2, 2, 2]
    for total, n in [(197, 4), (1024, 8), (13, 5), (5, 5)]:
        expect = [len(c) for c in torch.tensor_split(torch.arange(total), n)]
        assert split_sizes(total, n) == expect
        assert [b - a for a, b in token_bounds(total, n)] == expect
    with pytest.raises(UserError, match="at most 8 devices"):
        split_sizes(8, 9, what="tokens")


def test_head_rule_keeps_query_heads_with_their_kv_head():
    q, kv = head_bounds(12, 12, 5)
    assert [b - a for a, b in q] == [3, 3, 2, 2, 2] and q == kv
    q, kv = head_bounds(32, 8, 3)
    assert [b - a for a, b in kv] == [3, 3, 2] and [b - a for a, b in q] == [12, 12, 8]
    with pytest.raises(UserError, match="KV heads over 16 devices"):
        head_bounds(32, 8, 16)


def test_every_strategy_maps_each_profile_op_to_a_real_kernel_call():
    from astrasim.strategies import STRATEGIES

    spec = model_from_dict(
        {
            "name": "tiny",
            "layers": 2,
            "hidden": 64,
            "heads": 4,
            "mlp_hidden": 128,
            "tokens": 16,
            "causal": False,
            "cls_token": True,
        }
    )
    block = ReferenceBlock(spec).eval()
    moe = model_from_dict({**spec.to_dict(), "name": "tiny-moe", "experts": 4, "experts_per_token": 2})
    with torch.inference_mode():
        for name, s in STRATEGIES.items():
            knobs = s.knobs(**({"groups": 4} if "groups" in s.Knobs.model_fields else {}))
            b = block if s.applies(spec) else ReferenceBlock(moe).eval()  # ep: the same shape with experts
            calls = s.kernel_calls(b, 2, spec.tokens, knobs, spec.cls_token)
            extra = ("cls_pool",) if name == "astra" else ()
            if s.ops:  # a strategy without profile rows of its own (pp) runs another's kernels
                assert tuple(calls) == s.ops + extra, name
            for op, call in calls.items():
                assert isinstance(call(), (torch.Tensor, tuple, object)), (name, op)


def test_single_is_the_block():
    block = make_block("mha", True)
    x = torch.randn(2, 9, 32)
    assert torch.allclose(SingleBlock(block)(x), block(x), atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind, n", [("mha", 1), ("mha", 2), ("mha", 4), ("mha12", 5), ("gqa", 2)])
def test_tp_partial_outputs_sum_to_the_full_block(kind, n, causal):
    block = make_block(kind, causal)
    d = block.hidden
    x = torch.randn(2, 11, d)
    shards = [TPBlock(block, n, r) for r in range(n)]
    assert sum(s.heads for s in shards) == block.heads
    h = sum(s.attn(x) for s in shards)  # all-reduce
    assert torch.allclose(h, block.attn_residual(x), **TOL)
    y = sum(s.mlp(h) for s in shards)  # all-reduce
    assert torch.allclose(y, block(x), **TOL)


def test_tp_uneven_heads_follow_the_rule():
    block = make_block("mha12", False)
    assert [TPBlock(block, 5, r).heads for r in range(5)] == [3, 3, 2, 2, 2]
    assert [TPBlock(block, 5, r).mlp_shard.fc1.out_features for r in range(5)] == split_sizes(192, 5)


def test_tp_more_devices_than_kv_heads_is_a_clear_error():
    with pytest.raises(UserError, match="devices"):
        TPBlock(make_block("gqa", True), 4, 0)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tokens, n", [(16, 4), (13, 4), (197, 4), (13, 5), (9, 1)])
def test_sp_outputs_concatenated_equal_the_full_block(tokens, n, causal):
    block = make_block("mha", causal)
    x = torch.randn(2, tokens, 32)
    outs = [SPBlock(block, n, r)(x) for r in range(n)]
    assert [o.shape[1] for o in outs] == split_sizes(tokens, n)
    assert torch.allclose(torch.cat(outs, dim=1), block(x), **TOL)


def test_sp_gqa_causal():
    block = make_block("gqa", True)
    x = torch.randn(1, 14, 32)
    outs = [SPBlock(block, 3, r)(x) for r in range(3)]
    assert torch.allclose(torch.cat(outs, dim=1), block(x), **TOL)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind, tokens, n", [("mha", 16, 4), ("mha", 13, 5), ("gqa", 11, 2), ("mha", 8, 1)])
def test_astra_with_full_precision_remote_tokens_equals_sp(kind, tokens, n, causal):
    block = make_block(kind, causal)
    d = block.hidden
    x = torch.randn(2, tokens, d)
    vq = GroupedVQ(d, 4, codebook_size=16).eval()
    parts = astra_parts(x, n)
    for r in range(n):
        dev = AstraBlock(block, vq, n, r)
        remote = [parts[j] for j in dev.senders()]
        x_remote = torch.cat(remote, 1) if remote else x[:, :0]
        local = dev.local_attn(parts[r])
        k, v = dev.project_remote(x_remote)  # remote tokens passed at full precision
        y = dev.mlp(dev.merge(parts[r], local, dev.remote_attn(local.q, k, v)))
        assert torch.allclose(y, SPBlock(block, n, r)(x), **TOL)


@pytest.mark.parametrize("causal", [False, True])
def test_astra_per_device_ops_equal_the_simulated_layer(causal):
    block = make_block("mha", causal)
    vq = GroupedVQ(32, 8, codebook_size=32).eval()
    parts = astra_parts(torch.randn(2, 15, 32), 4)
    expected, _ = astra_layer(block, vq, parts)
    devices = [AstraBlock(block, vq, 4, r) for r in range(4)]
    codes = [dev.vq_encode(p) for dev, p in zip(devices, parts)]  # all-gather of the codes
    assert codes[0].shape == (2, 4, 8)
    for r, dev in enumerate(devices):
        remote = torch.cat([codes[j] for j in dev.senders()], 1) if dev.senders() else codes[r][:, :0]
        assert torch.allclose(dev(parts[r], remote), expected[r], **TOL)
    if causal:
        assert devices[0].senders() == [] and devices[3].senders() == [0, 1, 2]
        assert AstraBlock(block, vq, 4, 0, causal_skip=False).senders() == [1, 2, 3]
    else:
        assert devices[1].senders() == [0, 2, 3]


def test_astra_cls_copy_is_not_encoded_and_pooled():
    block = make_block("mha", False)
    vq = GroupedVQ(32, 4, codebook_size=16).eval()
    x = torch.randn(1, 13, 32)
    parts = astra_parts(x, 3, cls_token=True)
    devices = [AstraBlock(block, vq, 3, r, cls_token=True) for r in range(3)]
    assert devices[0].shared_bounds(13) == [(1, 5), (5, 9), (9, 13)]
    codes = [dev.vq_encode(p) for dev, p in zip(devices, parts)]
    assert [c.shape[1] for c in codes] == [4, 4, 4]
    outs = [dev(parts[r], torch.cat([codes[j] for j in dev.senders()], 1)) for r, dev in enumerate(devices)]
    expected, _ = astra_layer(block, vq, parts, cls_copies=True)
    for o, e in zip(outs, expected):
        assert torch.allclose(o, e, **TOL)
    assert torch.allclose(AstraBlock.cls_pool(outs), torch.stack([o[:, 0] for o in outs]).mean(0))


@pytest.mark.parametrize("mlp", ["full", "sliced"])
@pytest.mark.parametrize("kind", ["mha", "gqa"])
def test_decoupled_layer_on_one_device_is_the_full_layer(kind, mlp):
    block = make_block(kind, True)
    x = torch.randn(1, 7, block.hidden)
    bp = BPAGBlock(block, 1, 0, mlp)
    assert bp.d_slice == (0, block.hidden)
    assert torch.allclose(bp.decoupled_layer(x), block(x), **TOL)
    assert torch.allclose(bp.full_layer(x), block(x), atol=1e-6)


def _detransformer_layer(block, x, d_slice, kv_slice, width):
    """DeTransformer's decoupled layer written out with torch.nn.functional from the full layer's
    weight blocks: all heads (and KV heads), each `width` wide, on the slice; MLP at full width."""
    import torch.nn.functional as F

    (a, b), (ka, kb) = d_slice, kv_slice
    lin = lambda m, rows, cols: (
        m.weight[rows[0] : rows[1], cols[0] : cols[1]],
        None if m.bias is None else m.bias[rows[0] : rows[1]],
    )
    norm = lambda n, t: (
        F.layer_norm(t, (b - a,), n.weight[a:b], n.bias[a:b], n.eps)
        if block.norm_kind == "layernorm"
        else F.rms_norm(t, (b - a,), n.weight[a:b], n.eps)
    )
    heads = lambda t, h: t.view(1, t.shape[1], h, width).transpose(1, 2)
    h = norm(block.norm1, x)
    q = heads(F.linear(h, *lin(block.q_proj, (a, b), (a, b))), block.heads)
    k = heads(F.linear(h, *lin(block.k_proj, (ka, kb), (a, b))), block.kv_heads)
    v = heads(F.linear(h, *lin(block.v_proj, (ka, kb), (a, b))), block.kv_heads)
    rep = block.heads // block.kv_heads
    o = F.scaled_dot_product_attention(
        q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=block.causal
    )
    h = x + F.linear(o.transpose(1, 2).reshape(1, x.shape[1], b - a), *lin(block.o_proj, (a, b), (a, b)))
    z = norm(block.norm2, h)
    m = block.mlp
    full = (0, block.mlp_hidden)
    if block.activation == "gelu":
        u = F.gelu(F.linear(z, *lin(m.fc1, full, (a, b))), approximate=m.gelu_approximate)
        return h + F.linear(u, *lin(m.fc2, (a, b), full))
    u = F.silu(F.linear(z, *lin(m.gate, full, (a, b)))) * F.linear(z, *lin(m.up, full, (a, b)))
    return h + F.linear(u, *lin(m.down, (a, b), full))


@pytest.mark.parametrize("kind, n, widths", [("mha", 3, [3, 3, 2]), ("gqa", 3, [2, 1, 1]), ("mha", 8, [1] * 8)])
def test_decoupled_layer_keeps_every_head_narrower_and_the_full_mlp(kind, n, widths):
    block = make_block(kind, True)  # mha: 4 heads of width 8; gqa: 8 query / 2 KV heads of width 4, SwiGLU
    layers = [BPAGBlock(block, n, r) for r in range(n)]
    assert [bp.d_slice[1] - bp.d_slice[0] for bp in layers] == [block.heads * w for w in widths]
    x = torch.randn(1, 6, block.hidden)
    outs = []
    kv_start = 0
    for bp, w in zip(layers, widths):
        sub = bp.decoupled
        assert (sub.heads, sub.kv_heads, sub.head_dim) == (block.heads, block.kv_heads, w)
        assert sub.mlp_hidden == block.mlp_hidden  # not divided by N
        a, b = bp.d_slice
        out = bp.decoupled_layer(x[..., a:b])
        kv_slice = (kv_start, kv_start + block.kv_heads * w)
        kv_start = kv_slice[1]
        assert torch.allclose(out, _detransformer_layer(block, x[..., a:b], (a, b), kv_slice, w), **TOL)
        outs.append(out)
    assert torch.cat(outs, -1).shape == x.shape
    with pytest.raises(UserError, match="head dims"):
        BPAGBlock(block, block.head_dim + 1, 0)


def test_sliced_decoupled_layers_are_slices_of_the_full_layer():
    block = make_block("mha12", False)  # 12 heads of width 4 over 5 devices: 3,3,2,2,2 heads
    layers = [BPAGBlock(block, 5, r, "sliced") for r in range(5)]
    assert [bp.d_slice[1] - bp.d_slice[0] for bp in layers] == [12, 12, 8, 8, 8]
    assert sum(bp.decoupled.mlp_hidden for bp in layers) == block.mlp_hidden
    a, b = layers[2].d_slice
    sub = layers[2].decoupled
    assert torch.equal(sub.q_proj.weight, block.q_proj.weight[a:b, a:b])
    assert torch.equal(sub.norm1.weight, block.norm1.weight[a:b])
    x = torch.randn(1, 6, 48)
    outs = [bp.decoupled_layer(x[..., bp.d_slice[0] : bp.d_slice[1]]) for bp in layers]
    assert torch.cat(outs, -1).shape == x.shape
    # the slices are independent: changing one device's slice leaves the others unchanged
    x2 = x.clone()
    x2[..., a:b] += 1.0
    assert torch.equal(layers[0].decoupled_layer(x2[..., :12]), outs[0])


def test_bp_sp_full_layer_is_sequence_parallel():
    block = make_block("mha", True)
    x = torch.randn(1, 10, 32)
    outs = [BPSPBlock(block, 3, r) for r in range(3)]
    y = torch.cat([dev.mlp(dev.attn(x)) for dev in outs], 1)
    assert torch.allclose(y, block(x), **TOL)


@pytest.mark.parametrize("n", [2, 3])
def test_tp_partial_outputs_of_an_moe_block_sum_to_the_full_block(n):
    """Tensor parallelism of a Qwen2-MoE-like block (router, 4 experts, top 2, a gated shared expert,
    Q/K/V biases, q/k norms): every device routes every token and runs its columns of each expert."""
    spec = model_from_dict(
        {
            "name": "tiny-moe-tp",
            "layers": 1,
            "hidden": 24,
            "heads": 6,
            "kv_heads": 3,
            "mlp_hidden": 40,
            "tokens": 9,
            "causal": True,
            "norm": "rmsnorm",
            "activation": "swiglu",
            "qkv_bias": True,
            "bias": False,
            "qk_norm": True,
            "experts": 4,
            "experts_per_token": 2,
            "expert_mlp_hidden": 12,
            "shared_experts": 1,
            "shared_expert_mlp_hidden": 18,
            "shared_expert_gate": True,
        }
    )
    torch.manual_seed(3)
    block = ReferenceBlock(spec)
    x = torch.randn(1, 9, 24)
    shards = [TPBlock(block, n, r) for r in range(n)]
    assert sum(s.mlp_shard.experts[0].gate.out_features for s in shards) == 12
    h = sum(s.attn(x) for s in shards)
    assert torch.allclose(h, block.attn_residual(x), **TOL)
    assert torch.allclose(sum(s.mlp(h) for s in shards), block(x), **TOL)
