"""ModelSpec, the shape of a Transformer every layer of astrasim agrees on, and the built-in
models (astrasim.models adds the zoo and the files users write)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from astrasim.errors import UserError

FAMILIES = (
    "vit",
    "gpt2",
    "llama",
    "custom",
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "gemma",
    "gemma2",
    "mixtral",
    "qwen2_moe",
    "qwen3_moe",
)
ACTIVATIONS = ("gelu", "swiglu", "geglu")
NORMS = ("layernorm", "rmsnorm")


@dataclass(frozen=True)
class ModelSpec:
    """One Transformer's shape. `tokens` is the default sequence length used by scenarios.

    vocab, tied_embeddings, learned_positions: the weights outside the layers (token embedding,
    output head unless tied, learned position embeddings), counted by the memory model.

    The fields after `learned_positions` describe the architectures of Hugging Face models; their
    defaults keep the original four models as they were:
    head_dim: width of one attention head (0: hidden / heads; Gemma and Qwen3 set it apart);
    bias: biases on every linear layer (None: LayerNorm models have them, RMSNorm models do not);
    qkv_bias: biases on the Q/K/V projections only (None: as `bias`; Qwen2 has them alone);
    qk_norm: an RMSNorm over each query and key head (Qwen3);
    sandwich_norm: a norm after attention and after the MLP as well (Gemma 2: four per layer);
    sliding_window, window_layers: attention to at most the last `sliding_window` keys (0: full
    attention) in `window_layers` of the layers (0: all of them; Gemma 2 alternates: half);
    attn_softcap, final_softcap: tanh soft-capping of attention scores and of the output logits
    (Gemma 2), costed as elementwise work;
    experts, experts_per_token, expert_mlp_hidden: a mixture-of-experts MLP (0 experts: dense) of
    `experts` gated MLPs `expert_mlp_hidden` wide (0: mlp_hidden), each token routed to its top
    `experts_per_token`; shared_experts, shared_expert_mlp_hidden, shared_expert_gate: experts every
    token also runs (Qwen2-MoE: one, with a sigmoid gate)."""

    name: str
    family: Literal[
        "vit",
        "gpt2",
        "llama",
        "custom",
        "mistral",
        "qwen2",
        "qwen3",
        "phi3",
        "gemma",
        "gemma2",
        "mixtral",
        "qwen2_moe",
        "qwen3_moe",
    ]
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    mlp_hidden: int
    activation: Literal["gelu", "swiglu", "geglu"]
    norm: Literal["layernorm", "rmsnorm"]
    causal: bool
    tokens: int
    max_tokens: int
    cls_token: bool = False
    vocab: int = 0
    tied_embeddings: bool = True
    learned_positions: bool = False
    head_dim: int = 0
    bias: bool | None = None
    qkv_bias: bool | None = None
    qk_norm: bool = False
    sandwich_norm: bool = False
    sliding_window: int = 0
    window_layers: int = 0
    attn_softcap: float = 0.0
    final_softcap: float = 0.0
    experts: int = 0
    experts_per_token: int = 0
    expert_mlp_hidden: int = 0
    shared_experts: int = 0
    shared_expert_mlp_hidden: int = 0
    shared_expert_gate: bool = False

    def __post_init__(self) -> None:
        """Resolve the derived defaults once, so equal shapes compare equal however they were written."""
        if self.head_dim == 0 and self.heads > 0:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)
        if self.bias is None:
            object.__setattr__(self, "bias", self.norm == "layernorm")
        if self.qkv_bias is None:
            object.__setattr__(self, "qkv_bias", self.bias)
        if self.sliding_window and not self.window_layers:
            object.__setattr__(self, "window_layers", self.layers)
        if self.experts and not self.expert_mlp_hidden:
            object.__setattr__(self, "expert_mlp_hidden", self.mlp_hidden)
        if self.shared_experts and not self.shared_expert_mlp_hidden:
            object.__setattr__(self, "shared_expert_mlp_hidden", self.expert_mlp_hidden or self.mlp_hidden)

    @property
    def moe(self) -> bool:
        return self.experts > 0

    @property
    def q_width(self) -> int:
        """Width of the concatenated query heads (= hidden unless head_dim is set apart)."""
        return self.heads * self.head_dim

    def check(self) -> None:
        """Raise UserError on shapes that cannot build a block."""
        for field in ("layers", "hidden", "heads", "kv_heads", "mlp_hidden", "tokens", "max_tokens", "head_dim"):
            if getattr(self, field) <= 0:
                raise UserError(f"must be a positive integer, got {getattr(self, field)}", field=f"model.{field}")
        if self.hidden % self.heads and self.head_dim == self.hidden // self.heads:  # head_dim derived
            raise UserError(
                f"hidden={self.hidden} must be divisible by heads={self.heads} (or give head_dim)", field="model.heads"
            )
        if self.heads % self.kv_heads:
            raise UserError(f"heads={self.heads} must be divisible by kv_heads={self.kv_heads}", field="model.kv_heads")
        if self.vocab < 0:
            raise UserError(f"must be >= 0, got {self.vocab}", field="model.vocab")
        if self.tokens > self.max_tokens:
            raise UserError(f"tokens={self.tokens} exceeds max_tokens={self.max_tokens}", field="model.tokens")
        for field in (
            "sliding_window",
            "window_layers",
            "experts",
            "experts_per_token",
            "expert_mlp_hidden",
            "shared_experts",
            "shared_expert_mlp_hidden",
        ):
            if getattr(self, field) < 0:
                raise UserError(f"must be >= 0, got {getattr(self, field)}", field=f"model.{field}")
        if self.window_layers > self.layers:
            raise UserError(
                f"window_layers={self.window_layers} exceeds layers={self.layers}", field="model.window_layers"
            )
        if self.experts and not 1 <= self.experts_per_token <= self.experts:
            raise UserError(
                f"experts_per_token={self.experts_per_token} must be 1..experts={self.experts}",
                field="model.experts_per_token",
            )
        if not self.experts and (self.experts_per_token or self.shared_experts):
            raise UserError("experts_per_token and shared_experts need experts > 0", field="model.experts")
        if self.attn_softcap < 0 or self.final_softcap < 0:
            raise UserError("soft-capping values must be >= 0 (0: none)", field="model.attn_softcap")

    def to_dict(self) -> dict:
        return asdict(self)


BUILTIN_MODELS: dict[str, ModelSpec] = {
    # vit-base: the 1000-class head and the patch projection counted as an untied 1000-row embedding
    "vit-base": ModelSpec(
        "vit-base",
        "vit",
        12,
        768,
        12,
        12,
        3072,
        "gelu",
        "layernorm",
        False,
        197,
        197,
        cls_token=True,
        vocab=1000,
        tied_embeddings=False,
        learned_positions=True,
    ),
    "gpt2-s": ModelSpec(
        "gpt2-s",
        "gpt2",
        12,
        768,
        12,
        12,
        3072,
        "gelu",
        "layernorm",
        True,
        1024,
        1024,
        vocab=50257,
        learned_positions=True,
    ),
    "gpt2-m": ModelSpec(
        "gpt2-m",
        "gpt2",
        24,
        1024,
        16,
        16,
        4096,
        "gelu",
        "layernorm",
        True,
        1024,
        1024,
        vocab=50257,
        learned_positions=True,
    ),
    "llama3-8b": ModelSpec(
        "llama3-8b",
        "llama",
        32,
        4096,
        32,
        8,
        14336,
        "swiglu",
        "rmsnorm",
        True,
        1024,
        8192,
        vocab=128256,
        tied_embeddings=False,
    ),
}
