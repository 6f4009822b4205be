"""The reference pre-norm Transformer layer of every model family.

    y = h + MLP(norm2(h)),   h = x + OutProj(Attention(norm1(x)))

* ViT / GPT2 (and custom models by default): LayerNorm, multi-head attention, GELU MLP, biases on
  every linear layer (GPT2 uses the tanh GELU, as published).
* Llama-3: RMSNorm, grouped-query attention (``kv_heads`` < ``heads``), SwiGLU MLP
  (down(silu(gate(x)) * up(x))), no biases.
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
    """GELU MLP (fc1, fc2) or SwiGLU MLP (gate, up, down)."""

    def __init__(self, hidden: int, mlp_hidden: int, activation: str, *, bias: bool, dtype: torch.dtype,
                 gelu_approximate: str = "none"):
        super().__init__()
        self.activation = activation
        self.gelu_approximate = gelu_approximate
        if activation == "gelu":
            self.fc1 = nn.Linear(hidden, mlp_hidden, bias=bias, dtype=dtype)
            self.fc2 = nn.Linear(mlp_hidden, hidden, bias=bias, dtype=dtype)
        elif activation == "swiglu":
            self.gate = nn.Linear(hidden, mlp_hidden, bias=bias, dtype=dtype)
            self.up = nn.Linear(hidden, mlp_hidden, bias=bias, dtype=dtype)
            self.down = nn.Linear(mlp_hidden, hidden, bias=bias, dtype=dtype)
        else:
            raise UserError(f"unknown activation '{activation}'; use gelu or swiglu", field="model.activation")

    def forward(self, x: Tensor) -> Tensor:
        if self.activation == "gelu":
            return self.fc2(nn.functional.gelu(self.fc1(x), approximate=self.gelu_approximate))
        return self.down(nn.functional.silu(self.gate(x)) * self.up(x))


class ReferenceBlock(nn.Module):
    """One pre-norm Transformer layer; ``forward(x[B, T, D]) -> y[B, T, D]``."""

    def __init__(self, spec: ModelSpec, dtype: torch.dtype = torch.float32):
        super().__init__()
        spec.check()
        self.spec = spec
        self.hidden, self.heads, self.kv_heads = spec.hidden, spec.heads, spec.kv_heads
        self.head_dim = spec.hidden // spec.heads
        self.mlp_hidden, self.causal = spec.mlp_hidden, spec.causal
        self.activation, self.norm_kind = spec.activation, spec.norm
        self.bias = spec.norm == "layernorm"
        d, hd = spec.hidden, self.head_dim
        self.norm1 = make_norm(spec.norm, d, dtype=dtype)
        self.q_proj = nn.Linear(d, spec.heads * hd, bias=self.bias, dtype=dtype)
        self.k_proj = nn.Linear(d, spec.kv_heads * hd, bias=self.bias, dtype=dtype)
        self.v_proj = nn.Linear(d, spec.kv_heads * hd, bias=self.bias, dtype=dtype)
        self.o_proj = nn.Linear(spec.heads * hd, d, bias=self.bias, dtype=dtype)
        self.norm2 = make_norm(spec.norm, d, dtype=dtype)
        self.mlp = MLP(d, spec.mlp_hidden, spec.activation, bias=self.bias, dtype=dtype,
                       gelu_approximate="tanh" if spec.family == "gpt2" else "none")

    @classmethod
    def from_dims(cls, hidden: int, heads: int, kv_heads: int | None = None, mlp_hidden: int | None = None,
                  activation: str = "gelu", norm: str = "layernorm", causal: bool = False, *,
                  dtype: torch.dtype = torch.float32, name: str = "custom") -> "ReferenceBlock":
        """A block of raw dimensions (small test models); kv_heads defaults to heads, mlp_hidden to 4*hidden."""
        spec = ModelSpec(name=name, family="custom", layers=1, hidden=hidden, heads=heads,
                         kv_heads=kv_heads or heads, mlp_hidden=mlp_hidden or 4 * hidden,
                         activation=activation, norm=norm, causal=causal, tokens=1, max_tokens=1)
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
        return self.split_heads(self.q_proj(h), self.heads)

    def project_kv(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.split_heads(self.k_proj(h), self.kv_heads), self.split_heads(self.v_proj(h), self.kv_heads)

    def attn_residual(self, x: Tensor) -> Tensor:
        """x + OutProj(Attention(norm1(x))) over all tokens of x (causal iff the model is)."""
        h = self.norm1(x)
        k, v = self.project_kv(h)
        o = attend(self.project_q(h), k, v, is_causal=self.causal)
        return x + self.o_proj(self.merge_heads(o))

    def mlp_residual(self, h: Tensor) -> Tensor:
        """h + MLP(norm2(h))."""
        return h + self.mlp(self.norm2(h))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp_residual(self.attn_residual(x))
