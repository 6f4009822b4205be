"""Hugging Face config.json import: each architecture's fields map onto ModelSpec; bad files are one
line naming the file and the field (exit 2, nothing written)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from astrasim.errors import UserError
from astrasim.models import BUILTIN_MODELS, get_model, load_hf_config, load_model
from astrasim.models.hf import SUPPORTED_TYPES
from astrasim.models.zoo import ZOO

LLAMA = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 100,
    "max_position_embeddings": 256,
    "hidden_act": "silu",
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0},
    "tie_word_embeddings": True,
}


def write(tmp_path, data, name="tiny-hf"):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text(json.dumps(data) if not isinstance(data, str) else data)
    return d


def test_llama_config_maps_gqa_tied_and_rope_scaling(tmp_path):
    spec = load_hf_config(write(tmp_path, LLAMA))  # a folder holding config.json
    assert (spec.name, spec.family, spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.head_dim) == (
        "tiny-hf",
        "llama",
        2,
        64,
        4,
        2,
        16,
    )
    assert (spec.activation, spec.norm, spec.causal, spec.tied_embeddings, spec.bias, spec.qkv_bias) == (
        "swiglu",
        "rmsnorm",
        True,
        True,
        False,
        False,
    )
    assert (spec.vocab, spec.max_tokens, spec.tokens) == (100, 256, 256)
    assert load_hf_config(write(tmp_path, LLAMA) / "config.json") == spec  # the file itself


def test_gpt2_and_vit_configs_give_the_builtin_shapes(tmp_path):
    gpt2 = {
        "model_type": "gpt2",
        "n_layer": 12,
        "n_embd": 768,
        "n_head": 12,
        "n_inner": None,
        "n_positions": 1024,
        "vocab_size": 50257,
        "activation_function": "gelu_new",
    }
    vit = {
        "model_type": "vit",
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "image_size": 224,
        "patch_size": 16,
        "qkv_bias": True,
        "id2label": {str(i): f"c{i}" for i in range(1000)},
    }
    for data, builtin in ((gpt2, "gpt2-s"), (vit, "vit-base")):
        spec = load_hf_config(write(tmp_path, data, f"x-{builtin}"))
        want = BUILTIN_MODELS[builtin]
        assert {**spec.to_dict(), "name": builtin} == want.to_dict()


def test_zoo_architecture_details():
    assert get_model("gemma2-2b").head_dim == 256 and get_model("gemma2-2b").q_width == 2048  # != hidden 2304
    g = get_model("gemma2-9b")
    assert (g.activation, g.sandwich_norm, g.sliding_window, g.window_layers, g.attn_softcap, g.final_softcap) == (
        "geglu",
        True,
        4096,
        21,
        50.0,
        30.0,
    )
    q = get_model("qwen2.5-7b")
    assert (q.qkv_bias, q.bias, q.sliding_window, q.tied_embeddings) == (True, False, 0, False)
    assert get_model("qwen2.5-0.5b").tied_embeddings
    m = get_model("mistral-7b")
    assert (m.sliding_window, m.window_layers, m.kv_heads) == (4096, 32, 8)
    assert get_model("phi3.5-mini").sliding_window == 0  # 262144 >= its context: no window
    x = get_model("mixtral-8x7b")
    assert (x.experts, x.experts_per_token, x.expert_mlp_hidden, x.shared_experts) == (8, 2, 14336, 0)
    q3 = get_model("qwen3-30b-a3b")
    assert (q3.experts, q3.experts_per_token, q3.expert_mlp_hidden, q3.qk_norm, q3.head_dim) == (128, 8, 768, True, 128)
    assert set(ZOO) >= {"llama3.2-1b", "tinyllama-1.1b", "smollm2-1.7b", "qwen2.5-3b"}


def test_gemma_v1_and_llama1_defaults(tmp_path):
    gemma = {**LLAMA, "model_type": "gemma", "head_dim": 32, "hidden_act": "gelu", "hidden_activation": None}
    gemma.pop("tie_word_embeddings")
    spec = load_hf_config(write(tmp_path, gemma, "tiny-gemma"))
    assert (spec.activation, spec.head_dim, spec.q_width, spec.tied_embeddings) == ("geglu", 32, 128, True)
    llama1 = {
        k: v
        for k, v in LLAMA.items()
        if k not in ("max_position_embeddings", "num_key_value_heads", "tie_word_embeddings")
    }
    spec = load_hf_config(write(tmp_path, llama1, "tiny-llama1"))
    assert (spec.max_tokens, spec.kv_heads, spec.tied_embeddings) == (2048, 4, False)  # LlamaConfig's defaults


def test_qwen2_moe_shared_expert_and_sliding_layers(tmp_path):
    data = {
        **LLAMA,
        "model_type": "qwen2_moe",
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 96,
        "use_sliding_window": True,
        "sliding_window": 64,
        "max_window_layers": 1,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
    }
    spec = load_hf_config(write(tmp_path, data))
    assert (
        spec.experts,
        spec.experts_per_token,
        spec.expert_mlp_hidden,
        spec.shared_experts,
        spec.shared_expert_mlp_hidden,
        spec.shared_expert_gate,
        spec.qkv_bias,
    ) == (4, 2, 32, 1, 96, True, True)
    assert (spec.sliding_window, spec.window_layers) == (64, 1)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"model_type": "mamba"}, "model_type"),
        ({"num_hidden_layers": 12.5}, "num_hidden_layers"),
        ({"num_hidden_layers": "12"}, "num_hidden_layers"),
        ({"num_hidden_layers": None}, "num_hidden_layers"),
        ({"hidden_size": 66}, "num_attention_heads"),  # 4 heads do not divide 66, no head_dim
        ({"num_key_value_heads": 3}, "num_key_value_heads"),
        ({"hidden_act": "relu"}, "hidden_act"),
        (
            {
                "model_type": "qwen2_moe",
                "num_experts": 4,
                "num_experts_per_tok": 2,
                "moe_intermediate_size": 8,
                "mlp_only_layers": [0],
            },
            "mlp_only_layers",
        ),
        ({"model_type": "mixtral", "num_local_experts": 2, "num_experts_per_tok": 3}, "num_experts_per_tok"),
    ],
)
def test_bad_config_names_the_file_and_field(tmp_path, change, field):
    data = {**LLAMA, **change}
    if change.get("num_hidden_layers", 0) is None:
        data["num_hidden_layers"] = None
    with pytest.raises(UserError) as exc:
        load_hf_config(write(tmp_path, data))
    msg = str(exc.value)
    assert f"field '{field}'" in msg and "config.json" in msg and "\n" not in msg
    if field == "model_type":
        assert all(t in msg for t in SUPPORTED_TYPES)


def test_missing_field_and_not_json(tmp_path):
    with pytest.raises(UserError, match="field 'intermediate_size': missing"):
        load_hf_config(write(tmp_path, {k: v for k, v in LLAMA.items() if k != "intermediate_size"}))
    with pytest.raises(UserError, match="not valid JSON"):
        load_hf_config(write(tmp_path, "{not json"))
    with pytest.raises(UserError, match="not found"):
        load_model(str(tmp_path / "nowhere" / "config.json"))


def test_scenario_models_accepts_a_config_path_and_bad_one_writes_nothing(tmp_path):
    from astrasim.scenario.loading import load_scenario

    folder = write(tmp_path, LLAMA)
    sc = tmp_path / "s.yaml"
    sc.write_text(
        "models: [tiny-hf/config.json, tiny-hf]\ntokens: [64]\ndevices: [2]\nstrategies: [single]\n"
        "hardware: {device: raspberry-pi-5}\n"
    )
    specs = load_scenario(sc).specs
    assert [s.name for s in specs] == ["tiny-hf", "tiny-hf"] and specs[0] == load_hf_config(folder)
    (folder / "config.json").write_text(json.dumps({**LLAMA, "num_hidden_layers": 2.5}))
    out = tmp_path / "out.csv"
    r = subprocess.run(
        [sys.executable, "-m", "astrasim", "sweep", str(sc), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert r.returncode == 2 and not out.exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "num_hidden_layers" in lines[0] and "config.json" in lines[0]


def test_profile_measures_an_imported_moe_model(tmp_path):
    """astrasim profile builds the kernels from an imported config (here a tiny Qwen2-MoE) and times each
    strategy's ops, ep included; the rows carry the analytic FLOPs of the same ops."""
    pytest.importorskip("torch")
    from astrasim.profiling.profiler import profile_ops

    moe = {
        **LLAMA,
        "model_type": "qwen2_moe",
        "hidden_size": 32,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 16,
        "shared_expert_intermediate_size": 24,
    }
    spec = load_hf_config(write(tmp_path, moe, "tiny-moe"))
    table = profile_ops(spec, ["single", "sp", "ep"], [1, 2], tokens=16, repeats=2, warmup=1, progress=False)
    got = set(zip(table["strategy"], table["devices"], table["op"]))
    assert {("single", 1, "attn"), ("single", 1, "mlp"), ("ep", 2, "attn"), ("ep", 2, "experts")} <= got
    assert (table["median_s"] > 0).all() and (table["flops"] > 0).all()
