"""Transformer model specs: the published shapes every layer of astrasim agrees on.

Pure data. Kernels build blocks from a spec; strategies count bits and look up profiles by
its name. Custom models come from YAML with the same fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from astrasim.errors import UserError


@dataclass(frozen=True)
class ModelSpec:
    """One Transformer's shape. `tokens` is the default sequence length used by scenarios.

    vocab, tied_embeddings, learned_positions: the weights outside the layers (token embedding,
    output head unless tied, learned position embeddings), counted by the memory model only."""

    name: str
    family: Literal["vit", "gpt2", "llama", "custom"]
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    mlp_hidden: int
    activation: Literal["gelu", "swiglu"]
    norm: Literal["layernorm", "rmsnorm"]
    causal: bool
    tokens: int
    max_tokens: int
    cls_token: bool = False
    vocab: int = 0
    tied_embeddings: bool = True
    learned_positions: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def check(self) -> None:
        """Raise UserError on shapes that cannot build a block."""
        for field in ("layers", "hidden", "heads", "kv_heads", "mlp_hidden", "tokens", "max_tokens"):
            if getattr(self, field) <= 0:
                raise UserError(f"must be a positive integer, got {getattr(self, field)}", field=f"model.{field}")
        if self.hidden % self.heads:
            raise UserError(f"hidden={self.hidden} must be divisible by heads={self.heads}", field="model.heads")
        if self.heads % self.kv_heads:
            raise UserError(f"heads={self.heads} must be divisible by kv_heads={self.kv_heads}", field="model.kv_heads")
        if self.vocab < 0:
            raise UserError(f"must be >= 0, got {self.vocab}", field="model.vocab")
        if self.tokens > self.max_tokens:
            raise UserError(f"tokens={self.tokens} exceeds max_tokens={self.max_tokens}", field="model.tokens")

    def to_dict(self) -> dict:
        return asdict(self)


BUILTIN_MODELS: dict[str, ModelSpec] = {
    # vit-base: the 1000-class head and the patch projection counted as an untied 1000-row embedding
    "vit-base": ModelSpec("vit-base", "vit", 12, 768, 12, 12, 3072, "gelu", "layernorm", False, 197, 197, cls_token=True,
                          vocab=1000, tied_embeddings=False, learned_positions=True),
    "gpt2-s": ModelSpec("gpt2-s", "gpt2", 12, 768, 12, 12, 3072, "gelu", "layernorm", True, 1024, 1024,
                        vocab=50257, learned_positions=True),
    "gpt2-m": ModelSpec("gpt2-m", "gpt2", 24, 1024, 16, 16, 4096, "gelu", "layernorm", True, 1024, 1024,
                        vocab=50257, learned_positions=True),
    "llama3-8b": ModelSpec("llama3-8b", "llama", 32, 4096, 32, 8, 14336, "swiglu", "rmsnorm", True, 1024, 8192,
                           vocab=128256, tied_embeddings=False),
}


def get_model(name: str) -> ModelSpec:
    """Look up a built-in model by name, or raise a UserError listing the known names."""
    try:
        return BUILTIN_MODELS[name]
    except KeyError:
        known = ", ".join(BUILTIN_MODELS)
        raise UserError(f"unknown model '{name}'; use one of {known} or a custom model YAML", field="model") from None


# name -> the YAML file a custom model was read from (for the `astrasim profile --models <file>`
# command printed when its profile rows are missing)
CUSTOM_MODEL_FILES: dict[str, str] = {}

_INT_FIELDS = ("layers", "hidden", "heads", "kv_heads", "mlp_hidden", "tokens", "max_tokens")
_BOOL_FIELDS = ("causal", "cls_token")
_CHOICES = {"family": ("vit", "gpt2", "llama", "custom"), "activation": ("gelu", "swiglu"),
            "norm": ("layernorm", "rmsnorm")}


def _check_types(data: dict) -> None:
    """Each field's type, before the dataclass sees it (12.5 or "12" layers is a UserError, not a
    TypeError deep in a kernel)."""
    for k, v in data.items():
        field = f"model.{k}"
        if k in _INT_FIELDS and (isinstance(v, bool) or not isinstance(v, int)):
            raise UserError(f"must be a whole number, got {v!r}; write e.g. {k}: 12 (no quotes, no decimals)",
                            field=field)
        if k in _BOOL_FIELDS and not isinstance(v, bool):
            raise UserError(f"must be true or false, got {v!r}", field=field)
        if k in _CHOICES and v not in _CHOICES[k]:
            raise UserError(f"must be one of {', '.join(_CHOICES[k])}, got {v!r}", field=field)
        if k == "name" and (not isinstance(v, str) or not v.strip()):
            raise UserError(f"must be a non-empty text, got {v!r}", field=field)


def model_from_dict(data: dict) -> ModelSpec:
    """Build a custom model from a mapping (e.g. parsed YAML); unknown or missing fields, wrong
    types and a built-in's name with another shape are errors."""
    if not isinstance(data, dict):
        raise UserError("a custom model must be a mapping of ModelSpec fields", field="model")
    fields = set(ModelSpec.__dataclass_fields__)
    unknown = set(data) - fields
    if unknown:
        raise UserError(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(fields)}", field="model")
    _check_types(data)
    defaults = {"family": "custom", "kv_heads": data.get("heads"), "activation": "gelu", "norm": "layernorm",
                "causal": False, "cls_token": False, "max_tokens": data.get("tokens")}
    merged = {**{k: v for k, v in defaults.items() if v is not None}, **data}
    missing = {"name", "layers", "hidden", "heads", "mlp_hidden", "tokens"} - set(merged)
    if missing:
        raise UserError(f"missing required field(s) {sorted(missing)}", field="model")
    try:
        spec = ModelSpec(**merged)
    except TypeError as exc:
        raise UserError(str(exc), field="model") from None
    spec.check()
    builtin = BUILTIN_MODELS.get(spec.name)
    if builtin is not None and builtin != spec:
        # profile rows are keyed by model name: the built-in's rows would time a different shape
        raise UserError(f"'{spec.name}' is a built-in model with another shape; give the custom model its own "
                        f"name (e.g. {spec.name}-custom) so its compute is profiled for its own shape",
                        field="model.name")
    return spec


def load_model_yaml(path: str | Path) -> ModelSpec:
    """Read a custom model from a YAML file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"file '{p}' not found; give a path to a model YAML", field="model")
    from astrasim.fileio import read_yaml_file

    spec = model_from_dict(read_yaml_file(p, "model"))
    if spec.name not in BUILTIN_MODELS:
        CUSTOM_MODEL_FILES[spec.name] = str(p)
    return spec
