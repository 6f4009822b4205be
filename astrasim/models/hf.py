"""Hugging Face `config.json` -> ModelSpec, with the standard library only (no network, no transformers).

Each supported `model_type` maps its own field names onto ModelSpec (table below). What changes
time or memory is kept: layers, widths, query / KV heads and head_dim, gated MLPs (SwiGLU for
`silu`, GeGLU for the GELU variants), tied embeddings, biases, Qwen3's q/k norms, Gemma 2's extra
norms, alternating sliding window and soft-capping, and the experts of MoE models. Position
encodings (RoPE, `rope_scaling` of any type) cost elementwise work astrasim does not count; they
are accepted and leave the shape as it is. A window at least as long as the context is no window.

| model_type | family | notes |
|---|---|---|
| llama (1, 2, 3, 3.1, 3.2) | llama | GQA, `head_dim`, `attention_bias`/`mlp_bias`, tied embeddings |
| mistral | mistral | `sliding_window` on every layer |
| qwen2 | qwen2 | Q/K/V biases; `use_sliding_window` on the layers from `max_window_layers` on |
| qwen3 | qwen3 | q/k RMSNorm, `head_dim` (Qwen3Config's default 128) |
| phi3 | phi3 | fused qkv and gate-up (same weights and FLOPs as separate ones) |
| gemma, gemma2 | gemma, gemma2 | `head_dim`, GeGLU, tied; gemma2: 4 norms/layer, half the layers windowed, softcaps |
| mixtral | mixtral | `num_local_experts`, `num_experts_per_tok` of `intermediate_size` |
| qwen2_moe | qwen2_moe | `num_experts`, `moe_intermediate_size`, one gated shared expert |
| qwen3_moe | qwen3_moe | `num_experts`, `moe_intermediate_size`, q/k norms |
| gpt2 | gpt2 | `n_layer`, `n_embd`, `n_head`, `n_inner`, learned positions |
| vit | vit | tokens = (image_size / patch_size)^2 + CLS |
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from astrasim.errors import UserError
from astrasim.models.spec import ModelSpec

# HF's own class defaults of tie_word_embeddings, per model_type
_TIED_DEFAULT = {
    "llama": False,
    "mistral": False,
    "qwen2": False,
    "qwen3": False,
    "phi3": False,
    "gemma": True,
    "gemma2": True,
    "mixtral": False,
    "qwen2_moe": False,
    "qwen3_moe": False,
    "gpt2": True,
}
# HF's own class defaults of max_position_embeddings (a config may leave it out; Llama 1 conversions did)
_CONTEXT_DEFAULT = {
    "llama": 2048,
    "mistral": 4096 * 32,
    "qwen2": 32768,
    "qwen3": 32768,
    "phi3": 4096,
    "gemma": 8192,
    "gemma2": 8192,
    "mixtral": 4096 * 32,
    "qwen2_moe": 32768,
    "qwen3_moe": 32768,
}
_GATED = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "mixtral", "qwen2_moe", "qwen3_moe")
SUPPORTED_TYPES = (*_GATED, "gpt2", "vit")
_GELU = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_python")
DEFAULT_TOKENS = 1024  # the prompt a scenario uses unless it sets tokens (capped at the context)


class _Config:
    """A parsed config.json with typed getters whose errors name the file and the field."""

    def __init__(self, data: dict, path: Path):
        self.data, self.path = data, path

    def fail(self, key: str, what: str) -> UserError:
        return UserError(f"'{self.path}' field '{key}': {what}", field="model")

    def int(self, key: str, default: Any = ..., minimum: int = 1) -> int:
        v = self.data.get(key)
        if v is None:
            if default is ...:
                raise self.fail(key, "missing; a Hugging Face config of this model_type must give it")
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(key, f"must be a whole number, got {v!r}")
        if v < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {v}")
        return v

    def opt_int(self, key: str) -> int | None:
        v = self.data.get(key)
        return None if v is None else self.int(key)

    def bool(self, key: str, default: bool) -> bool:
        v = self.data.get(key, default)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.fail(key, f"must be true or false, got {v!r}")
        return v

    def num(self, key: str) -> float:
        v = self.data.get(key)
        if v is None:
            return 0.0
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(key, f"must be a number or null, got {v!r}")
        return float(v)


def read_config(path: str | Path) -> tuple[dict, Path]:
    """The JSON object of a config.json (or of the config.json inside a folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise UserError(f"'{p}' not found; give a Hugging Face config.json or the folder holding one", field="model")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"'{p}' is not valid JSON ({exc}); give the model's config.json as published", field="model"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"'{p}' holds a JSON {type(data).__name__}, not an object of config fields", field="model")
    return data, p


def default_name(p: Path) -> str:
    """The folder name for <folder>/config.json, the file's stem otherwise."""
    return p.parent.name if p.name == "config.json" and p.parent.name else p.stem


def spec_from_config(data: dict, name: str, path: Path | str = "config.json") -> ModelSpec:
    """The ModelSpec a config maps to, checked (its name is the caller's to check: models.load_hf_config)."""
    c = _Config(data, Path(path))
    mtype = data.get("model_type")
    if mtype not in SUPPORTED_TYPES:
        raise c.fail(
            "model_type",
            f"{mtype!r} is not supported; astrasim maps {', '.join(SUPPORTED_TYPES)} "
            f"(or write a custom model YAML with ModelSpec's fields)",
        )
    fields = _gpt2(c) if mtype == "gpt2" else _vit(c) if mtype == "vit" else _decoder(c, mtype)
    try:
        spec = ModelSpec(name=name, **fields)
    except TypeError as exc:  # pragma: no cover - the mapping fills every field
        raise c.fail("model_type", str(exc)) from None
    try:
        spec.check()
    except UserError as exc:
        raise c.fail(_HF_FIELD.get(exc.field or "", exc.field or "model_type"), str(exc).split(": ", 1)[-1]) from None
    return spec


# ModelSpec field -> the config.json key a check() error is about (decoder naming)
_HF_FIELD = {
    "model.heads": "num_attention_heads",
    "model.kv_heads": "num_key_value_heads",
    "model.layers": "num_hidden_layers",
    "model.hidden": "hidden_size",
    "model.mlp_hidden": "intermediate_size",
    "model.experts_per_token": "num_experts_per_tok",
    "model.head_dim": "head_dim",
}


def _activation(c: _Config, key: str, gated: bool) -> str:
    act = c.data.get(key)
    if act is None and key == "hidden_activation":
        act = c.data.get("hidden_act")
    if act == "silu" or act == "swish":
        if not gated:
            raise c.fail(key, "an ungated SiLU MLP is not representable; astrasim models gelu, swiglu, geglu")
        return "swiglu"
    if act in _GELU:
        return "geglu" if gated else "gelu"
    raise c.fail(
        key,
        f"activation {act!r} is not representable; astrasim models silu (SwiGLU) and the GELU "
        f"variants {', '.join(_GELU)}",
    )


def _heads_dim(c: _Config, hidden: int, heads: int, default_head_dim: int | None = None) -> int:
    hd = c.opt_int("head_dim")
    if hd is not None:
        return hd
    if default_head_dim is not None:
        return default_head_dim
    if hidden % heads:
        raise c.fail(
            "num_attention_heads",
            f"{heads} heads do not divide hidden_size={hidden} and there is no head_dim; give head_dim",
        )
    return hidden // heads


def _window(c: _Config, max_tokens: int) -> int:
    w = c.opt_int("sliding_window")
    return 0 if w is None or w >= max_tokens else w


def _decoder(c: _Config, mtype: str) -> dict:
    layers, hidden = c.int("num_hidden_layers"), c.int("hidden_size")
    heads = c.int("num_attention_heads")
    kv_heads = c.int("num_key_value_heads", heads)
    max_tokens = c.int("max_position_embeddings", _CONTEXT_DEFAULT[mtype])
    qwen3 = mtype in ("qwen3", "qwen3_moe")
    out: dict[str, Any] = dict(
        family=mtype,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        mlp_hidden=c.int("intermediate_size"),
        norm="rmsnorm",
        causal=True,
        tokens=min(DEFAULT_TOKENS, max_tokens),
        max_tokens=max_tokens,
        vocab=c.int("vocab_size"),
        tied_embeddings=c.bool("tie_word_embeddings", _TIED_DEFAULT[mtype]),
        head_dim=_heads_dim(c, hidden, heads, 128 if qwen3 and "head_dim" not in c.data else None),
        activation=_activation(c, "hidden_activation" if mtype.startswith("gemma") else "hidden_act", True),
        bias=c.bool("mlp_bias", False),
        qkv_bias=c.bool("attention_bias", False),
    )
    if mtype in ("qwen2", "qwen2_moe"):
        out["qkv_bias"] = True  # Qwen2 attention always has Q/K/V biases (no config field)
        if c.bool("use_sliding_window", False):
            w = _window(c, max_tokens)
            first = c.int("max_window_layers", layers, minimum=0)
            if w and first < layers:
                out.update(sliding_window=w, window_layers=layers - first)
    if mtype in ("mistral", "mixtral", "phi3"):
        out["sliding_window"] = _window(c, max_tokens)
    if qwen3:
        out["qk_norm"] = True
        if c.bool("use_sliding_window", False):
            raise c.fail("use_sliding_window", "Qwen3 sliding windows are not representable; set it false")
    if mtype == "gemma2":
        w = _window(c, max_tokens)
        out.update(
            sandwich_norm=True,
            sliding_window=w,
            window_layers=math.ceil(layers / 2) if w else 0,
            attn_softcap=c.num("attn_logit_softcapping"),
            final_softcap=c.num("final_logit_softcapping"),
        )
    if mtype == "mixtral":
        out.update(experts=c.int("num_local_experts"), experts_per_token=c.int("num_experts_per_tok"))
    if mtype in ("qwen2_moe", "qwen3_moe"):
        if c.int("decoder_sparse_step", 1) != 1:
            raise c.fail(
                "decoder_sparse_step",
                "MoE on only every k-th layer is not representable; astrasim models "
                "an MoE MLP in every layer (decoder_sparse_step 1)",
            )
        if c.data.get("mlp_only_layers"):
            raise c.fail(
                "mlp_only_layers",
                "dense layers among MoE layers are not representable; astrasim models "
                "an MoE MLP in every layer (mlp_only_layers [])",
            )
        out.update(
            experts=c.int("num_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_mlp_hidden=c.int("moe_intermediate_size"),
        )
        if mtype == "qwen2_moe":
            shared = c.int("shared_expert_intermediate_size", 0, minimum=0)
            if shared:
                out.update(shared_experts=1, shared_expert_mlp_hidden=shared, shared_expert_gate=True)
    return out


def _gpt2(c: _Config) -> dict:
    layers, hidden, heads = c.int("n_layer"), c.int("n_embd"), c.int("n_head")
    if hidden % heads:
        raise c.fail("n_head", f"{heads} heads do not divide n_embd={hidden}")
    n_inner = c.opt_int("n_inner") or 4 * hidden
    max_tokens = c.int("n_positions")
    return dict(
        family="gpt2",
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=heads,
        mlp_hidden=n_inner,
        activation=_activation(c, "activation_function", False),
        norm="layernorm",
        causal=True,
        tokens=min(DEFAULT_TOKENS, max_tokens),
        max_tokens=max_tokens,
        vocab=c.int("vocab_size"),
        tied_embeddings=c.bool("tie_word_embeddings", True),
        learned_positions=True,
    )


def _vit(c: _Config) -> dict:
    layers, hidden, heads = c.int("num_hidden_layers"), c.int("hidden_size"), c.int("num_attention_heads")
    if hidden % heads:
        raise c.fail("num_attention_heads", f"{heads} heads do not divide hidden_size={hidden}")
    image, patch = c.int("image_size", 224), c.int("patch_size", 16)
    if image % patch:
        raise c.fail("patch_size", f"{patch} does not divide image_size={image}")
    tokens = (image // patch) ** 2 + 1
    labels = c.data.get("id2label")
    classes = len(labels) if isinstance(labels, dict) else 0
    bias = c.bool("qkv_bias", True)
    return dict(
        family="vit",
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=heads,
        mlp_hidden=c.int("intermediate_size"),
        activation=_activation(c, "hidden_act", False),
        norm="layernorm",
        causal=False,
        tokens=tokens,
        max_tokens=tokens,
        cls_token=True,
        vocab=classes,
        tied_embeddings=False,
        learned_positions=True,
        bias=True,
        qkv_bias=bias,
    )
