"""Model specs: published shapes, custom YAML, and clear errors."""

import pytest

from astrasim.errors import UserError
from astrasim.models import BUILTIN_MODELS, get_model, load_model_yaml, model_from_dict


@pytest.mark.parametrize(
    "name, layers, hidden, heads, kv_heads, mlp, causal",
    [
        ("vit-base", 12, 768, 12, 12, 3072, False),
        ("gpt2-s", 12, 768, 12, 12, 3072, True),
        ("gpt2-m", 24, 1024, 16, 16, 4096, True),
        ("llama3-8b", 32, 4096, 32, 8, 14336, True),
    ],
)
def test_published_shapes(name, layers, hidden, heads, kv_heads, mlp, causal):
    spec = get_model(name)
    assert (spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.mlp_hidden, spec.causal) == (
        layers,
        hidden,
        heads,
        kv_heads,
        mlp,
        causal,
    )
    spec.check()


def test_family_details():
    assert get_model("vit-base").cls_token and get_model("vit-base").tokens == 197
    llama = get_model("llama3-8b")
    assert (llama.activation, llama.norm, llama.head_dim) == ("swiglu", "rmsnorm", 128)
    assert set(BUILTIN_MODELS) == {"vit-base", "gpt2-s", "gpt2-m", "llama3-8b"}


def test_unknown_model_names_the_choices():
    with pytest.raises(UserError, match="gpt2-s"):
        get_model("gpt3")


def test_custom_model_from_yaml(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text("name: tiny\nlayers: 2\nhidden: 64\nheads: 4\nmlp_hidden: 256\ntokens: 32\ncausal: true\n")
    spec = load_model_yaml(p)
    assert (spec.kv_heads, spec.max_tokens, spec.family, spec.causal) == (4, 32, "custom", True)


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "x", "layers": 2, "hidden": 65, "heads": 4, "mlp_hidden": 8, "tokens": 4}, "model.heads"),
        ({"name": "x", "layers": 0, "hidden": 64, "heads": 4, "mlp_hidden": 8, "tokens": 4}, "model.layers"),
        ({"name": "x", "layers": 2, "hidden": 64, "heads": 4, "mlp_hidden": 8, "tokens": 4, "colour": 1}, "colour"),
        ({"name": "x", "layers": 2, "hidden": 64, "heads": 4, "tokens": 4}, "mlp_hidden"),
    ],
)
def test_custom_model_errors_name_the_field(data, field):
    with pytest.raises(UserError, match=field):
        model_from_dict(data)


def test_malformed_yaml_is_a_user_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="malformed YAML"):
        load_model_yaml(p)
