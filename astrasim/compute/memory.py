"""What one device must hold for one inference: weights, codebooks, KV cache and peak
activations of one layer (docs/strategies.md, "Memory and fleets"); each strategy's `memory`
composes these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from astrasim.compute.analytic import LayerShape

if TYPE_CHECKING:  # pragma: no cover
    from astrasim.models import ModelSpec

ACTIVATION_BYTES = 4            # activations and the KV cache stay in the profiled dtype (float32)


@dataclass(frozen=True)
class Memory:
    """Bytes one device holds for one inference."""

    weights: float = 0.0
    codebooks: float = 0.0
    kv_cache: float = 0.0
    activations: float = 0.0

    @property
    def total(self) -> float:
        return self.weights + self.codebooks + self.kv_cache + self.activations


def layer_weights(sh: LayerShape, out_dim: int | None = None) -> int:
    """Weight elements of one layer of shape `sh` (a full layer, a tp shard with `out_dim` = D, or a
    bp slice): the two norms, Q/K/V/out projections and the MLP, biases where the model has them."""
    d, hd, f = sh.hidden, sh.head_dim, sh.mlp_hidden
    out = out_dim or d
    b = 1 if sh.bias else 0
    norms = 2 * d * (2 if sh.norm == "layernorm" else 1)
    attn = d * (sh.heads + 2 * sh.kv_heads) * hd + b * (sh.heads + 2 * sh.kv_heads) * hd + sh.heads * hd * out + b * out
    up = 2 * f if sh.activation == "swiglu" else f
    mlp = d * up + b * up + f * out + b * out
    return norms + attn + mlp


def outer_weights(spec: "ModelSpec") -> int:
    """Weight elements outside the layers: token embedding (and head unless tied), learned position
    embeddings, the final norm."""
    emb = spec.vocab * spec.hidden * (1 if spec.tied_embeddings else 2)
    pos = spec.max_tokens * spec.hidden if spec.learned_positions else 0
    return emb + pos + spec.hidden * (2 if spec.norm == "layernorm" else 1)


def model_weights(spec: "ModelSpec", sh: LayerShape | None = None) -> int:
    """Every weight element of the model (gpt2-s: 124,439,808; llama3-8b: 8,030,261,248)."""
    return spec.layers * layer_weights(sh or LayerShape.of(spec)) + outer_weights(spec)


def kv_bytes(layers: int, tokens: int, kv_heads: int, head_dim: int) -> float:
    """The KV cache of `tokens` tokens over `layers` layers and `kv_heads` heads (ACTIVATION_BYTES each)."""
    return float(layers * tokens * 2 * kv_heads * head_dim * ACTIVATION_BYTES)


def activation_bytes(sh: LayerShape, inputs: int, queries: int, keys: int, mlp_tokens: int) -> float:
    """Peak live activations of one layer (fused attention: no T x T score matrix): the larger of the
    attention phase (block input of `inputs` tokens, its norm, Q of `queries`, K/V of `keys`, output)
    and the MLP phase (input, norm, hidden units, output of `mlp_tokens`)."""
    d, hd = sh.hidden, sh.head_dim
    attn = 2 * inputs * d + queries * sh.heads * hd + 2 * keys * sh.kv_heads * hd + queries * d
    up = 2 * sh.mlp_hidden if sh.activation == "swiglu" else sh.mlp_hidden
    mlp = 3 * mlp_tokens * d + mlp_tokens * up
    return float(max(attn, mlp) * ACTIVATION_BYTES)
