"""The reference pre-norm Transformer layer of every model family.

    y = h + MLP(norm2(h)),   h = x + OutProj(Attention(norm1(x)))

* ViT / GPT2 (and custom models by default): LayerNorm, multi-head attention, GELU MLP, biases on
  every linear layer (GPT2 uses the tanh GELU, as published).
* Llama-3: RMSNorm, grouped-query attention (``kv_heads`` < ``heads``), SwiGLU MLP
  (down(silu(gate(x)) * up(x))), no biases.
* Hugging Face architectures (astrasim.models.hf): head_dim apart from hidden / heads, Q/K/V biases
  apart from the other biases (Qwen2), GeGLU (Gemma), q/k RMSNorm per head (Qwen3), a norm after
  attention and after the MLP (Gemma 2), and mixture-of-experts MLPs (MoEMLP: a router, top-k
  experts, shared experts). Sliding windows and soft-capping change only what the attention reads
  and a few elementwise ops, not the kernels' shapes; the block attends over all its keys.
* Causal mask iff the model is causal.

The weights are randomly initialised (torch defaults): kernels are timed, and strategies checked
against this block, not evaluated for accuracy.
"""

from __future__ import annotations

import torch
from torch import nn

from astrasim.errors import UserError
from astrasim.kernels.attention import attend
from astrasim.models import ModelSpec

Tensor = torch.Tensor


def make_norm(kind: str, dim: int, *, dtype: torch.dtype) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=1e-5, dtype=dtype)
    if kind == "rmsnorm":
        return nn.RMSNorm(dim, eps=1e-5, dtype=dtype)
    raise UserError(f"unknown norm '{kind}'; use layernorm or rmsnorm", field="model.norm")


class MLP(nn.Module):
    """GELU MLP (fc1, fc2), or a gated MLP (gate, up, down): SwiGLU, or GeGLU with the tanh GELU."""

    def __init__(
        self,
        hidden: int,
        mlp_hidden: int,
        activation: str,
        *,
        bias: bool,
        dtype: torch.dtype,
        gelu_approximate: str = "none",
    ):
        super().__init__()
        self.activation = activation
        self.gelu_approximate = gelu_approximate
        if activation == "gelu":
            self.fc1 = nn.Linear(hidden, mlp_hidden, bias=bias, dtype=dtype)
            self.fc2 = nn.Linear(mlp_hidden, hidden, bias=bias, dtype=dtype)
        elif activation in ("swiglu", "geglu"):
            self.gate = nn.Linear(hidden, mlp_hidden, bias=bias, dtype=dtype)
            self.up = nn.Linear(hidden, mlp_hidden, bias=bias, dtype=dtype)
            self.down = nn.Linear(mlp_hidden, hidden, bias=bias, dtype=dtype)
        else:
            raise UserError(f"unknown activation '{activation}'; use gelu, swiglu or geglu", field="model.activation")

    def forward(self, x: Tensor) -> Tensor:
        if self.activation == "gelu":
            return self.fc2(nn.functional.gelu(self.fc1(x), approximate=self.gelu_approximate))
        if self.activation == "geglu":
            return self.down(nn.functional.gelu(self.gate(x), approximate="tanh") * self.up(x))
        return self.down(nn.functional.silu(self.gate(x)) * self.up(x))


class MoEMLP(nn.Module):
    """Mixture of experts: a router picks each token's top-k experts (softmax weights renormalised over
    them), the selected experts run on their tokens only, outputs are summed with those weights; shared
    experts run on every token (Qwen2-MoE: scaled by a sigmoid gate)."""

    def __init__(self, spec: ModelSpec, *, dtype: torch.dtype):
        super().__init__()
        d, bias = spec.hidden, bool(spec.bias)
        self.k = spec.experts_per_token
        self.activation = spec.activation
        self.router = nn.Linear(d, spec.experts, bias=False, dtype=dtype)
        self.experts = nn.ModuleList(
            MLP(d, spec.expert_mlp_hidden, spec.activation, bias=bias, dtype=dtype) for _ in range(spec.experts)
        )
        self.shared = (
            MLP(d, spec.shared_experts * spec.shared_expert_mlp_hidden, spec.activation, bias=bias, dtype=dtype)
            if spec.shared_experts
            else None
        )
        self.shared_gate = nn.Linear(d, 1, bias=False, dtype=dtype) if spec.shared_expert_gate else None

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        weights, chosen = torch.topk(torch.softmax(self.router(flat), dim=-1), self.k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e in torch.unique(chosen).tolist():
            rows, slot = (chosen == e).nonzero(as_tuple=True)
            out.index_add_(0, rows, self.experts[e](flat[rows]) * weights[rows, slot].unsqueeze(-1))
        if self.shared is not None:
            shared = self.shared(flat)
            out = out + (torch.sigmoid(self.shared_gate(flat)) * shared if self.shared_gate is not None else shared)
        return out.reshape(x.shape)


class ReferenceBlock(nn.Module):
    """One pre-norm Transformer layer; ``forward(x[B, T, D]) -> y[B, T, D]``."""

    def __init__(self, spec: ModelSpec, dtype: torch.dtype = torch.float32):
        super().__init__()
        spec.check()
        self.spec = spec
        self.hidden, self.heads, self.kv_heads = spec.hidden, spec.heads, spec.kv_heads
        self.head_dim = spec.head_dim
        # the MLP width the column splits (tp, bp) cut: each expert's in an MoE model
        self.mlp_hidden = spec.expert_mlp_hidden if spec.moe else spec.mlp_hidden
        self.causal = spec.causal
        self.activation, self.norm_kind = spec.activation, spec.norm
        self.bias = bool(spec.bias)
        qkv_bias = bool(spec.qkv_bias)
        d, hd = spec.hidden, self.head_dim
        self.norm1 = make_norm(spec.norm, d, dtype=dtype)
        self.q_proj = nn.Linear(d, spec.heads * hd, bias=qkv_bias, dtype=dtype)
        self.k_proj = nn.Linear(d, spec.kv_heads * hd, bias=qkv_bias, dtype=dtype)
        self.v_proj = nn.Linear(d, spec.kv_heads * hd, bias=qkv_bias, dtype=dtype)
        self.o_proj = nn.Linear(spec.heads * hd, d, bias=self.bias, dtype=dtype)
        self.q_norm = make_norm("rmsnorm", hd, dtype=dtype) if spec.qk_norm else None
        self.k_norm = make_norm("rmsnorm", hd, dtype=dtype) if spec.qk_norm else None
        self.post_attn_norm = make_norm(spec.norm, d, dtype=dtype) if spec.sandwich_norm else None
        self.post_mlp_norm = make_norm(spec.norm, d, dtype=dtype) if spec.sandwich_norm else None
        self.norm2 = make_norm(spec.norm, d, dtype=dtype)
        self.mlp = (
            MoEMLP(spec, dtype=dtype)
            if spec.moe
            else MLP(
                d,
                spec.mlp_hidden,
                spec.activation,
                bias=self.bias,
                dtype=dtype,
                gelu_approximate="tanh" if spec.family == "gpt2" else "none",
            )
        )

    @classmethod
    def from_dims(
        cls,
        hidden: int,
        heads: int,
        kv_heads: int | None = None,
        mlp_hidden: int | None = None,
        activation: str = "gelu",
        norm: str = "layernorm",
        causal: bool = False,
        *,
        dtype: torch.dtype = torch.float32,
        name: str = "custom",
    ) -> ReferenceBlock:
        """A block of raw dimensions (small test models); kv_heads defaults to heads, mlp_hidden to 4*hidden."""
        spec = ModelSpec(
            name=name,
            family="custom",
            layers=1,
            hidden=hidden,
            heads=heads,
            kv_heads=kv_heads or heads,
            mlp_hidden=mlp_hidden or 4 * hidden,
            activation=activation,
            norm=norm,
            causal=causal,
            tokens=1,
            max_tokens=1,
        )
        return cls(spec, dtype=dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.q_proj.weight.dtype

    # -- pieces, reused by the per-device blocks of every strategy ---------------------------------
    def split_heads(self, y: Tensor, heads: int) -> Tensor:
        """[B, T, heads*hd] -> [B, heads, T, hd]."""
        b, t, _ = y.shape
        return y.view(b, t, heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, o: Tensor) -> Tensor:
        """[B, H, T, hd] -> [B, T, H*hd]."""
        b, h, t, hd = o.shape
        return o.transpose(1, 2).reshape(b, t, h * hd)

    def project_q(self, h: Tensor) -> Tensor:
        q = self.split_heads(self.q_proj(h), self.heads)
        return self.q_norm(q) if self.q_norm is not None else q

    def project_kv(self, h: Tensor) -> tuple[Tensor, Tensor]:
        k = self.split_heads(self.k_proj(h), self.kv_heads)
        return (self.k_norm(k) if self.k_norm is not None else k), self.split_heads(self.v_proj(h), self.kv_heads)

    def post(self, y: Tensor, which: str) -> Tensor:
        """Gemma 2's norm after attention ("attn") / after the MLP ("mlp"); identity for other models."""
        norm = self.post_attn_norm if which == "attn" else self.post_mlp_norm
        return norm(y) if norm is not None else y

    def attn_residual(self, x: Tensor) -> Tensor:
        """x + OutProj(Attention(norm1(x))) over all tokens of x (causal iff the model is)."""
        h = self.norm1(x)
        k, v = self.project_kv(h)
        o = attend(self.project_q(h), k, v, is_causal=self.causal)
        return x + self.post(self.o_proj(self.merge_heads(o)), "attn")

    def mlp_residual(self, h: Tensor) -> Tensor:
        """h + MLP(norm2(h))."""
        return h + self.post(self.mlp(self.norm2(h)), "mlp")

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp_residual(self.attn_residual(x))
