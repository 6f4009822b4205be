"""What one device must hold for one inference: weights, codebooks, KV cache and peak
activations of one layer (docs/strategies.md, "Memory and fleets"); each strategy's `memory`
composes these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from astrasim.compute.analytic import LayerShape

if TYPE_CHECKING:  # pragma: no cover
    from astrasim.models import ModelSpec

ACTIVATION_BYTES = 4  # activations and the KV cache stay in the profiled dtype (float32)


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


def layer_weights(sh: LayerShape, out_dim: int | None = None, *, active: bool = False) -> float:
    """Weight elements of one layer of shape `sh` (a full layer, a tp shard with `out_dim` = D, or a
    bp slice): the norms (four with sandwich norms), Q/K/V/out projections (q/k norms), the MLP or
    the router, held experts and shared experts, biases where the model has them.
    `active`: only what one token uses (its k experts instead of every held one)."""
    d, hd, f = sh.hidden, sh.head_dim, sh.mlp_hidden
    out = out_dim or d
    b = 1 if sh.bias else 0
    bq = 1 if sh.qkv_bias else 0
    norms = (4 if sh.sandwich_norm else 2) * d * (2 if sh.norm == "layernorm" else 1)
    norms += 2 * hd if sh.qk_norm else 0
    attn = (
        d * (sh.heads + 2 * sh.kv_heads) * hd + bq * (sh.heads + 2 * sh.kv_heads) * hd + sh.heads * hd * out + b * out
    )
    return (
        norms
        + attn
        + mlp_weights(sh, f, out) * (_experts_held(sh, active) if sh.experts else 1)
        + (_routing_weights(sh, out) if sh.experts else 0)
    )


def mlp_weights(sh: LayerShape, width: int, out: int) -> int:
    """One dense (or one expert's) MLP `width` wide."""
    b = 1 if sh.bias else 0
    up = 2 * width if sh.gated else width
    return sh.hidden * up + b * up + width * out + b * out


def _experts_held(sh: LayerShape, active: bool) -> float:
    return sh.experts_per_token * sh.held_experts / sh.experts if active else sh.held_experts


def _routing_weights(sh: LayerShape, out: int) -> int:
    """The router [D, E], the shared experts and their gate [D, 1]."""
    shared = mlp_weights(sh, sh.shared_mlp_hidden, out) if sh.shared_mlp_hidden else 0
    return sh.hidden * sh.experts + shared + (sh.hidden if sh.shared_gate else 0)


def outer_weights(spec: ModelSpec) -> int:
    """Weight elements outside the layers: token embedding (and head unless tied), learned position
    embeddings, the final norm."""
    emb = spec.vocab * spec.hidden * (1 if spec.tied_embeddings else 2)
    pos = spec.max_tokens * spec.hidden if spec.learned_positions else 0
    return emb + pos + spec.hidden * (2 if spec.norm == "layernorm" else 1)


def model_weights(spec: ModelSpec, sh: LayerShape | None = None, *, active: bool = False) -> float:
    """Every weight element of the model (gpt2-s: 124,439,808; llama3-8b: 8,030,261,248); `active`:
    those one token uses (an MoE model's k of E experts; Mixtral-8x7B: 12.9 B of 46.7 B)."""
    return spec.layers * layer_weights(sh or LayerShape.of(spec), active=active) + outer_weights(spec)


def kv_bytes(layers: int, tokens: int, kv_heads: int, head_dim: int, sh: LayerShape | None = None) -> float:
    """The KV cache of `tokens` tokens over `layers` layers and `kv_heads` heads (ACTIVATION_BYTES each);
    with `sh` of a sliding-window model, its windowed layers keep only the last `window` tokens."""
    kept = float(tokens)
    if sh is not None and sh.window:
        kept = sh.window_share * min(tokens, sh.window) + (1 - sh.window_share) * tokens
    return float(layers * kept * 2 * kv_heads * head_dim * ACTIVATION_BYTES)


def activation_bytes(sh: LayerShape, inputs: int, queries: int, keys: int, mlp_tokens: int) -> float:
    """Peak live activations of one layer (fused attention: no T x T score matrix): the larger of the
    attention phase (block input of `inputs` tokens, its norm, Q of `queries`, K/V of `keys`, output)
    and the MLP phase (input, norm, hidden units, output of `mlp_tokens`)."""
    d, hd = sh.hidden, sh.head_dim
    attn = 2 * inputs * d + queries * sh.heads * hd + 2 * keys * sh.kv_heads * hd + queries * d
    up: float = 2 * sh.mlp_hidden if sh.gated else sh.mlp_hidden
    if sh.experts:  # each token's k experts (the device's share of them), plus the shared experts
        up = up * sh.experts_per_token * sh.held_experts / sh.experts + 2 * sh.shared_mlp_hidden
    mlp = 3 * mlp_tokens * d + mlp_tokens * up
    return float(max(attn, mlp) * ACTIVATION_BYTES)
