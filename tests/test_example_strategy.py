"""docs/examples/ring_sp.py, the "Adding a strategy" example, registered for this test only and run
through everything a shipped strategy goes through: the graph builder, its profile key, a synthetic
profile, a sweep and its plot, and the validation harness's per-device kernel calls."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from astrasim.compute.profiles import ProfileCosts, profile_files
from astrasim.models import model_from_dict
from astrasim.opgraph import Comm, Compute
from astrasim.strategies import build_graph, get, label_of, registry
from astrasim.strategies.registry import STRATEGIES, registered
from astrasim.strategies.synthetic import synthetic_profile

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(name="tiny", layers=2, hidden=32, heads=4, mlp_hidden=64, tokens=16, causal=True)
SPEC = model_from_dict(TINY)


def _example():
    spec = importlib.util.spec_from_file_location("ring_sp_example", ROOT / "docs" / "examples" / "ring_sp.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


EXAMPLE = _example()
RING = EXAMPLE.STRATEGY


class Costs:
    """Every op takes 1 ms; records the profile keys asked."""

    def __init__(self):
        self.keys = set()

    def seconds(self, model, strategy, devices, op, tokens, key=()):
        self.keys.add((strategy, devices, op, key))
        return 0.001


@pytest.fixture
def ring():
    with registered(RING) as s:
        yield s
    assert "ring-sp" not in STRATEGIES and "hops" not in registry.PROFILED_KNOBS


def test_the_example_is_not_shipped():
    assert "ring-sp" not in STRATEGIES


def test_graph_sends_each_shard_to_the_next_hops_devices(ring):
    n, tokens, hops = 4, 16, 2
    costs = Costs()
    g = build_graph("ring-sp", SPEC, costs, n, tokens, {"hops": hops})
    comms = [op for op in g.ops if isinstance(op, Comm)]
    assert len(comms) == SPEC.layers * n
    for c in comms:  # root s to s+1 .. s+hops (mod n); its own T/N x D x 32 bits
        assert c.collective == "broadcast" and c.devices[0] == c.root
        assert set(c.devices[1:]) == {(c.root + k) % n for k in range(1, hops + 1)}
        assert c.bits == tokens // n * SPEC.hidden * 32
    attn = next(op for op in g.ops if isinstance(op, Compute) and op.id == "L1.attn.d0")
    assert set(attn.deps) == {"L0.mlp.d0", "L1.ring_from3", "L1.ring_from2"}  # device 0's window: 3 and 2
    assert costs.keys == {("ring-sp", n, op, (("hops", hops),)) for op in ("attn", "mlp")}
    one = build_graph("ring-sp", SPEC, Costs(), 1, tokens, {"hops": hops})
    assert not [op for op in one.ops if isinstance(op, Comm)]


def test_profile_rows_are_keyed_by_the_strategys_own_knob(ring, tmp_path):
    assert registry.PROFILED_KNOBS == ("groups", "codebook", "hops")
    assert ring.profile_key(ring.knobs(hops=2)) == (("hops", 2),)
    table = synthetic_profile([SPEC], strategies=("single", "ring-sp", "astra"), devices=(4,), groups=(4,))
    assert {"groups", "codebook", "hops"} <= set(table.columns)
    rows = table[table.strategy == "ring-sp"]
    assert sorted(rows.hops.unique()) == [1, 2] and (rows[["groups", "codebook"]] == 0).all().all()
    assert (table.loc[table.strategy == "astra", "hops"] == 0).all()
    costs = ProfileCosts(table)
    t1, t2 = (costs.seconds("tiny", "ring-sp", 4, "attn", 16, ring.profile_key(ring.knobs(hops=h))) for h in (1, 2))
    # hops = 2 attends over 12 keys instead of 8: the rows must not collide
    attn = {h: ring.op_costs(SPEC, 4, 16, ring.knobs(hops=h))["attn"].flops for h in (1, 2)}
    assert t2 > t1 and attn[2] > attn[1]
    with pytest.raises(Exception, match="hops=3"):
        costs.seconds("tiny", "ring-sp", 4, "attn", 16, (("hops", 3),))


def test_shipped_profiles_read_the_new_knob_as_zero(ring):
    from astrasim.profiling import read_profile

    path = profile_files(ROOT / "profiles" / "cpu.csv")[0]
    raw, df = pd.read_csv(path), read_profile(path)
    assert "hops" not in raw.columns and (df["hops"] == 0).all()
    cols = ["groups", "codebook", "median_s"]
    assert (df[cols].to_numpy() == raw[cols].to_numpy()).all()
    costs = ProfileCosts.from_file(ROOT / "profiles" / "cpu.csv")
    astra = get("astra")
    assert costs.seconds("gpt2-s", "astra", 4, "vq_encode", 1024, astra.profile_key(astra.knobs())) > 0


def test_sweep_and_plot_show_the_example_in_its_own_look(ring, tmp_path):
    from astrasim.analysis.plots import plot_latency_vs_bandwidth
    from astrasim.analysis.style import Looks, variant_labels
    from astrasim.scenario import from_dict
    from astrasim.sweep import run_sweep

    profile = tmp_path / "tiny.csv"
    synthetic_profile([SPEC], strategies=("single", "sp", "ring-sp"), devices=(4,)).to_csv(profile, index=False)
    sc = from_dict(
        {
            "name": "ring",
            "models": [TINY],
            "devices": [4],
            "strategies": ["single", "sp", {"name": "ring-sp"}],
            "hardware": {"profile": str(profile)},
            "network": {"topology": "switch", "bandwidth_mbps": [10000, 100000]},
        }
    )
    df = run_sweep(sc, out=tmp_path / "ring.csv", progress=False)
    ring_rows = df[df.strategy == "ring-sp"]
    assert len(ring_rows) == 2 and (ring_rows.latency_s > 0).all() and (ring_rows.comm_bits > 0).all()
    looks = Looks(df, variant_labels(df))
    assert looks["ring-sp"].marker == "p" and looks["ring-sp"].marker != looks["sp"].marker
    path = plot_latency_vs_bandwidth(df, tmp_path / "ring.png")
    assert path.stat().st_size > 0 and label_of(ring_rows.iloc[0]) == "ring-sp"


def test_a_taken_colour_or_marker_is_refused():
    class Copycat(type(RING)):
        name = "copycat"
        color, marker = get("pp").color, "h"

    with pytest.raises(RuntimeError, match="share the color"):
        with registered(Copycat()):
            pass
    assert "copycat" not in STRATEGIES


def test_validation_harness_runs_every_devices_real_kernels(ring):
    torch = pytest.importorskip("torch")
    from astrasim.validation.programs import DeviceRun, kernel_calls_per_layer, kernel_sequence

    n, label = 4, "ring-sp H=2"
    graph = build_graph("ring-sp", SPEC, Costs(), n, SPEC.tokens, {"hops": 2})
    for rank in range(n):
        calls = kernel_calls_per_layer(label, SPEC, n, rank)
        dev = DeviceRun(graph, rank, calls, "direct")  # refuses a graph op without a kernel call
        with torch.inference_mode():  # as DeviceRun.run calls them
            outs = [call() for _, call in kernel_sequence(dev)]
        assert [o.shape for o in outs] == [(1, SPEC.tokens // n, SPEC.hidden)] * (2 * SPEC.layers)


def test_a_profiled_knob_must_be_one_of_its_integer_knobs():
    """Profile rows are keyed by integer columns: a profiled knob the strategy lacks (its rows would
    all collide on 0) or one that is not an integer is refused when the strategy is registered."""
    for knob in ("hop", "decode_kv"):

        class Wrong(type(RING)):
            name, color, marker = "wrong", "#123456", "h"
            profiled_knobs = (knob,)

        if knob == "decode_kv":
            Wrong.Knobs = get("sp").Knobs
        with pytest.raises(RuntimeError, match=f"profiles knob '{knob}'"):
            with registered(Wrong()):
                pass
    assert "wrong" not in STRATEGIES
