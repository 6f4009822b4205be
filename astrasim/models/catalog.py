"""What `astrasim models` lists: every model addressable by a short name, with its parameters
(total and, for MoE models, active per token), shape, context and weight bytes per storage format
(the bits per weight of astrasim.compute.formats, scales included)."""

from __future__ import annotations

from astrasim.models import BUILTIN_MODELS, get_model, known_names

LISTED_FORMATS = ("fp16", "q8_0", "q4_0")


def model_rows(names: list[str] | None = None) -> list[dict]:
    """One row per model: name, source, family, params, active_params, layers, hidden, heads, kv_heads,
    head_dim, experts, context, and `<format>_gb` (10^9 bytes) per LISTED_FORMATS."""
    from astrasim.compute.formats import FORMATS
    from astrasim.compute.memory import model_weights
    from astrasim.models.zoo import ZOO

    rows = []
    for name in names or known_names():
        spec = get_model(name)
        total = float(model_weights(spec))
        row = {
            "name": name,
            "source": "built-in" if name in BUILTIN_MODELS else ZOO[name].repo,
            "family": spec.family,
            "params": total,
            "active_params": float(model_weights(spec, active=True)),
            "layers": spec.layers,
            "hidden": spec.hidden,
            "heads": spec.heads,
            "kv_heads": spec.kv_heads,
            "head_dim": spec.head_dim,
            "experts": f"{spec.experts_per_token}/{spec.experts}" if spec.moe else "",
            "context": spec.max_tokens,
        }
        for f in LISTED_FORMATS:
            row[f"{f}_gb"] = total * FORMATS[f].bits / 8 / 1e9
        rows.append(row)
    return rows
