"""Profiler: table shape, op names, analytic costs, timing, validation, CLI and atomic writes."""

import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from astrasim.cli import app
from astrasim.errors import UserError
from astrasim.models import get_model, model_from_dict
from astrasim.profiling import COLUMNS, plan_configs, profile_ops, read_profile, write_profile
from astrasim.profiling.profiler import unstable_rows, unstable_warning
from astrasim.profiling.timing import Timing, time_call, time_sequence, time_until_stable
from astrasim.strategies import STRATEGIES

TINY = model_from_dict(dict(name="tiny", layers=2, hidden=32, heads=4, mlp_hidden=64, tokens=19, causal=True))
TINY_VIT = model_from_dict(
    dict(name="tiny-vit", layers=2, hidden=32, heads=4, mlp_hidden=64, tokens=13, cls_token=True)
)


@pytest.fixture(scope="module")
def table():
    return profile_ops(TINY, devices=[1, 2, 4], groups=[1, 8], repeats=2, warmup=0, progress=False)


def test_table_has_the_interface_columns_and_every_op(table):
    assert list(table.columns) == COLUMNS
    for (strategy, _n, g), rows in table.groupby(["strategy", "devices", "groups"]):
        assert tuple(rows["op"]) == STRATEGIES[strategy].ops
        assert (g > 0) == (strategy == "astra") and (rows["codebook"] == (1024 if g else 0)).all()
    assert set(table.loc[table.strategy == "single", "devices"]) == {1}
    assert len(table.loc[table.strategy == "astra"]) == 3 * 2 * 6
    assert (table.p10_s <= table.median_s).all() and (table.median_s <= table.p90_s).all()
    assert (table.median_s > 0).all() and (table.repeats == 2).all() and (table.tokens == 19).all()
    assert table.dtype.eq("float32").all() and table.hardware.str.len().gt(0).all()


def test_cls_model_has_a_cls_pool_row_and_uneven_tokens_work():
    t = profile_ops(TINY_VIT, strategies=["astra", "sp"], devices=[4], groups=[4], repeats=1, warmup=0, progress=False)
    astra = t[t.strategy == "astra"]
    assert list(astra.op) == [*STRATEGIES["astra"].ops, "cls_pool"]
    assert astra.set_index("op").loc["cls_pool", "flops"] == 4 * 32


def test_analytic_costs():
    spec = get_model("gpt2-s")
    single = STRATEGIES["single"].op_costs(spec, 1, 1024, STRATEGIES["single"].knobs())
    tp2 = STRATEGIES["tp"].op_costs(spec, 2, 1024, STRATEGIES["tp"].knobs())
    assert tp2["mlp"].flops == pytest.approx(single["mlp"].flops / 2, rel=0.01)
    vq = STRATEGIES["astra"].op_costs(spec, 4, 1024, STRATEGIES["astra"].knobs(groups=32))["vq_encode"]
    assert vq.flops == 2 * 256 * 768 * 1024 + 2 * 256 * 32 * 1024
    # remote ops are linear in the remote token count: N=4 has 768 remote tokens, N=2 has 512
    r4 = STRATEGIES["astra"].op_costs(spec, 4, 1024, STRATEGIES["astra"].knobs(groups=1))["remote_kv"].flops
    r2 = STRATEGIES["astra"].op_costs(spec, 2, 1024, STRATEGIES["astra"].knobs(groups=1))["remote_kv"].flops
    assert r4 / r2 == pytest.approx(768 / 512)
    assert STRATEGIES["astra"].op_costs(spec, 1, 1024, STRATEGIES["astra"].knobs(groups=1))["remote_attn"].flops == 0
    # a whole layer is ~24 T D^2 + 4 T^2 D / 2 (causal) flops
    total = single["attn"].flops + single["mlp"].flops
    assert total == pytest.approx(24 * 1024 * 768**2 + 2 * 1024**2 * 768, rel=0.02)
    half = STRATEGIES["single"].op_costs(spec, 1, 1024, STRATEGIES["single"].knobs(), dtype="bfloat16")
    assert half["mlp"].bytes == single["mlp"].bytes / 2


@pytest.mark.parametrize("model", ["gpt2-s", "llama3-8b"])
def test_decoupled_layer_costs_follow_detransformer(model):
    """DeTransformer's decoupled layer: ~1/N^2 of the attention projections, 1/N of the MLP (full
    width on a D/N slice); the sliced option: 1/N of the MLP columns on top."""
    spec = get_model(model)
    bp, single = STRATEGIES["bp-ag"], STRATEGIES["single"]
    one = single.op_costs(spec, 1, 1024, single.knobs())
    for n in (2, 4, 8):
        c = bp.op_costs(spec, n, 1024, bp.knobs())
        t, d, f = 1024, spec.hidden // n, spec.mlp_hidden
        mats = (3 if spec.activation == "swiglu" else 2) * 2 * t * d * f
        assert c["decoupled_layer"].flops > mats and c["decoupled_layer"].flops > one["mlp"].flops / n
        assert c["decoupled_layer"].flops < (one["attn"].flops + one["mlp"].flops) / n
        if spec.heads % n:  # gpt2-s over 8: the sliced shape's uneven head split makes device 0 wider
            continue
        # the sliced option differs in the MLP (1/N of its columns) and in the softmax (heads/N heads)
        diff = c["decoupled_layer"].flops - c["decoupled_layer_sliced"].flops
        act = (6 if spec.activation == "swiglu" else 8 + 1) * t * f  # activation (+ fc1 bias for GPT2)
        softmax = 5 * t * (t + 1) / 2 * spec.heads
        assert diff == pytest.approx((mats + act + softmax) * (1 - 1 / n), rel=1e-6)
        assert bp.knobs(decoupled_mlp="sliced").decoupled_mlp == "sliced"
    assert bp.label(bp.knobs(decoupled_mlp="sliced")) == "bp-ag Nb=1 MLP=sliced"
    assert bp.label(bp.knobs()) == "bp-ag Nb=1"


def test_time_call_measures_the_call():
    calls = []
    timing = time_call(lambda: (calls.append(1), time.sleep(0.004)), repeats=3, warmup=2)
    assert 0.004 <= timing.median_s < 0.05 and timing.repeats == 3
    assert len(calls) == 2 + 1 + 3  # warm-up, calibration, one call per sample (each >= 2 ms)


def test_time_sequence_times_each_op_once_per_round_in_program_order():
    log = []
    calls = {"a": lambda: (log.append("a"), time.sleep(0.002)), "b": lambda: (log.append("b"), time.sleep(0.006))}
    timings = time_sequence(calls, repeats=4, warmup=1, evict=lambda: log.append("evict"))
    assert log == ["evict", "a", "b"] * 5  # warm-up round + 4 timed rounds, eviction first
    assert 0.002 <= timings["a"].median_s < timings["b"].median_s < 0.05
    assert timings["b"].median_s >= 0.006 and timings["a"].repeats == 4
    with pytest.raises(ValueError):
        time_sequence(calls, repeats=0)


def test_noise_figures_of_a_timing():
    t = Timing.of([1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0])  # the load doubled half-way through
    assert t.drift == pytest.approx(1.0 / 1.5) and t.noise == max(t.spread, t.drift)
    assert Timing.of([1.0, 1.0, 1.0]).spread == 0 and Timing.of([1.0, 1.0, 1.0]).drift == 0
    assert Timing.of([1.0, 3.0, 1.0]).drift == 0  # too few samples for halves


class ScriptedClock:
    """perf_counter stand-in: each call of the timed op advances it by the next scripted duration."""

    def __init__(self, durations):
        self.now, self.durations = 0.0, iter(durations)

    def __call__(self):
        return self.now

    def op(self):
        self.now += next(self.durations)


def test_noisy_ops_are_remeasured_up_to_the_bound(monkeypatch):
    import astrasim.profiling.timing as timing

    # first attempt (4 rounds) alternates 1 and 15 ms: noisy; the second is steady at 2 ms
    clock = ScriptedClock([0.001, 0.015] * 2 + [0.002] * 4)
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    timings, attempts = time_until_stable({"op": clock.op}, repeats=4, warmup=0, max_noise=0.5, remeasure=3)
    assert attempts == 2 and timings["op"].noise == 0 and timings["op"].median_s == pytest.approx(0.002)
    # always noisy: the bound is reached (1 + 2 attempts) and the caller flags the op
    clock = ScriptedClock([0.002, 0.02] * 6)
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    timings, attempts = time_until_stable({"op": clock.op}, repeats=4, warmup=0, max_noise=0.5, remeasure=2)
    assert attempts == 3 and timings["op"].noise > 0.5
    clock = ScriptedClock([0.002] * 3)
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    assert time_until_stable({"op": clock.op}, repeats=3, warmup=0, max_noise=0.5)[1] == 1


def test_cpu_clock_counts_the_process_cpu_per_thread_not_waiting():
    def spin():  # ~5 ms of CPU work on one thread
        t0 = time.process_time()
        while time.process_time() - t0 < 0.005:
            pass

    calls = {"sleep": lambda: time.sleep(0.005), "spin": spin}
    wall = time_sequence(calls, repeats=3, warmup=0, clock="wall")
    cpu = time_sequence(calls, repeats=3, warmup=0, clock="cpu", threads=2)
    assert wall["sleep"].median_s >= 0.005 and cpu["sleep"].median_s < 0.002  # sleeping is not computing
    assert cpu["spin"].median_s == pytest.approx(0.0025, rel=0.5)  # 5 ms of CPU over 2 threads
    assert wall["sleep"].cpu_ratio < 0.5
    with pytest.raises(ValueError, match="clock"):
        time_sequence(calls, repeats=1, clock="tsc")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(devices=[32]), "devices"),  # more devices than tokens / heads
        (dict(knobs={"groups": [5]}), "groups"),  # 5 does not divide 32
        (dict(knobs={"codebook": [1]}), "codebook"),  # a knob's own bound (K >= 2)
        (dict(knobs={"hops": [1]}), "knob"),  # no strategy profiles a knob 'hops'
        (dict(strategies=["no-such-strategy"]), "strategies"),
        (dict(tokens=[5000]), "tokens"),
    ],
)
def test_bad_configurations_fail_before_timing(kwargs, field):
    args = dict(strategies=["sp", "astra", "tp"], devices=[2], knobs={"groups": [1]}, tokens=[19]) | kwargs
    with pytest.raises(UserError, match=field):
        plan_configs(TINY, **args)


def test_read_profile_checks_file_and_columns(tmp_path, table):
    with pytest.raises(UserError, match="not found"):
        read_profile(tmp_path / "none.csv")
    path = tmp_path / "p.csv"
    write_profile(table, path)
    back = read_profile(path)
    assert list(back.columns) == COLUMNS and len(back) == len(table)
    # a profile written before the noise columns existed stays readable, with no unstable row
    table.drop(columns=["spread", "drift", "cpu_share", "unstable"]).to_csv(path, index=False)
    old = read_profile(path)
    assert len(old) == len(table) and unstable_rows(old).empty
    table.drop(columns=["flops"]).to_csv(path, index=False)
    with pytest.raises(UserError, match="flops"):
        read_profile(path)


def test_cli_writes_the_profile(tmp_path):
    model = tmp_path / "tiny.yaml"
    model.write_text("name: tiny\nlayers: 1\nhidden: 32\nheads: 4\nmlp_hidden: 64\ntokens: 16\ncausal: true\n")
    out = tmp_path / "prof" / "cpu.csv"
    res = CliRunner().invoke(
        app,
        [
            "profile",
            "--models",
            str(model),
            "--devices",
            "1,2",
            "--groups",
            "1,4",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    # every strategy with ops of its own that applies to a dense model (ep needs experts)
    assert set(df.strategy) == {n for n, s in STRATEGIES.items() if s.ops and n != "ep"} and (df.threads == 1).all()
    bad = CliRunner().invoke(
        app, ["profile", "--models", str(model), "--devices", "1", "--dtype", "int8", "--out", str(out)]
    )
    assert bad.exit_code == 2 and "dtype" in bad.output
    # the generic form of --groups: the same configurations, the same key columns
    again = tmp_path / "prof" / "knob.csv"
    res = CliRunner().invoke(
        app,
        [
            "profile",
            "--models",
            str(model),
            "--devices",
            "1,2",
            "--knob",
            "groups=1,4",
            "--strategies",
            "astra",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--out",
            str(again),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    knob = pd.read_csv(again)
    key = ["strategy", "devices", "groups", "codebook", "op"]
    assert knob[key].values.tolist() == df.loc[df.strategy == "astra", key].values.tolist()
    for args, field in (
        (["--knob", "hops=1"], "knob"),
        (["--knob", "groups"], "knob"),
        (["--groups", "4", "--knob", "groups=4"], "groups"),
        (["--knob", "codebook=1"], "codebook"),
    ):
        bad = CliRunner().invoke(
            app,
            [
                "profile",
                "--models",
                str(model),
                "--devices",
                "2",
                "--strategies",
                "astra",
                *args,
                "--out",
                str(tmp_path / "never.csv"),
            ],
        )
        assert bad.exit_code == 2 and f"error: {field}" in bad.output, (args, bad.output)
    assert not (tmp_path / "never.csv").exists()


def test_rows_that_stay_unstable_are_flagged_and_exit_3(tmp_path):
    model = tmp_path / "tiny.yaml"
    model.write_text("name: tiny\nlayers: 1\nhidden: 32\nheads: 4\nmlp_hidden: 64\ntokens: 16\ncausal: true\n")
    out = tmp_path / "cpu.csv"
    # a threshold no real measurement meets: every row stays unstable after one re-measurement
    res = CliRunner().invoke(
        app,
        [
            "profile",
            "--models",
            str(model),
            "--strategies",
            "single",
            "--repeats",
            "3",
            "--warmup",
            "0",
            "--max-spread",
            "1e-12",
            "--remeasure",
            "1",
            "--threads",
            "1",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 3, res.output
    df = read_profile(out)
    assert df["unstable"].all() and (df["spread"] > 0).all() and len(unstable_rows(df)) == 2
    assert ((df["cpu_share"] > 0) & (df["cpu_share"] <= 1.5)).all() and "median CPU share" in res.output
    assert (df["clock"] == "wall").all()
    assert "warning: unstable profile row tiny single N=1 T=16 op=attn" in res.output
    assert "2 of 2 rows stayed unstable" in res.output
    assert unstable_warning(df.iloc[1]).startswith("warning: unstable profile row tiny single N=1 T=16 op=mlp")
    ok = CliRunner().invoke(
        app,
        [
            "profile",
            "--models",
            str(model),
            "--strategies",
            "single",
            "--repeats",
            "3",
            "--warmup",
            "0",
            "--max-spread",
            "1e9",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert ok.exit_code == 0 and not read_profile(out)["unstable"].any()


def test_interrupt_leaves_no_half_written_file(tmp_path, monkeypatch):
    out = tmp_path / "cpu.csv"
    out.write_text("old\n")
    model = tmp_path / "tiny.yaml"
    model.write_text("name: tiny\nlayers: 1\nhidden: 32\nheads: 4\nmlp_hidden: 64\ntokens: 16\n")

    def half_write(self, path, *args, **kwargs):
        with open(path, "w") as fh:
            fh.write("model,strategy\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_write)
    res = CliRunner().invoke(
        app,
        [
            "profile",
            "--models",
            str(model),
            "--strategies",
            "single",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 130
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cpu.csv", "tiny.yaml"]  # no temporary left


def test_llama_like_model_profiles_every_strategy():
    spec = model_from_dict(
        dict(
            name="tiny-llama",
            family="llama",
            layers=2,
            hidden=64,
            heads=8,
            kv_heads=4,
            mlp_hidden=96,
            activation="swiglu",
            norm="rmsnorm",
            tokens=21,
            causal=True,
        )
    )
    df = profile_ops(spec, devices=[1, 2, 4], groups=[16], repeats=1, warmup=0, progress=False)
    assert (
        set(df.strategy) == {n for n, s in STRATEGIES.items() if s.ops and s.applies(spec)} and (df.median_s > 0).all()
    )
    with pytest.raises(UserError, match="KV heads"):
        plan_configs(spec, ["tp"], [8], {}, [21])


def test_calibration_measures_positive_rates_and_the_cli_prints_them():
    from astrasim.profiling.calibrate import calibrate

    cal = calibrate(size=128, mem_mb=8, repeats=2)
    assert cal.matmul_flops > 0 and cal.matmul_cpu_flops > 0 and cal.mem_bandwidth_gbs > 0
    assert cal.matmul_flops >= cal.matmul_median_flops
    assert "GFLOP/s best" in cal.lines()[0] and "GB/s best" in cal.lines()[1]


def test_derived_rows_scale_the_source_op_by_the_flop_ratio_and_say_so(table):
    from astrasim.profiling.derive import scaled_rows

    out = scaled_rows(table, "decoupled_layer_sliced", "decoupled_layer", spec_of=lambda name: TINY)
    src = table[table.op == "decoupled_layer_sliced"].reset_index(drop=True)
    assert (
        len(out) == len(src)
        and (out.op == "decoupled_layer").all()
        and (out.clock == "scaled:decoupled_layer_sliced").all()
    )
    measured = table[table.op == "decoupled_layer"].reset_index(drop=True)
    assert list(out.flops) == list(measured.flops)  # the op's own analytic counts
    assert list(out.median_s) == pytest.approx(list(src.median_s * out.flops / src.flops))
