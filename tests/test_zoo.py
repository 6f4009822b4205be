"""The shipped zoo: every published config loads, and the parameter count astrasim computes from the
spec matches the count its publisher states (ZOO[name].cited says where) within 0.5 %."""

import pytest

from astrasim.compute.analytic import LayerShape
from astrasim.compute.memory import layer_weights, model_weights
from astrasim.models import get_model, model_from_dict
from astrasim.models.zoo import ZOO, ZOO_DIR


@pytest.mark.parametrize("name", list(ZOO))
def test_parameters_match_the_publisher(name):
    spec, entry = get_model(name), ZOO[name]
    assert abs(model_weights(spec) / entry.published - 1) < 0.005, (model_weights(spec), entry.published)
    assert (ZOO_DIR / name / "SOURCE.md").read_text().count(entry.repo) >= 1


def test_active_parameters_of_moe_models():
    mixtral = get_model("mixtral-8x7b")
    assert abs(model_weights(mixtral, active=True) / 12.9e9 - 1) < 0.005
    # Qwen states "3.3B activated" to two digits; the count is 3.353 B (8 of 128 experts per token)
    assert 3.3e9 <= model_weights(get_model("qwen3-30b-a3b"), active=True) < 3.4e9
    assert model_weights(get_model("llama3.2-1b"), active=True) == model_weights(get_model("llama3.2-1b"))


@pytest.mark.parametrize(
    "count, name",
    [  # exact safetensors counts of the publishers' checkpoints
        (1_235_814_400, "llama3.2-1b"),
        (7_241_732_096, "mistral-7b"),
        (494_032_768, "qwen2.5-0.5b"),
        (1_100_048_384, "tinyllama-1.1b"),
        (2_614_341_888, "gemma2-2b"),
        (46_702_792_704, "mixtral-8x7b"),
    ],
)
def test_exact_counts(count, name):
    assert model_weights(get_model(name)) == count


TINY = dict(
    layers=1, hidden=48, heads=4, kv_heads=2, mlp_hidden=96, tokens=8, causal=True, norm="rmsnorm", activation="swiglu"
)


@pytest.mark.parametrize(
    "extra",
    [
        {},  # llama
        {"qkv_bias": True, "bias": False},  # qwen2
        {"qk_norm": True, "head_dim": 16},  # qwen3 (q width 64 != hidden 48)
        {"activation": "geglu", "head_dim": 24, "sandwich_norm": True},  # gemma2
        {"experts": 4, "experts_per_token": 2, "expert_mlp_hidden": 32},  # mixtral / qwen3-moe
        {
            "experts": 4,
            "experts_per_token": 2,
            "expert_mlp_hidden": 32,
            "shared_experts": 1,
            "shared_expert_mlp_hidden": 40,
            "shared_expert_gate": True,
            "qkv_bias": True,
            "bias": False,
        },  # qwen2-moe
        {"norm": "layernorm", "activation": "gelu"},  # gpt2 / vit
    ],
)
def test_kernel_block_has_exactly_the_counted_weights(extra):
    """Oracle: the torch block built from the spec holds as many parameters as the memory model counts."""
    torch = pytest.importorskip("torch")
    from astrasim.kernels.block import ReferenceBlock

    spec = model_from_dict({"name": "tiny-arch", **TINY, **extra})
    block = ReferenceBlock(spec)
    assert sum(p.numel() for p in block.parameters()) == layer_weights(LayerShape.of(spec))
    assert block(torch.randn(1, 8, 48)).shape == (1, 8, 48)


class Flat:
    """Every op 1 ms (the graphs' shape is under test, not the times)."""

    def seconds(self, model, strategy, devices, op, tokens, groups=0, codebook=0):
        return 1e-3


@pytest.mark.parametrize("name", list(ZOO))
def test_every_strategy_builds_every_zoo_model(name):
    """Each strategy that applies builds prefill + decode graphs, analytic costs and memory for each zoo
    model at N = 2 (ASTRA at G = 32 divides every zoo model's hidden size)."""
    from astrasim.strategies import STRATEGIES, BuildOptions, build_graph

    spec = get_model(name)
    for s in STRATEGIES.values():
        if not s.applies(spec):
            continue
        knobs = s.knobs(**({"groups": 32} if "groups" in s.Knobs.model_fields else {}))
        g = build_graph(s, spec, Flat(), 2, 64, knobs, BuildOptions(weight_bits=4), output_tokens=3)
        assert g.ops
        n = 1 if s.single_device else 2
        for cost in [*s.op_costs(spec, n, 64, knobs).values(), *s.decode_op_costs(spec, n, 64, knobs).values()]:
            assert cost.flops > 0 and cost.bytes > 0
        assert all(m.total > 0 for m in s.memory(spec, n, 64, knobs, BuildOptions(weight_bits=4), output_tokens=3))


def test_models_command_lists_the_zoo_with_weight_bytes_per_format():
    import json

    from typer.testing import CliRunner

    from astrasim.cli import app
    from astrasim.compute.formats import FORMATS

    r = CliRunner().invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert set(ZOO) | {"llama3-8b", "gpt2-s"} <= set(rows)
    m = rows["mixtral-8x7b"]
    assert (m["layers"], m["hidden"], m["kv_heads"], m["context"], m["experts"]) == (32, 4096, 8, 32768, "2/8")
    assert m["q4_0_gb"] == pytest.approx(46_702_792_704 * FORMATS["q4_0"].bits / 8 / 1e9)
    assert rows["llama3.2-1b"]["fp16_gb"] == pytest.approx(1_235_814_400 * 2 / 1e9)
    assert CliRunner().invoke(app, ["models"]).exit_code == 0
