"""The per-device block of every strategy, for N devices, split into the ops that the profile
table times and the simulator schedules around communication.

Every class is built from a :class:`~astrasim.kernels.block.ReferenceBlock` (weights sliced or
shared from it, so outputs can be checked against it), ``n_devices`` and ``rank``, and is used in
inference (no autograd needed). Splits follow :mod:`astrasim.kernels.split`: tokens and heads by
the ``torch.tensor_split`` rule, device 0 holding the largest share.

Call order of one layer on device ``rank`` (``comm:`` marks where the devices communicate):

single   h = attn(x); y = mlp(h)
tp       p = attn(x); comm: all-reduce (sum of p over devices) -> h
         p = mlp(h);  comm: all-reduce -> y                       (x, h, y: all T tokens, full D)
sp       comm: all-gather of the block input -> x_all (all T tokens)
         h = attn(x_all)  (Q of own tokens, K/V of all tokens); y = mlp(h)   (own tokens)
bp-ag    decoupled layers: s = decoupled_layer(s)   (s = own D-slice of all T tokens; no comm)
         comm: all-gather of the slices -> x; y = full_layer(x) (redundant on every device);
         next block starts from the device's slice of y
bp-sp    decoupled layers as bp-ag; comm: all-to-all slices -> own tokens at full D;
         comm: all-gather of those -> x_all; h = attn(x_all); y = mlp(h);
         comm: all-to-all back to slices for the next block
astra    c = vq_encode(x)                 comm: all-gather of the codes (causal models: device i
         st = local_attn(x)                     only needs the codes of devices < i)
         kv = remote_kv(codes of the visible remote tokens, concatenated in device order)
         r = remote_attn(st.q, *kv); h = merge(x, st, r); y = mlp(h)
         ViT, after the last layer: comm: gather of the N CLS outputs; cls_pool(cls outputs)

Decoupled layer (DeTransformer block parallelism), two shapes (``mlp`` argument / bp knob
``decoupled_mlp``):

* ``full`` (the default, DeTransformer's own shape: yuanxinnn/DeTransformer,
  performance_experiment/bert_model.py, transformer_layer.py): a whole pre-norm layer on the
  device's D_r-wide slice of the hidden state that keeps ALL heads, each narrower: every query
  and KV head is w_r wide (the rule over head_dim, so D_r = heads * w_r; D/N when N divides
  head_dim), norms over the D_r features, and the MLP at its FULL intermediate width (4D for
  BERT/GPT2, mlp_hidden for SwiGLU). Attention projections cost ~1/N^2 of the full layer's, the
  MLP ~1/N. Needs N <= head_dim.
* ``sliced`` (astrasim's earlier shape): the device's H_r heads of the model's head width (query
  heads split by the rule over KV heads, see split.head_bounds), D_r = H_r * head_dim, KV heads
  KV_r, MLP hidden F_r (the rule over the MLP width): ~1/N^2 of the whole layer. Needs N <= kv_heads.

Weights are blocks of the full layer's matrices (rows and columns of the slice, of all MLP units
for ``full``); the decoupled layer is a retrained architecture, so only its shape matters for
timing. With N = 1 both shapes are exactly the full layer.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import nn

from astrasim.kernels.astra import pool_cls
from astrasim.kernels.attention import attend, attend_lse, attn_bias, causal_allowed, merge_partials
from astrasim.kernels.block import MLP, MoEMLP, ReferenceBlock
from astrasim.kernels.split import astra_token_bounds, head_bounds, split_bounds, token_bounds
from astrasim.kernels.vq import GroupedVQ

Tensor = torch.Tensor


def _slice_linear(
    lin: nn.Linear, rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None, keep_bias: bool = True
) -> nn.Linear:
    """A copy of the rows (output features) / columns (input features) block of a linear layer."""
    w = lin.weight.detach()
    if rows is not None:
        w = w[rows[0] : rows[1]]
    if cols is not None:
        w = w[:, cols[0] : cols[1]]
    has_bias = lin.bias is not None and keep_bias
    out = nn.Linear(w.shape[1], w.shape[0], bias=has_bias, dtype=w.dtype, device=w.device)
    with torch.no_grad():
        out.weight.copy_(w)
        if has_bias:
            b = lin.bias.detach()
            out.bias.copy_(b if rows is None else b[rows[0] : rows[1]])
    return out


def _mlp_shard(
    block: ReferenceBlock, cols: tuple[int, int], *, first: bool, d_slice: tuple[int, int] | None = None
) -> nn.Module:
    """The MLP restricted to hidden units [cols) (and, for decoupled layers, to a D-slice); an MoE MLP keeps
    its router and the columns [cols) of every expert (the shared experts' in the same proportion)."""
    src = block.mlp
    if isinstance(src, MoEMLP):
        return _moe_shard(src, cols, block.mlp_hidden, first=first, d_slice=d_slice)
    return _dense_shard(src, cols, first=first, d_slice=d_slice)


def _dense_shard(src: MLP, cols: tuple[int, int], *, first: bool, d_slice: tuple[int, int] | None = None) -> MLP:
    mod = MLP.__new__(MLP)
    nn.Module.__init__(mod)
    mod.activation, mod.gelu_approximate = src.activation, src.gelu_approximate
    if src.activation == "gelu":
        mod.fc1 = _slice_linear(src.fc1, rows=cols, cols=d_slice)
        mod.fc2 = _slice_linear(src.fc2, rows=d_slice, cols=cols, keep_bias=first)
    else:
        mod.gate = _slice_linear(src.gate, rows=cols, cols=d_slice)
        mod.up = _slice_linear(src.up, rows=cols, cols=d_slice)
        mod.down = _slice_linear(src.down, rows=d_slice, cols=cols, keep_bias=first)
    return mod


def _moe_shard(
    src: MoEMLP, cols: tuple[int, int], width: int, *, first: bool, d_slice: tuple[int, int] | None = None
) -> MoEMLP:
    """Megatron's split of an MoE MLP: every device routes every token (the router whole), runs columns
    [cols) of each selected expert, and the partial sums add up over devices like a dense MLP's."""
    mod = MoEMLP.__new__(MoEMLP)
    nn.Module.__init__(mod)
    mod.k, mod.activation = src.k, src.activation
    mod.router = _slice_linear(src.router, cols=d_slice)
    mod.experts = nn.ModuleList(_dense_shard(e, cols, first=first, d_slice=d_slice) for e in src.experts)
    mod.shared, mod.shared_gate = None, None
    if src.shared is not None:
        shared = src.shared.down.in_features
        mod.shared = _dense_shard(
            src.shared, (cols[0] * shared // width, cols[1] * shared // width), first=first, d_slice=d_slice
        )
        mod.shared_gate = _slice_linear(src.shared_gate, cols=d_slice) if src.shared_gate is not None else None
    return mod


class SingleBlock(nn.Module):
    """The whole layer on one device (ops: attn, mlp)."""

    def __init__(self, block: ReferenceBlock, n_devices: int = 1, rank: int = 0):
        super().__init__()
        self.block, self.n_devices, self.rank = block, 1, 0

    def attn(self, x: Tensor) -> Tensor:
        return self.block.attn_residual(x)

    def mlp(self, h: Tensor) -> Tensor:
        return self.block.mlp_residual(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(self.attn(x))


class TPBlock(nn.Module):
    """Megatron tensor parallelism: this device's heads and MLP columns. Both ops return a partial
    sum; the sum over devices (the all-reduce) is the full layer's output. Device 0 adds the
    residual and the output biases."""

    def __init__(self, block: ReferenceBlock, n_devices: int, rank: int):
        super().__init__()
        self.block, self.n_devices, self.rank = block, n_devices, rank
        (h0, h1), (k0, k1) = (b[rank] for b in head_bounds(block.heads, block.kv_heads, n_devices))
        self.heads, self.kv_heads = h1 - h0, k1 - k0
        hd = block.head_dim
        self.q_proj = _slice_linear(block.q_proj, rows=(h0 * hd, h1 * hd))
        self.k_proj = _slice_linear(block.k_proj, rows=(k0 * hd, k1 * hd))
        self.v_proj = _slice_linear(block.v_proj, rows=(k0 * hd, k1 * hd))
        self.o_proj = _slice_linear(block.o_proj, cols=(h0 * hd, h1 * hd), keep_bias=rank == 0)
        self.mlp_cols = split_bounds(block.mlp_hidden, n_devices, what="MLP columns")[rank]
        self.mlp_shard = _mlp_shard(block, self.mlp_cols, first=rank == 0)

    def attn(self, x: Tensor) -> Tensor:
        """Partial (pre-all-reduce) attention output of this device's heads, [B, T, D]."""
        b = self.block
        h = b.norm1(x)
        q = b.split_heads(self.q_proj(h), self.heads)
        k, v = b.split_heads(self.k_proj(h), self.kv_heads), b.split_heads(self.v_proj(h), self.kv_heads)
        if b.q_norm is not None:  # Qwen3's per-head norms are local to the device's heads
            q, k = b.q_norm(q), b.k_norm(k)
        out = self.o_proj(b.merge_heads(attend(q, k, v, is_causal=b.causal)))
        return out + x if self.rank == 0 else out

    def mlp(self, h: Tensor) -> Tensor:
        """Partial (pre-all-reduce) MLP output of this device's columns, [B, T, D]."""
        out = self.mlp_shard(self.block.norm2(h))
        return out + h if self.rank == 0 else out


class SPBlock(nn.Module):
    """Sequence parallelism (Voltage): own tokens' queries over all T gathered tokens (causal models
    mask, per query, the keys after it; K/V are projected for all T tokens on every device)."""

    def __init__(self, block: ReferenceBlock, n_devices: int, rank: int):
        super().__init__()
        self.block, self.n_devices, self.rank = block, n_devices, rank
        self._bias: dict[int, Tensor] = {}

    def bounds(self, tokens: int) -> tuple[int, int]:
        """This device's token range in a sequence of `tokens`."""
        return token_bounds(tokens, self.n_devices)[self.rank]

    def _causal_bias(self, tokens: int, device) -> Tensor:
        if tokens not in self._bias:
            a, b = self.bounds(tokens)
            self._bias[tokens] = attn_bias(causal_allowed(a, b - a, 0, tokens, device=device), self.block.dtype)
        return self._bias[tokens]

    def attn(self, x_all: Tensor) -> Tensor:
        """x_all: the gathered block input [B, T, D]; returns h of own tokens [B, T_rank, D]."""
        blk = self.block
        a, b = self.bounds(x_all.shape[1])
        h = blk.norm1(x_all)
        k, v = blk.project_kv(h)
        q = blk.project_q(h[:, a:b])
        bias = self._causal_bias(x_all.shape[1], x_all.device) if blk.causal else None
        return x_all[:, a:b] + blk.o_proj(blk.merge_heads(attend(q, k, v, bias=bias)))

    def mlp(self, h: Tensor) -> Tensor:
        return self.block.mlp_residual(h)

    def forward(self, x_all: Tensor) -> Tensor:
        return self.mlp(self.attn(x_all))


DECOUPLED_MLP = ("full", "sliced")


def decoupled_slices(block: ReferenceBlock, n_devices: int, mlp: str = "full") -> list[tuple[int, int]]:
    """Every device's [start, end) of the hidden state that its decoupled layer reads and writes."""
    if mlp == "full":
        widths = [(b - a) * block.heads for a, b in split_bounds(block.head_dim, n_devices, what="head dims")]
    elif mlp == "sliced":
        widths = [(b - a) * block.head_dim for a, b in head_bounds(block.heads, block.kv_heads, n_devices)[0]]
    else:
        raise ValueError(f"decoupled MLP shape must be one of {DECOUPLED_MLP}, got {mlp!r}")
    starts = [sum(widths[:r]) for r in range(n_devices)]
    return [(a, a + w) for a, w in zip(starts, widths)]


def decoupled_block(
    block: ReferenceBlock, n_devices: int, rank: int, mlp: str = "full"
) -> tuple[ReferenceBlock, tuple[int, int]]:
    """Device `rank`'s DeTransformer decoupled layer of shape `mlp` (module docstring) and its D-slice."""
    d_slice = decoupled_slices(block, n_devices, mlp)[rank]
    if mlp == "full":
        w0, w1 = split_bounds(block.head_dim, n_devices, what="head dims")[rank]
        heads, kv_heads, cols = block.heads, block.kv_heads, (0, block.mlp_hidden)
        kv_slice = (block.kv_heads * w0, block.kv_heads * w1)
        head_dim = w1 - w0
    else:
        (h0, h1), (k0, k1) = (b[rank] for b in head_bounds(block.heads, block.kv_heads, n_devices))
        heads, kv_heads = h1 - h0, k1 - k0
        kv_slice = (k0 * block.head_dim, k1 * block.head_dim)
        cols = split_bounds(block.mlp_hidden, n_devices, what="MLP columns")[rank]
        head_dim = block.head_dim
    spec = dataclasses.replace(
        block.spec,
        hidden=d_slice[1] - d_slice[0],
        heads=heads,
        kv_heads=kv_heads,
        mlp_hidden=cols[1] - cols[0],
        head_dim=head_dim,
    )
    sub = ReferenceBlock(spec, dtype=block.dtype).to(block.q_proj.weight.device)
    with torch.no_grad():
        for norm in ("norm1", "norm2"):
            for name, p in getattr(sub, norm).named_parameters():
                p.copy_(getattr(getattr(block, norm), name)[d_slice[0] : d_slice[1]])
        sub.q_proj = _slice_linear(block.q_proj, rows=d_slice, cols=d_slice)
        sub.k_proj = _slice_linear(block.k_proj, rows=kv_slice, cols=d_slice)
        sub.v_proj = _slice_linear(block.v_proj, rows=kv_slice, cols=d_slice)
        sub.o_proj = _slice_linear(block.o_proj, rows=d_slice, cols=d_slice)
        sub.mlp = _mlp_shard(block, cols, first=True, d_slice=d_slice)
    return sub, d_slice


class BPAGBlock(nn.Module):
    """Block parallelism with all-gather (DeTransformer BP+AG): decoupled layers on this device's
    D-slice of all T tokens, then an ordinary full layer on all T tokens (run on every device)."""

    def __init__(self, block: ReferenceBlock, n_devices: int, rank: int, mlp: str = "full"):
        super().__init__()
        self.block, self.n_devices, self.rank, self.mlp_shape = block, n_devices, rank, mlp
        self.decoupled, self.d_slice = decoupled_block(block, n_devices, rank, mlp)

    def decoupled_layer(self, x_slice: Tensor) -> Tensor:
        """x_slice [B, T, D_rank] -> [B, T, D_rank]; no communication."""
        return self.decoupled(x_slice)

    def full_layer(self, x: Tensor) -> Tensor:
        """The full layer on all T tokens (after the all-gather of the slices)."""
        return self.block(x)


class BPSPBlock(BPAGBlock):
    """Block parallelism with a sequence-parallel full layer (BP+SP): decoupled layers as BP+AG,
    then the full layer as :class:`SPBlock` (ops attn, mlp)."""

    def __init__(self, block: ReferenceBlock, n_devices: int, rank: int, mlp: str = "full"):
        super().__init__(block, n_devices, rank, mlp)
        self.sp = SPBlock(block, n_devices, rank)

    def attn(self, x_all: Tensor) -> Tensor:
        return self.sp.attn(x_all)

    def mlp(self, h: Tensor) -> Tensor:
        return self.sp.mlp(h)


class LocalAttention(NamedTuple):
    """What local_attn hands on: own queries, and the attention over own tokens with its lse."""

    q: Tensor
    out: Tensor
    lse: Tensor


class AstraBlock(nn.Module):
    """ASTRA (G, K) on device `rank`: full-precision attention over own tokens, and over the other
    devices' tokens rebuilt from their VQ codes; the two partial attentions are merged exactly by
    their log-sum-exp. With ``cls_token`` (ViT), token 0 of ``x`` is this device's CLS copy: it is
    not encoded, and after the last layer the N CLS outputs are mean-pooled by :meth:`cls_pool`."""

    def __init__(
        self,
        block: ReferenceBlock,
        vq: GroupedVQ,
        n_devices: int,
        rank: int,
        *,
        cls_token: bool = False,
        causal_skip: bool = True,
    ):
        super().__init__()
        if cls_token and block.causal:
            raise ValueError("distributed CLS copies are for non-causal (ViT) models")
        self.block, self.vq, self.n_devices, self.rank = block, vq, n_devices, rank
        self.cls_token, self.causal_skip = cls_token, causal_skip

    def shared_bounds(self, tokens: int) -> list[tuple[int, int]]:
        """Every device's range of shared (quantized) tokens in a sequence of `tokens` (incl. CLS)."""
        return astra_token_bounds(tokens, self.n_devices, self.cls_token)

    def senders(self) -> list[int]:
        """Devices whose codes this device decodes (causal + causal_skip: only earlier devices)."""
        return [
            j
            for j in range(self.n_devices)
            if j != self.rank and not (self.block.causal and self.causal_skip and j > self.rank)
        ]

    def vq_encode(self, x: Tensor) -> Tensor:
        """Codes [B, T_shared, G] of own block inputs (the CLS copy excluded); sent to the others."""
        return self.vq.encode(x[:, 1:] if self.cls_token else x)

    def local_attn(self, x: Tensor) -> LocalAttention:
        """norm1 + QKV of own tokens and attention over them (causal within the part if causal)."""
        blk = self.block
        h = blk.norm1(x)
        q = blk.project_q(h)
        k, v = blk.project_kv(h)
        out, lse = attend_lse(q, k, v, is_causal=blk.causal)
        return LocalAttention(q, out, lse)

    def remote_kv(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """Decode the visible remote tokens' codes [B, T_remote, G] -> X_hat -> norm1 -> K_hat, V_hat."""
        return self.project_remote(self.vq.decode(codes))

    def project_remote(self, x_remote: Tensor) -> tuple[Tensor, Tensor]:
        """K, V of remote block inputs (X_hat, or the exact inputs to run ASTRA without quantization)."""
        return self.block.project_kv(self.block.norm1(x_remote))

    def remote_attn(self, q: Tensor, k_hat: Tensor, v_hat: Tensor) -> tuple[Tensor, Tensor]:
        """Own queries over the remote K_hat, V_hat (all visible: no mask); (out, lse)."""
        return attend_lse(q, k_hat, v_hat)

    def merge(self, x: Tensor, local: LocalAttention, remote: tuple[Tensor, Tensor]) -> Tensor:
        """Log-sum-exp combination of the two partial attentions, out-proj and residual."""
        o = merge_partials([(local.out, local.lse), remote])
        return x + self.block.o_proj(self.block.merge_heads(o))

    def mlp(self, h: Tensor) -> Tensor:
        return self.block.mlp_residual(h)

    @staticmethod
    def cls_pool(cls_parts: list[Tensor]) -> Tensor:
        """Mean of the N devices' outputs' CLS copies (token 0 of each), [B, D]; once per pass."""
        return pool_cls(cls_parts)

    def forward(self, x: Tensor, remote_codes: Tensor) -> Tensor:
        """One layer: own block input and the visible remote codes (concatenated in device order)."""
        local = self.local_attn(x)
        k_hat, v_hat = self.remote_kv(remote_codes)
        return self.mlp(self.merge(x, local, self.remote_attn(local.q, k_hat, v_hat)))
