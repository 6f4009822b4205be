"""Transformer model specs: the published shapes every layer of astrasim agrees on.

Pure data. Kernels build blocks from a spec; strategies count bits and look up profiles by
its name. A model comes from three places, all with the same fields:
* the built-ins below (`vit-base`, `gpt2-s`, `gpt2-m`, `llama3-8b`);
* the shipped zoo of Hugging Face configs (astrasim/models/zoo/, `astrasim models` lists them);
* a user's file: a custom YAML with ModelSpec's fields, or a Hugging Face `config.json` (or the
  folder holding one), mapped by astrasim.models.hf.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from astrasim.errors import UserError
from astrasim.fileio import read_yaml_file
from astrasim.models.hf import default_name, read_config, spec_from_config
from astrasim.models.spec import ACTIVATIONS, BUILTIN_MODELS, FAMILIES, NORMS, ModelSpec
from astrasim.models.zoo import ZOO, zoo_model

__all__ = [
    "ModelSpec",
    "BUILTIN_MODELS",
    "FAMILIES",
    "ACTIVATIONS",
    "NORMS",
    "CUSTOM_MODEL_FILES",
    "get_model",
    "known_names",
    "model_from_dict",
    "load_model_yaml",
    "load_hf_config",
    "load_model",
]


def get_model(name: str) -> ModelSpec:
    """A built-in or zoo model by name, or a UserError listing the known names."""
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name]
    if name in ZOO:
        return zoo_model(name)
    known = ", ".join([*BUILTIN_MODELS, *ZOO])
    raise UserError(
        f"unknown model '{name}'; use one of {known}, a custom model YAML or a Hugging Face config.json", field="model"
    )


def known_names() -> list[str]:
    """Every model addressable by a short name (built-ins, then the zoo)."""
    return [*BUILTIN_MODELS, *ZOO]


# name -> the file a custom or imported model was read from (for the `astrasim profile --models <file>`
# command printed when its profile rows are missing)
CUSTOM_MODEL_FILES: dict[str, str] = {}

_INT_FIELDS = (
    "layers",
    "hidden",
    "heads",
    "kv_heads",
    "mlp_hidden",
    "tokens",
    "max_tokens",
    "vocab",
    "head_dim",
    "sliding_window",
    "window_layers",
    "experts",
    "experts_per_token",
    "expert_mlp_hidden",
    "shared_experts",
    "shared_expert_mlp_hidden",
)
_BOOL_FIELDS = (
    "causal",
    "cls_token",
    "tied_embeddings",
    "learned_positions",
    "qk_norm",
    "sandwich_norm",
    "shared_expert_gate",
)
_OPTIONAL_BOOL_FIELDS = ("bias", "qkv_bias")
_FLOAT_FIELDS = ("attn_softcap", "final_softcap")
_CHOICES = {"family": FAMILIES, "activation": ACTIVATIONS, "norm": NORMS}


def _check_types(data: dict) -> None:
    """Each field's type, before the dataclass sees it (12.5 or "12" layers is a UserError, not a
    TypeError deep in a kernel)."""
    for k, v in data.items():
        field = f"model.{k}"
        if k in _INT_FIELDS and (isinstance(v, bool) or not isinstance(v, int)):
            raise UserError(
                f"must be a whole number, got {v!r}; write e.g. {k}: 12 (no quotes, no decimals)", field=field
            )
        if k in _BOOL_FIELDS and not isinstance(v, bool):
            raise UserError(f"must be true or false, got {v!r}", field=field)
        if k in _OPTIONAL_BOOL_FIELDS and v is not None and not isinstance(v, bool):
            raise UserError(f"must be true or false, got {v!r}", field=field)
        if k in _FLOAT_FIELDS and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise UserError(f"must be a number, got {v!r}", field=field)
        if k in _CHOICES and v not in _CHOICES[k]:
            raise UserError(f"must be one of {', '.join(_CHOICES[k])}, got {v!r}", field=field)
        if k == "name" and (not isinstance(v, str) or not v.strip()):
            raise UserError(f"must be a non-empty text, got {v!r}", field=field)


def model_from_dict(data: dict) -> ModelSpec:
    """Build a custom model from a mapping (e.g. parsed YAML); unknown or missing fields, wrong
    types and a built-in's name with another shape are errors."""
    if not isinstance(data, dict):
        raise UserError("a custom model must be a mapping of ModelSpec fields", field="model")
    names = {f.name for f in fields(ModelSpec)}
    unknown = set(data) - names
    if unknown:
        raise UserError(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(names)}", field="model")
    _check_types(data)
    defaults = {
        "family": "custom",
        "kv_heads": data.get("heads"),
        "activation": "gelu",
        "norm": "layernorm",
        "causal": False,
        "cls_token": False,
        "max_tokens": data.get("tokens"),
    }
    merged = {**{k: v for k, v in defaults.items() if v is not None}, **data}
    missing = {"name", "layers", "hidden", "heads", "mlp_hidden", "tokens"} - set(merged)
    if missing:
        raise UserError(f"missing required field(s) {sorted(missing)}", field="model")
    try:
        spec = ModelSpec(**merged)
    except TypeError as exc:
        raise UserError(str(exc), field="model") from None
    spec.check()
    _check_name(spec)
    return spec


def _check_name(spec: ModelSpec) -> None:
    """Profile rows are keyed by model name: a built-in's or zoo model's rows would time another shape."""
    named = BUILTIN_MODELS.get(spec.name) or (zoo_model(spec.name) if spec.name in ZOO else None)
    if named is not None and named != spec:
        raise UserError(
            f"'{spec.name}' is a built-in (or zoo) model with another shape; give the custom model its own "
            f"name (e.g. {spec.name}-custom; an imported config.json takes its folder's name) so its "
            f"compute is profiled for its own shape",
            field="model.name",
        )


def load_model_yaml(path: str | Path) -> ModelSpec:
    """Read a custom model from a YAML file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"file '{p}' not found; give a path to a model YAML", field="model")
    spec = model_from_dict(read_yaml_file(p, "model"))
    if spec.name not in BUILTIN_MODELS:
        CUSTOM_MODEL_FILES[spec.name] = str(p)
    return spec


def load_hf_config(path: str | Path, name: str | None = None) -> ModelSpec:
    """A ModelSpec from a Hugging Face config.json (or its folder); one-line UserErrors naming the file and field."""
    data, p = read_config(path)
    spec = spec_from_config(data, name or default_name(p), p)
    _check_name(spec)
    CUSTOM_MODEL_FILES.setdefault(spec.name, str(p))
    return spec


def load_model(text: str, base_dir: Path | None = None) -> ModelSpec:
    """A model from what a user wrote: a built-in or zoo name (names win over same-named folders), a
    custom YAML, or a Hugging Face config.json or the folder holding one; relative paths are tried
    against `base_dir` (the scenario's folder) first."""
    if text in BUILTIN_MODELS or text in known_names():
        return get_model(text)
    p = Path(text)
    if not p.is_absolute() and base_dir is not None and (Path(base_dir) / p).exists():
        p = Path(base_dir) / p
    if text.endswith((".yaml", ".yml")):
        return load_model_yaml(p)
    if text.endswith(".json") or p.is_dir():
        return load_hf_config(p)
    return get_model(text)
