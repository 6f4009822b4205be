"""Strategy builders: ops, dependencies and message sizes per strategy; profile costs."""

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrasim.compute.catalog import load_catalog
from astrasim.compute.profiles import PROFILE_COLUMNS, ProfileCosts, interpolate
from astrasim.compute.roofline import Roofline
from astrasim.compute.sources import costs_for
from astrasim.errors import UserError
from astrasim.models import get_model, model_from_dict
from astrasim.opgraph import Comm, Compute
from astrasim.strategies import STRATEGIES, BuildOptions, build_graph, get
from astrasim.strategies.astra import remote_tokens, sent_tokens
from astrasim.strategies.base import split_tokens
from astrasim.strategies.registry import single_device_strategy
from astrasim.strategies.synthetic import synthetic_profile

VIT, GPT2 = get_model("vit-base"), get_model("gpt2-s")


class FixedCosts:
    """Every op of strategy s takes a distinct, recognisable time; records what was asked."""

    def __init__(self):
        self.asked = []

    def seconds(self, model, strategy, devices, op, tokens, key=()):
        self.asked.append((model, strategy, devices, op, tokens, key))
        return 0.001 * (1 + sorted({o for st_ in STRATEGIES.values() for o in st_.ops} | {"cls_pool"}).index(op))


def comms(graph):
    return [op for op in graph.ops if isinstance(op, Comm)]


def computes(graph, device=None, name=None):
    return [
        op
        for op in graph.ops
        if isinstance(op, Compute) and (device is None or op.device == device) and (name is None or op.name == name)
    ]


def test_registry_names():
    assert set(STRATEGIES) == {"single", "tp", "sp", "bp-ag", "bp-sp", "pp", "astra", "ep"}
    with pytest.raises(ValueError, match="unknown strategy"):
        build_graph("no-such-strategy", GPT2, FixedCosts(), 2, 1024)


def test_registry_refuses_a_shared_colour_or_marker():
    from astrasim.strategies.registry import check_distinct

    check_distinct(list(STRATEGIES.values()))  # the shipped strategies are told apart
    tp, pp = STRATEGIES["tp"], STRATEGIES["pp"]
    for attr in ("color", "marker"):
        own = {"name": "clash", "color": "#123456", "marker": "X"}
        clash = type("Clash", (type(pp),), {**own, attr: getattr(tp, attr)})()
        with pytest.raises(RuntimeError, match=f"'tp' and 'clash' share the {attr}"):
            check_distinct([tp, pp, clash])


def test_single_runs_every_layer_on_one_device_with_n1_rows():
    costs = FixedCosts()
    g = build_graph("single", GPT2, costs, 8, 1024)
    assert g.n_devices == 1 and not comms(g)
    assert [op.name for op in g.ops] == ["attn", "mlp"] * GPT2.layers
    assert {a[2] for a in costs.asked} == {1}


@pytest.mark.parametrize("bits", [32, 16, 8])
def test_tp_two_all_reduces_of_t_d_b_per_layer(bits):
    g = build_graph("tp", GPT2, FixedCosts(), 4, 1024, options=BuildOptions(element_bits=bits))
    cs = comms(g)
    assert len(cs) == 2 * GPT2.layers
    assert {c.collective for c in cs} == {"all_reduce"}
    assert {c.bits for c in cs} == {1024 * 768 * bits}
    assert all(c.devices == (0, 1, 2, 3) for c in cs)
    # mlp of a layer waits for the all-reduce after attention
    mlp0 = computes(g, 0, "mlp")[0]
    assert mlp0.deps == ("L0.ar_attn",)


def test_sp_one_all_gather_of_the_block_input_per_layer():
    g = build_graph("sp", VIT, FixedCosts(), 4, 197)
    cs = comms(g)
    assert len(cs) == VIT.layers and {c.collective for c in cs} == {"all_gather"}
    assert cs[0].bits == pytest.approx(197 / 4 * 768 * 32)
    assert cs[0].deps == ()  # each device starts with its own tokens' embeddings
    attn1 = computes(g, 2, "attn")[1]
    assert attn1.deps == ("L1.ag_input",)


@pytest.mark.parametrize("nb", [1, 2, 3, 4, 6, 12])
def test_bp_ag_blocks(nb):
    n = 4
    g = build_graph("bp-ag", GPT2, FixedCosts(), n, 1024, {"nb": nb})
    cs = comms(g)
    assert len(cs) == nb and {c.collective for c in cs} == {"all_gather"}
    assert {c.bits for c in cs} == {1024 * 768 / n * 32}
    for d in range(n):
        assert len(computes(g, d, "decoupled_layer")) == GPT2.layers - nb
        assert len(computes(g, d, "full_layer")) == nb  # redundant on every device
    # layer indices: the full layer closes each block
    assert [op.layer for op in computes(g, 0, "full_layer")] == [(b + 1) * GPT2.layers // nb - 1 for b in range(nb)]


def test_bp_rejects_nb_not_dividing_layers():
    with pytest.raises(ValueError, match="divisor"):
        build_graph("bp-ag", GPT2, FixedCosts(), 4, 1024, {"nb": 5})


@pytest.mark.parametrize("nb", [1, 4])
def test_bp_sp_all_gather_then_sequence_parallel_full_layer_then_reshard(nb):
    n = 4
    g = build_graph("bp-sp", GPT2, FixedCosts(), n, 1024, {"nb": nb})
    cs = comms(g)
    ags = [c for c in cs if c.collective == "all_gather"]
    a2a = [c for c in cs if c.collective == "all_to_all"]
    assert len(ags) == nb and len(a2a) == nb - 1
    assert {c.bits for c in ags} == {1024 * 768 / n * 32}
    assert {c.bits for c in a2a} <= {1024 / n * 768 / n * 32}
    assert len(computes(g, 1, "attn")) == nb and len(computes(g, 1, "decoupled_layer")) == GPT2.layers - nb


def test_astra_all_gather_of_codes_and_overlap_dependencies():
    opts = dict(knobs={"groups": 16, "codebook": 1024, "causal_skip": False})
    g = build_graph("astra", GPT2, FixedCosts(), 4, 1024, **opts)
    cs = comms(g)
    assert len(cs) == GPT2.layers and {c.collective for c in cs} == {"all_gather"}
    assert cs[0].bits == pytest.approx(1024 / 4 * 16 * 10)
    la = computes(g, 1, "local_attn")[0]
    rk = computes(g, 1, "remote_kv")[0]
    assert "L0.codes" not in la.deps  # local attention runs while the codes are in flight
    assert rk.deps == ("L0.codes",)
    assert cs[0].deps == tuple(f"L0.vq_encode.d{d}" for d in range(4))
    order = [op.name for op in g.ops if isinstance(op, Compute) and op.device == 1 and op.layer == 0]
    assert order == ["vq_encode", "local_attn", "remote_kv", "remote_attn", "merge", "mlp"]


def test_astra_bits_per_layer_scale_with_g_log2k():
    for g_, k in [(1, 1024), (32, 1024), (16, 256)]:
        g = build_graph("astra", GPT2, FixedCosts(), 8, 1024, {"groups": g_, "codebook": k, "causal_skip": False})
        total = sum(c.bits * len(c.devices) for c in comms(g))
        assert total == pytest.approx(GPT2.layers * 1024 * g_ * math.log2(k))


def test_astra_causal_skip_sends_only_to_later_devices():
    n = 4
    g = build_graph("astra", GPT2, FixedCosts(), n, 1023, {"groups": 32})
    layer0 = [c for c in comms(g) if c.layer == 0]
    own = split_tokens(1023, n)
    assert [(c.collective, c.root, c.devices) for c in layer0] == [
        ("broadcast", s, tuple(range(s, n))) for s in range(n - 1)
    ]
    assert [c.bits for c in layer0] == [own[s] * 320 for s in range(n - 1)]
    # device 0 needs nobody's codes; device 3 needs codes from 0, 1, 2
    assert not computes(g, 0, "remote_kv")
    rk3 = computes(g, 3, "remote_kv")[0]
    assert rk3.deps == ("L0.codes_from0", "L0.codes_from1", "L0.codes_from2")
    # remote work scales with the remote tokens used, relative to the profiled device 0 (T - T_0)
    assert rk3.seconds == pytest.approx(FixedCosts().seconds("", "", 0, "remote_kv", 0) * sum(own[:3]) / sum(own[1:]))


def test_astra_causal_skip_is_ignored_for_non_causal_models():
    assert remote_tokens(VIT, 4, 197, causal_skip=True) == remote_tokens(VIT, 4, 197, causal_skip=False)


def test_astra_vit_cls_copies_are_not_sent_and_outputs_are_gathered():
    n = 4
    g = build_graph("astra", VIT, FixedCosts(), n, 197, {"groups": 1})
    codes = [c for c in comms(g) if c.name == "codes"]
    assert sent_tokens(VIT, n, 197) == split_tokens(196, n)
    assert codes[0].bits == pytest.approx(196 / n * 10)
    final = comms(g)[-1]
    assert (final.collective, final.root, final.bits) == ("gather", 0, 768 * 32)
    assert g.ops[-1].name == "cls_pool" and g.ops[-1].device == 0 and g.ops[-1].deps[0] == final.id


def test_strategy_labels():
    astra = get("astra")
    assert astra.label(astra.knobs(groups=16)) == "astra G=16"
    assert astra.label(astra.knobs(groups=16, codebook=256)) == "astra G=16 K=256"
    assert get("bp-sp").label(get("bp-sp").knobs(nb=4)) == "bp-sp Nb=4"
    assert get("tp").label() == "tp"


def knobs_for(strategy, **values):
    """The strategy's own knobs among `values` (the others ignored)."""
    s = get(strategy)
    return s.knobs(**{k: v for k, v in values.items() if k in s.Knobs.model_fields})


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    n=st.integers(1, 8),
    layers=st.sampled_from([1, 2, 4]),
    tokens=st.integers(8, 64),
    causal=st.booleans(),
    cls=st.booleans(),
    skip=st.booleans(),
)
def test_every_graph_is_valid_and_uses_only_profile_op_names(strategy, n, layers, tokens, causal, cls, skip):
    spec = model_from_dict(
        {
            "name": "tiny",
            "layers": layers,
            "hidden": 64,
            "heads": 4,
            "mlp_hidden": 128,
            "tokens": tokens,
            "causal": causal,
            "cls_token": cls,
        }
    )
    if not STRATEGIES[strategy].applies(spec):  # ep: the same shape with 4 experts, 2 per token
        spec = model_from_dict({**spec.to_dict(), "name": "tiny-moe", "experts": 4, "experts_per_token": 2})
    costs = FixedCosts()
    try:
        g = build_graph(strategy, spec, costs, n, tokens, knobs_for(strategy, groups=4, nb=1, causal_skip=skip))
    except UserError as exc:  # more devices than KV heads (4) or than tokens to split: refused, not built
        assert (
            (n > 4 and "KV heads" in str(exc))
            or (n > tokens - cls and "cannot split" in str(exc))
            or (n > layers and "pipeline stages" in str(exc))
            or (n > 4 and "experts" in str(exc))
        )
        return
    g.validate()
    names = {op.name for op in g.ops if isinstance(op, Compute)}
    own = STRATEGIES[strategy].ops or single_device_strategy().ops  # no ops of its own: the single device's
    allowed = set(own) | ({"cls_pool"} if strategy == "astra" else set())
    assert names <= allowed
    assert {a[3] for a in costs.asked} <= allowed
    if strategy != "single":
        assert {op.device for op in g.ops if isinstance(op, Compute)} == set(range(n)) or strategy == "astra"


# ------------------------------------------------------------------------------------ costs


def _table(rows):
    return pd.DataFrame([{**dict.fromkeys(PROFILE_COLUMNS, 0), **r} for r in rows], columns=list(PROFILE_COLUMNS))


def _costs(**kw):
    rows = [
        dict(
            model="m", strategy="sp", devices=2, groups=0, codebook=0, tokens=t, op="attn", median_s=s, flops=f, bytes=b
        )
        for t, s, f, b in [(100, 1.0, 100.0, 10.0), (300, 5.0, 300.0, 30.0)]
    ]
    return ProfileCosts(_table(rows), source="profiles/x.csv", **kw)


def test_exact_interpolated_and_extrapolated_tokens():
    c = _costs()
    assert c.seconds("m", "sp", 2, "attn", 100) == 1.0
    assert c.seconds("m", "sp", 2, "attn", 200) == pytest.approx(3.0)  # linear between points
    assert c.seconds("m", "sp", 2, "attn", 600) == pytest.approx(10.0)  # proportional beyond
    assert c.seconds("m", "sp", 2, "attn", 50) == pytest.approx(0.5)
    assert interpolate(([10], [2.0], [4.0], [8.0]), 5) == (1.0, 2.0, 4.0)


def test_missing_profile_key_names_the_key_and_the_command():
    with pytest.raises(UserError) as exc:
        _costs().seconds("m", "astra", 8, "vq_encode", 1024, (("groups", 16), ("codebook", 1024)))
    msg = str(exc.value)
    assert "hardware.profile" in msg and "model=m" in msg and "devices=8" in msg and "groups=16" in msg
    # m is neither built in nor read from a file: the command asks for the model's file (YAML or config.json)
    assert (
        "astrasim profile --models <model file of m> --strategies astra --devices 8 --tokens 1024 --knob groups=16 "
        "--knob codebook=1024 --out profiles/x.m-astra-n8-groups16-codebook1024-t1024.csv"
    ) in msg


def test_extension_files_fill_missing_keys(tmp_path):
    """The command of a missing key writes profiles/<id>.<tag>.csv, which is read with the profile."""
    base = tmp_path / "cpu.csv"
    row = dict(
        model="m",
        strategy="sp",
        devices=2,
        groups=0,
        codebook=0,
        tokens=8,
        op="attn",
        median_s=1.0,
        flops=1.0,
        bytes=1.0,
    )
    _table([row]).to_csv(base, index=False)
    with pytest.raises(UserError, match="cpu.m-sp-n4-t8.csv"):
        costs_for(base).seconds("m", "sp", 4, "attn", 8)
    _table([{**row, "devices": 4, "median_s": 2.0}]).to_csv(tmp_path / "cpu.m-sp-n4-t8.csv", index=False)
    c = costs_for(base)
    assert (c.seconds("m", "sp", 2, "attn", 8), c.seconds("m", "sp", 4, "attn", 8)) == (1.0, 2.0)


def test_roofline_scales_compute_bound_by_peak_and_memory_bound_by_bandwidth():
    cat = load_catalog()
    cpu, nano = cat["cpu"], cat["jetson-orin-nano"]
    r = Roofline(cpu.rate(), nano.rate())
    assert r.factor(1e12, 1.0) == pytest.approx(cpu.peak_flops / nano.peak_flops)
    assert r.factor(1.0, 1e12) == pytest.approx(cpu.mem_bandwidth_gbs / nano.mem_bandwidth_gbs)
    assert Roofline(cpu.rate(), cpu.rate()).factor(123.0, 456.0) == pytest.approx(1.0)
    scaled = _costs(roofline=r)
    assert scaled.seconds("m", "sp", 2, "attn", 100) == pytest.approx(r.factor(100.0, 10.0))


def test_catalog_has_the_required_devices_with_sources():
    cat = load_catalog()
    for name in (
        "cpu",
        "raspberry-pi-4b",
        "raspberry-pi-5",
        "jetson-orin-nano",
        "jetson-orin-nano-super",
        "jetson-agx-orin",
        "gtx-1660-ti-laptop",
        "intel-n150-minipc",
    ):
        d = cat[name]
        assert d.peak_flops > 0 and d.mem_bandwidth_gbs > 0 and d.active_power_w > 0 and d.price_usd > 0 and d.sources
        assert (d.mem_read_gbs <= d.mem_bandwidth_gbs or d.profile) and "fp32" in d.matmul_gflops
        assert d.profile == ("cpu" if name == "cpu" else None)


def test_synthetic_profile_is_a_valid_profile_for_every_builder():
    table = synthetic_profile([VIT, GPT2], devices=(2, 4))
    costs = ProfileCosts(table)
    for strategy in STRATEGIES:
        for spec in (s for s in (VIT, GPT2) if STRATEGIES[strategy].applies(s)):
            g = build_graph(strategy, spec, costs, 4, spec.tokens, knobs_for(strategy, groups=16, nb=4))
            assert all(op.seconds > 0 for op in g.ops if isinstance(op, Compute))
