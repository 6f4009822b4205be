"""Mixture-of-experts costs and memory, sliding windows, and the expert-parallel strategy: small
exact cases in closed form."""

import math

import pytest

from astrasim.compute.analytic import (
    LayerShape,
    attn_block,
    attn_decode_block,
    causal_pairs,
    expected_experts,
    mlp_block,
    mlp_body,
)
from astrasim.compute.memory import kv_bytes, layer_weights, model_weights
from astrasim.models import get_model, model_from_dict
from astrasim.opgraph import Comm, Compute
from astrasim.strategies import STRATEGIES, BuildOptions, build_graph

MIXTRAL = get_model("mixtral-8x7b")
EXPERT = 3 * 4096 * 14336  # one Mixtral expert's weights (gate, up, down)


def test_expected_experts_closed_form():
    assert expected_experts(8, 8, 2, 1) == pytest.approx(2.0)  # one token reads k experts
    assert expected_experts(8, 8, 2, 2) == pytest.approx(8 * (1 - (6 / 8) ** 2))
    assert expected_experts(4, 8, 2, 1) == pytest.approx(1.0)  # a device holding half: k/2
    assert expected_experts(128, 128, 8, 1024) == pytest.approx(128.0)  # a long prefill touches all


def test_decode_reads_k_experts_and_prefill_the_expected_union():
    sh = LayerShape.of(MIXTRAL)
    router = 4096 * 8
    assert mlp_block(sh, 1, 4).weights == 4 * (2 * EXPERT + router + 2 * 4096)  # k experts, router, norm2
    for t in (1, 2, 3, 1024):
        want = 4 * (expected_experts(8, 8, 2, t) * EXPERT + router + 2 * 4096)
        assert mlp_block(sh, t, 4).weights == pytest.approx(want)
    # compute covers the router and each token's k experts, not all E
    dense = mlp_body(sh, 2 * 10, 14336, 4096, 4).flops  # 10 tokens x 2 experts of a dense expert MLP
    assert mlp_block(sh, 10, 4).flops == pytest.approx(
        dense + 2 * 10 * 4096 * 8 + 5 * 10 * 8 + 2 * 20 * 4096 + 5 * 10 * 4096 + 10 * 4096
    )


def test_memory_holds_every_expert_and_tp_splits_their_columns():
    sh = LayerShape.of(MIXTRAL)
    attn = 4096 * (32 + 16) * 128 + 32 * 128 * 4096
    assert layer_weights(sh) == attn + 8 * EXPERT + 4096 * 8 + 2 * 4096
    assert layer_weights(sh, active=True) == attn + 2 * EXPERT + 4096 * 8 + 2 * 4096
    tp = STRATEGIES["tp"]
    shard = tp.shard_shape(MIXTRAL, 2)
    assert (shard.mlp_hidden, shard.experts) == (7168, 8)
    half = tp.decode_op_costs(MIXTRAL, 2, 16, tp.knobs())["mlp_decode"].weights
    whole = STRATEGIES["single"].decode_op_costs(MIXTRAL, 1, 16, tp.knobs())["mlp_decode"].weights
    assert half == pytest.approx(whole - 4 * 2 * EXPERT / 2)


def test_sliding_window_bounds_attention_and_kv():
    assert causal_pairs(10, 4) == 4 * 5 / 2 + 6 * 4 and causal_pairs(3, 4) == 6
    mistral = get_model("mistral-7b")  # every layer windowed at 4096
    sh = LayerShape.of(mistral)
    full = LayerShape.of(
        model_from_dict({**mistral.to_dict(), "name": "m-full", "sliding_window": 0, "window_layers": 0})
    )
    assert attn_block(sh, 2048, 2048, 4, square_causal=True) == attn_block(full, 2048, 2048, 4, square_causal=True)
    assert (
        attn_block(sh, 8192, 8192, 4, square_causal=True).flops
        < attn_block(full, 8192, 8192, 4, square_causal=True).flops
    )
    assert attn_decode_block(sh, 10_000, 4).bytes == attn_decode_block(sh, 4095, 4).bytes  # reads 4096 keys
    assert kv_bytes(32, 10_000, 8, 128, sh) == kv_bytes(32, 4096, 8, 128)
    g = LayerShape.of(get_model("gemma2-2b"))  # 13 of 26 layers windowed
    assert kv_bytes(26, 8000, 4, 256, g) == pytest.approx(kv_bytes(13, 8000, 4, 256) + kv_bytes(13, 4096, 4, 256))


class Flat:
    def seconds(self, model, strategy, devices, op, tokens, key=()):
        return 1e-3


def test_ep_graph_has_two_all_to_alls_per_layer_of_the_expected_bits():
    spec = model_from_dict(
        {
            "name": "moe-small",
            "layers": 3,
            "hidden": 64,
            "heads": 4,
            "mlp_hidden": 128,
            "tokens": 64,
            "causal": True,
            "experts": 8,
            "experts_per_token": 2,
            "activation": "swiglu",
            "norm": "rmsnorm",
        }
    )
    g = build_graph("ep", spec, Flat(), 4, 64, output_tokens=3)
    a2a = [op for op in g.ops if isinstance(op, Comm) and op.collective == "all_to_all"]
    assert len(a2a) == 2 * 3 and {op.bits for op in a2a} == {64 * 2 / 16 * 64 * 32}  # T k / N^2 x D x b
    decode = [op for op in g.ops if op.id.startswith("tok")]
    assert sum(isinstance(op, Comm) for op in decode) == 2 * 2 * 3  # 2 steps x 3 layers x (broadcast, gather)
    assert {op.device for op in decode if isinstance(op, Compute) and op.name == "attn_decode"} == {3}


def test_ep_memory_spreads_the_experts():
    ep, single = STRATEGIES["ep"], STRATEGIES["single"]
    opts = BuildOptions(weight_bits=16)
    mem = ep.memory(MIXTRAL, 2, 1024, ep.knobs(), opts)
    whole = single.memory(MIXTRAL, 1, 1024, single.knobs(), opts)[0].weights
    assert mem[0].weights == pytest.approx(whole - 2 * 32 * 4 * EXPERT)  # 4 of 8 experts less, 32 layers, 2 bytes
    assert ep.decode_op_costs(MIXTRAL, 2, 16, ep.knobs())["experts_decode"].weights == pytest.approx(
        4 * EXPERT
    )  # expected k/N = 1 of the token's experts per device
    assert not ep.applies(get_model("llama3.2-1b")) and ep.applies(MIXTRAL)
    assert math.isclose(model_weights(MIXTRAL) / 46.7e9, 1, rel_tol=0.005)


def test_ep_runs_on_a_mixed_fleet():
    """A Jetson and a Pi: each device's expert ops are timed on its own hardware (calibrated model)."""
    from astrasim.scenario.loading import from_dict

    sc = from_dict(
        {
            "models": ["mixtral-8x7b"],
            "tokens": 64,
            "output_tokens": 3,
            "devices": 2,
            "strategies": ["ep"],
            "weight_bits": 4,
            "hardware": {"devices": ["jetson-agx-orin", "raspberry-pi-5"]},
        },
        name="mix",
    )
    from astrasim.pointrun import build_generation_graph, result_row, run_point

    (p,) = sc.points()
    result, graph = run_point(p)
    row = result_row(p, result)
    assert row["ttft_s"] > 0 and row["tpot_s"] > 0
    prefill = {op.device: op.seconds for op in graph.ops if op.id.startswith("L0.experts.")}
    decode = {
        op.device: op.seconds for op in build_generation_graph(p).ops if op.id.startswith("tok1.L0.experts_decode")
    }
    assert prefill[1] > 3 * prefill[0] and decode[1] > 3 * decode[0]  # the same expert share is slower on the Pi
