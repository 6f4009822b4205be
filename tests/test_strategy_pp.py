"""Pipeline parallelism (pp): stages, messages, chunked prefill, and that the registry alone adds it."""

import pytest

from astrasim.compute.analytic import LayerShape
from astrasim.compute.profiles import ProfileCosts
from astrasim.engine import simulate
from astrasim.errors import UserError
from astrasim.models import get_model
from astrasim.network.topology import build_topology
from astrasim.opgraph import Comm, Compute
from astrasim.strategies import KNOB_FIELDS, STRATEGIES, build_graph, parse_label
from astrasim.strategies.pp import chunk_attn_cost
from astrasim.strategies.synthetic import synthetic_profile

GPT2S = get_model("gpt2-s")
PP = STRATEGIES["pp"]


@pytest.fixture(scope="module")
def costs():
    return ProfileCosts(synthetic_profile([GPT2S], strategies=("single",), tokens=[64, 128, 256, 512, 1024]))


def test_registered_with_its_knob_label_and_exactness():
    assert PP.exact and not PP.single_device
    assert "chunks" in KNOB_FIELDS
    assert PP.label() == "pp" and PP.label(PP.knobs(chunks=4)) == "pp C=4"
    assert parse_label("pp C=4") == (PP, PP.knobs(chunks=4))


def test_stages_are_contiguous_and_cover_every_layer_once():
    for n in (1, 2, 4, 5, 12):
        stages = PP.stages(GPT2S, n)
        assert [layer for s in stages for layer in s] == list(range(GPT2S.layers))
        assert max(len(s) for s in stages) == -(-GPT2S.layers // n)  # each device ~1/N of the weights


def test_one_chunk_is_the_single_device_layers_plus_one_activation_per_boundary(costs):
    n, t = 4, 512
    g = build_graph("pp", GPT2S, costs, n, t)
    single = build_graph("single", GPT2S, costs, 1, t)
    assert sorted(op.seconds for op in g.ops if isinstance(op, Compute)) == pytest.approx(
        sorted(op.seconds for op in single.ops if isinstance(op, Compute))
    )
    comms = [op for op in g.ops if isinstance(op, Comm)]
    assert [(op.collective, op.devices, op.bits) for op in comms] == [
        ("p2p", (s, s + 1), t * GPT2S.hidden * 32) for s in range(n - 1)
    ]
    ideal = simulate(g, build_topology("ideal", n, 1e9)).latency_s
    assert ideal == pytest.approx(simulate(single, build_topology("ideal", 1, 1e9)).latency_s, rel=1e-4)


def test_later_chunks_attend_to_more_keys(costs):
    times = PP.chunk_seconds(costs, GPT2S, 512, 4)
    attn = [a for a, _ in times]
    sh = LayerShape.of(GPT2S)
    assert attn == sorted(attn) and attn[-1] > 1.2 * attn[0]
    for j in range(4):  # same queries, more keys: the single device's attn at 128 tokens x the FLOP ratio
        ratio = chunk_attn_cost(sh, 128, 128 * j, 4).flops / chunk_attn_cost(sh, 128, 0, 4).flops
        assert attn[j] == pytest.approx(attn[0] * ratio)
    assert len({m for _, m in times}) == 1  # the MLP does not see the cache
    whole = chunk_attn_cost(sh, 512, 0, 4).flops
    assert sum(chunk_attn_cost(sh, 128, 128 * j, 4).flops for j in range(4)) == pytest.approx(whole)


def test_chunks_overlap_the_stages(costs):
    """With chunks the stages work at once: a 4-stage pipeline at 4 chunks beats one chunk on a fast link."""
    topo = build_topology("switch", 4, 1000.0)
    one = simulate(build_graph("pp", GPT2S, costs, 4, 512), topo).latency_s
    four = simulate(build_graph("pp", GPT2S, costs, 4, 512, {"chunks": 4}), topo).latency_s
    assert four < 0.7 * one
    g = build_graph("pp", GPT2S, costs, 4, 512, {"chunks": 4})
    assert sum(1 for op in g.ops if isinstance(op, Comm)) == 4 * 3


def test_bad_splits_name_the_fix(costs):
    with pytest.raises(UserError, match="at most 12 devices"):
        build_graph("pp", GPT2S, costs, 13, 512)
    with pytest.raises(ValueError, match="chunks"):
        build_graph("pp", GPT2S, costs, 4, 8, {"chunks": 9})
