"""Generation (output_tokens > 0): prefill + decode steps, ttft/tpot/e2e, decode per strategy."""

import math
from pathlib import Path

import pytest
import yaml

from astrasim.compute.analytic import LayerShape, mlp_block
from astrasim.compute.catalog import load_catalog
from astrasim.compute.profiles import ProfileCosts
from astrasim.engine import simulate
from astrasim.errors import UserError
from astrasim.models import get_model
from astrasim.network.topology import build_topology
from astrasim.opgraph import Comm
from astrasim.pointrun import simulate_point
from astrasim.results import COLUMNS, row_line
from astrasim.scenario import load_scenario
from astrasim.strategies import STRATEGIES, build_graph
from astrasim.strategies.synthetic import synthetic_profile

ROOT = Path(__file__).resolve().parents[1]
GPT2S = get_model("gpt2-s")


class FlatCosts:
    """Every op costs the same at every token count / cache length (so every decode step is equal)."""

    SECONDS = {
        "attn": 0.3,
        "mlp": 0.5,
        "attn_decode": 0.002,
        "mlp_decode": 0.003,
        "decoupled_decode": 0.001,
        "decoupled_layer": 0.1,
        "full_layer": 0.8,
        "vq_encode": 0.01,
        "local_attn": 0.1,
        "remote_kv": 0.1,
        "remote_attn": 0.1,
        "merge": 0.01,
    }

    def seconds(self, model, strategy, devices, op, tokens, key=()):
        return self.SECONDS[op]


def write(tmp_path, data, name="g.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.fixture()
def profile(tmp_path, monkeypatch):
    """A synthetic profile (prefill + decode rows) installed as id 'cpu'."""
    d = tmp_path / "profiles"
    d.mkdir()
    specs = [get_model(m) for m in ("vit-base", "gpt2-s")]
    synthetic_profile(specs, devices=(2, 4), tokens=[256, 1024]).to_csv(d / "cpu.csv", index=False)
    monkeypatch.setenv("ASTRASIM_PROFILES", str(d))
    return d / "cpu.csv"


def test_closed_form_when_every_step_costs_the_same():
    """single: prefill = L (attn + mlp); each of the n - 1 decode steps = L (attn_decode + mlp_decode)."""
    c, L, n = FlatCosts.SECONDS, GPT2S.layers, 9
    one = build_topology("ideal", 1, 100.0)
    prefill = simulate(build_graph("single", GPT2S, FlatCosts(), 1, 64), one).latency_s
    e2e = simulate(build_graph("single", GPT2S, FlatCosts(), 1, 64, output_tokens=n), one).latency_s
    assert prefill == pytest.approx(L * (c["attn"] + c["mlp"]), rel=1e-12)
    tpot = (e2e - prefill) / (n - 1)
    assert tpot == pytest.approx(L * (c["attn_decode"] + c["mlp_decode"]), rel=1e-9)
    assert e2e == pytest.approx(prefill + (n - 1) * tpot, rel=1e-12)


def test_result_columns_through_a_scenario(profile, tmp_path):
    base = {
        "models": ["gpt2-s"],
        "tokens": 256,
        "devices": 4,
        "strategies": ["single", "tp", "pp"],
        "network": {"topology": "wifi", "bandwidth_mbps": 100},
    }
    rows = {}
    for out in (0, 1, 33):
        for p in load_scenario(write(tmp_path, {**base, "output_tokens": out})).points():
            rows[(p.strategy, out)] = simulate_point(p)
    for s in ("single", "tp", "pp"):
        prefill, gen = rows[(s, 0)], rows[(s, 33)]
        assert gen["latency_s"] == prefill["latency_s"]  # prefill values unchanged
        assert prefill["ttft_s"] is None and prefill["e2e_s"] is None and prefill["tpot_s"] is None
        # ttft = the prefill and the first token's LM head (on the measured profile: priced by the
        # profile's catalog entry, astrasim.compute.hardware.head_seconds)
        point = next(
            p for p in load_scenario(write(tmp_path, {**base, "output_tokens": 1})).points() if p.strategy == s
        )
        head = max(point.options().head_s)
        assert head > 0
        assert rows[(s, 1)]["e2e_s"] == rows[(s, 1)]["ttft_s"] == pytest.approx(prefill["latency_s"] + head, rel=1e-12)
        assert rows[(s, 1)]["tpot_s"] is None
        assert gen["ttft_s"] == rows[(s, 1)]["ttft_s"]
        assert gen["e2e_s"] == pytest.approx(gen["ttft_s"] + 32 * gen["tpot_s"], rel=1e-12)
        assert gen["tpot_s"] > 0
        assert row_line(gen).count(",") == len(COLUMNS) - 1


def test_tp_decode_pays_two_all_reduces_of_one_vector_per_layer_and_token():
    n, steps, L = 4, 5, GPT2S.layers
    g0 = build_graph("tp", GPT2S, FlatCosts(), n, 64)
    g = build_graph("tp", GPT2S, FlatCosts(), n, 64, output_tokens=steps + 1)
    decode = [op for op in g.ops[len(g0.ops) :] if isinstance(op, Comm)]
    assert len(decode) == 2 * L * steps
    assert {(op.collective, op.bits) for op in decode} == {("all_reduce", GPT2S.hidden * 32)}
    topo = build_topology("wifi", n, 100.0)
    r0, r = simulate(g0, topo), simulate(g, topo)
    per_all_reduce = r0.n_messages / (2 * L)  # the prefill's all-reduces become that many messages each
    assert r.n_messages - r0.n_messages == 2 * L * steps * per_all_reduce


def test_tp_decode_is_latency_bound_on_wifi():
    """Per-message alpha dominates: tpot barely changes with the bandwidth, a lot with alpha."""
    g = build_graph("tp", GPT2S, FlatCosts(), 4, 64, output_tokens=3)
    lat = {}
    for bw, alpha in ((100.0, None), (500.0, None), (100.0, 0.01)):
        lat[(bw, alpha)] = simulate(g, build_topology("wifi", 4, bw, latency_s=alpha)).latency_s
    assert lat[(100.0, 0.01)] > lat[(100.0, None)] + 2 * 2 * GPT2S.layers * 0.005


def test_pp_decode_crosses_every_stage_once_per_token():
    n, steps = 4, 3
    g0 = build_graph("pp", GPT2S, FlatCosts(), n, 64)
    g = build_graph("pp", GPT2S, FlatCosts(), n, 64, output_tokens=steps + 1)
    comms = [op for op in g.ops[len(g0.ops) :] if isinstance(op, Comm)]
    hops = [op.devices for op in comms if op.name == "activation"]
    assert hops == [(0, 1), (1, 2), (2, 3)] * steps
    assert all(op.bits == GPT2S.hidden * 32 for op in comms if op.name == "activation")
    assert [op.devices for op in comms if op.name == "next_token"] == [(3, 0)] * steps
    # every decode compute of a stage is one of its own layers
    stages = STRATEGIES["pp"].stages(GPT2S, n)
    for op in g.ops[len(g0.ops) :]:
        if not isinstance(op, Comm):
            assert op.layer in stages[op.device]


def test_sp_and_astra_decode_on_the_last_device_and_sent_kv_costs_traffic():
    n = 4
    for name in ("sp", "astra"):
        local = build_graph(name, GPT2S, FlatCosts(), n, 64, output_tokens=3)
        prefill = build_graph(name, GPT2S, FlatCosts(), n, 64)
        extra = local.ops[len(prefill.ops) :]
        assert {op.device for op in extra} == {n - 1} and not any(isinstance(op, Comm) for op in extra)
        sent = build_graph(name, GPT2S, FlatCosts(), n, 64, {"decode_kv": "sent"}, output_tokens=3)
        gathers = [op for op in sent.ops if isinstance(op, Comm) and op.name == "kv_to_decoder"]
        assert len(gathers) == GPT2S.layers and all(op.root == n - 1 for op in gathers)
        assert gathers[0].bits == 16 * 2 * GPT2S.kv_heads * GPT2S.head_dim * 32  # 16 tokens per device
        topo = build_topology("wifi", n, 20.0)
        r_sent, r_local = simulate(sent, topo), simulate(local, topo)
        assert r_sent.comm_bits == pytest.approx(r_local.comm_bits + GPT2S.layers * 3 * gathers[0].bits)
        assert r_sent.latency_s >= r_local.latency_s  # the sends overlap the rest of the prefill


def test_bp_decode_gathers_the_token_once_per_block():
    g0 = build_graph("bp-ag", GPT2S, FlatCosts(), 4, 64, {"nb": 4})
    g = build_graph("bp-ag", GPT2S, FlatCosts(), 4, 64, {"nb": 4}, output_tokens=2)
    ags = [op for op in g.ops[len(g0.ops) :] if isinstance(op, Comm)]
    assert len(ags) == 4 and {op.bits for op in ags} == {GPT2S.hidden / 4 * 32}


def test_decode_op_bytes_read_every_weight_once():
    """Decode is memory-bound: the analytic bytes of a step's ops are the layer's weights (+ cache)."""
    spec, s = GPT2S, 4
    d, f = spec.hidden, spec.mlp_hidden
    weights = s * (4 * d * d + 4 * d + 2 * d * f + f + d)  # q, k, v, o (+ biases), fc1, fc2 (+ biases)
    c = STRATEGIES["single"].decode_op_costs(spec, 1, 0, STRATEGIES["single"].knobs())
    total = c["attn_decode"].bytes + c["mlp_decode"].bytes
    assert weights < total < weights * 1.01
    grown = STRATEGIES["single"].decode_op_costs(spec, 1, 1000, STRATEGIES["single"].knobs())
    assert grown["attn_decode"].bytes - c["attn_decode"].bytes == s * 2 * spec.kv_heads * spec.head_dim * 1000
    assert c["mlp_decode"] == mlp_block(LayerShape.of(spec), 1, s)


def test_decode_needs_a_causal_model_and_room_in_the_context(profile, tmp_path):
    with pytest.raises(UserError) as exc:
        load_scenario(write(tmp_path, {"models": ["vit-base"], "output_tokens": 8, "strategies": ["single"]}))
    assert str(exc.value).startswith("output_tokens:") and "causal" in str(exc.value)
    with pytest.raises(UserError) as exc:
        load_scenario(write(tmp_path, {"models": ["gpt2-s"], "tokens": 1000, "output_tokens": 100}))
    assert str(exc.value).startswith("output_tokens:") and "1024" in str(exc.value)
    with pytest.raises(UserError) as exc:
        load_scenario(write(tmp_path, {"output_tokens": -1}))
    assert str(exc.value).startswith("output_tokens")


def test_missing_decode_rows_name_the_profile_command(tmp_path):
    table = synthetic_profile([GPT2S], devices=(4,), tokens=[256], decode_cache=())
    costs = ProfileCosts(table, source=str(tmp_path / "cpu.csv"))
    build_graph("tp", GPT2S, costs, 4, 256)
    with pytest.raises(UserError, match=r"astrasim profile --decode --models gpt2-s --strategies tp --devices 4"):
        build_graph("tp", GPT2S, costs, 4, 256, output_tokens=4)


SHIPPED = pytest.mark.skipif(not (ROOT / "profiles" / "cpu.decode.csv").exists(), reason="no shipped decode rows")


@SHIPPED
def test_single_tpot_on_the_shipped_cpu_is_near_its_weight_bandwidth_bound():
    """gpt2-s reads its 12 layers' weights once per token: tpot >= weight bytes / memory bandwidth, and a
    measured CPU decode reaches a fair share of that bound."""
    costs = ProfileCosts.from_file(ROOT / "profiles" / "cpu.csv")
    one = build_topology("ideal", 1, 100.0)
    n = 17
    prefill = simulate(build_graph("single", GPT2S, costs, 1, 512), one).latency_s
    e2e = simulate(build_graph("single", GPT2S, costs, 1, 512, output_tokens=n), one).latency_s
    tpot = (e2e - prefill) / (n - 1)
    s, sh = STRATEGIES["single"], STRATEGIES["single"].knobs()
    step_bytes = sum(c.bytes for c in s.decode_op_costs(GPT2S, 1, 512 + n // 2, sh).values()) * GPT2S.layers
    bound = step_bytes / (load_catalog()["cpu"].mem_bandwidth_gbs * 1e9)
    # this shared VM's decode reached 4 to 9 GB/s of the catalog's 25.6 GB/s across days (2026-12-01: 3-4x
    # the bound; 2026-12-02, when the whole profile ran 1.6x slower: 4.7x): a fair share, not a fixed one
    assert bound <= tpot <= 6 * bound, (tpot, bound)
    assert math.isfinite(tpot)
