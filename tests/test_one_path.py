"""One path from a point to the engine (astrasim.pointrun.EngineInputs.run) and one definition of a
point (astrasim.scenario.grid.IDENTITY): every hardware option reaches the prefill, the decode
steps and request streams; no two points that differ in an input share a row key or a `best` row."""

from __future__ import annotations

import pytest

from astrasim.pointrun import simulate_point
from astrasim.results import IDENTITY_COLUMNS
from astrasim.scenario import from_dict, iter_points
from astrasim.strategies import STRATEGIES

# each hardware option in turn, and whether it changes a one-device point too
OPTIONS = [
    ({"op_overhead_s": 0.05}, True),
    ({"message_cpu_s": 0.01}, False),
    ({"hosts": 1}, False),
    ({"speed_jitter": 0.3}, True),
    ({"speeds": [1.0, 0.5]}, False),
    ({"speed": [0.5]}, True),
]


def _model(strategy: str):
    """gpt2-s, or its twin with 4 experts (2 per token) for a strategy of MoE models only (ep)."""
    from astrasim.models import get_model

    gpt2 = get_model("gpt2-s")
    if STRATEGIES[strategy].applies(gpt2):
        return "gpt2-s"
    return {**gpt2.to_dict(), "name": "gpt2-s-moe", "experts": 4, "experts_per_token": 2, "expert_mlp_hidden": 3072}


def _row(strategy: str, hardware: dict, workload: dict | None = None) -> dict:
    sc = from_dict(
        {
            "name": "t",
            "models": [_model(strategy)],
            "tokens": [256],
            "output_tokens": [0 if workload else 3],
            "devices": [2],
            "strategies": [strategy],
            # the MoE twin has no profile rows: the calibrated model of the same (cpu) device times it
            "hardware": {
                "profile": "cpu",
                **({} if _model(strategy) == "gpt2-s" else {"compute": "calibrated"}),
                **hardware,
            },
            "network": {"topology": "wifi", "bandwidth_mbps": [100]},
            **({"workload": workload} if workload else {}),
        }
    )
    return simulate_point(next(iter_points(sc)))


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_hardware_option_reaches_prefill_decode_and_streams(strategy):
    """gpt2-s, N = 2, 256 + 3 tokens, Wi-Fi 100 Mbps: with each hardware.* option set, ttft > 0,
    tpot > 0, e2e >= ttft, and ttft, e2e and a stream's latencies all move with the option (the
    decode steps and streams once ran without it: op_overhead_s 0.05 gave tpot -0.53 s on sp)."""
    stream = {"arrival": "periodic", "rate_per_s": 0.2, "requests": 3}
    base, base_stream = _row(strategy, {}), _row(strategy, {}, stream)
    for option, moves_single in OPTIONS:
        row = _row(strategy, option)
        assert row["ttft_s"] > 0 and row["tpot_s"] > 0 and row["e2e_s"] >= row["ttft_s"], (option, row)
        assert row["ttft_s"] > row["latency_s"]  # the prefill, then the first token's LM head
        st = _row(strategy, option, stream)
        if strategy == "single" and not moves_single:
            continue
        if strategy == "pp" and "hosts" in option:  # one stage computes at a time: sharing a core costs nothing
            continue
        assert row["ttft_s"] != base["ttft_s"] and row["e2e_s"] != base["e2e_s"], option
        assert st["latency_p50_s"] != base_stream["latency_p50_s"], option
        if "speed_jitter" in option:
            continue
        # the others only slow a point down: its decode steps (some strategies decode on one device,
        # which neither shared cores nor message CPU slow) and its stream too
        assert row["tpot_s"] >= base["tpot_s"] and st["latency_s"] > base_stream["latency_s"], option
        if moves_single:  # every op slower: every decode step too
            assert row["tpot_s"] > base["tpot_s"], option


def test_a_stream_of_one_request_is_the_point_itself_with_every_option():
    """A one-request stream runs the same engine inputs as the point (the clock device costs nothing:
    no dispatch cost, no jitter, no shared core)."""
    hw = {"op_overhead_s": 0.01, "message_cpu_s": 0.002, "hosts": 1, "cores_per_host": 1, "speed_jitter": 0.2}
    for strategy in ("sp", "astra"):
        one = _row(strategy, hw, {"arrival": "periodic", "rate_per_s": 1.0, "requests": 1})
        assert one["latency_s"] == pytest.approx(_row(strategy, hw)["latency_s"], rel=1e-12)


# ------------------------------------------------------------------- one definition of a point
BASE = {
    "name": "t",
    "models": ["gpt2-s"],
    "tokens": [256],
    "devices": [4],
    "strategies": ["single", "sp"],
    "hardware": {"profile": "cpu"},
    "network": {"topology": "switch", "bandwidth_mbps": [500]},
}
# every scenario input a point has (top level, hardware.*, network.*, memory.*, workload) set to
# another value than BASE's: each must give other row keys
CHANGES = [
    ("tokens", [512]),
    ("element_bits", [16]),
    ("weight_bits", [16]),
    ("causal_skip", False),
    ("algorithm", "ring"),
    ("output_tokens", [2]),
    ("hardware.speed", [2.0]),
    ("hardware.speeds", [1, 1, 1, 0.5]),
    ("hardware.hosts", 2),
    ("hardware.cores_per_host", 2),
    ("hardware.op_overhead_s", 0.001),
    ("hardware.message_cpu_s", 0.001),
    ("hardware.speed_jitter", 0.1),
    ("hardware.partition", "even"),
    ("hardware.device", ["raspberry-pi-5"]),
    ("memory.headroom_gb", 2.0),
    ("network.topology", ["wifi"]),
    ("network.bandwidth_mbps", [50]),
    ("network.latency_s", [0.001]),
    ("network.efficiency", [0.5]),
    ("network.loss_rate", [0.1]),
    ("network.broadcast", True),
    ("workload", {"arrival": "periodic", "rate_per_s": 1.0, "requests": 4}),
]


def _keys(changes: dict) -> set:
    from astrasim.scenario import point_key

    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for path, value in changes.items():
        head, _, tail = path.partition(".")
        if tail:
            data.setdefault(head, {})[tail] = value
        else:
            data[head] = value
    return {point_key(p) for p in iter_points(from_dict(data))}


@pytest.mark.parametrize("path,value", CHANGES, ids=[c[0] for c in CHANGES])
def test_every_input_is_part_of_a_points_identity(path, value):
    """A point's result columns name every input that changes its result (two runs that differ in
    one never give rows with the same key: resume, `best` and the plots tell them apart)."""
    if path == "hardware.hosts":  # cores_per_host and hosts go together
        value = 2
    # the alias of astra's knob causal_skip changes the points of the strategies that have the knob
    base = {"strategies": ["astra"]} if path == "causal_skip" else {}
    assert _keys({**base, path: value}).isdisjoint(_keys(base)), path


def test_identity_columns_are_the_points_identity():
    p = next(iter_points(from_dict(BASE)))
    assert tuple(p.identity()) == IDENTITY_COLUMNS


def test_point_is_built_by_keyword_only():
    from dataclasses import fields

    from astrasim.scenario.grid import Point

    p = next(iter_points(from_dict(BASE)))
    values = [getattr(p, f.name) for f in fields(Point)]
    assert Point(**{f.name: getattr(p, f.name) for f in fields(Point)}) == p
    with pytest.raises(TypeError):
        Point(*values)


def _best(data: dict, tmp_path):
    from astrasim.sweep import best_strategies, run_sweep

    return best_strategies(run_sweep(from_dict(data), out=tmp_path / "r.csv", progress=False))


def test_best_never_merges_points_that_differ_in_a_swept_axis(tmp_path):
    """scenarios/dynamic.yaml compares three loss rates: one best row per loss rate and model (once
    one row spoke for all three); a sweep over hardware.speed 1 and 4 (sp wins at speed 1, single
    at speed 4) and over element_bits: one row per value, each naming its own winner."""
    from astrasim.scenario import load_scenario
    from astrasim.sweep import best_strategies, run_sweep

    dyn = load_scenario("scenarios/dynamic.yaml")
    best = best_strategies(run_sweep(dyn, out=tmp_path / "d.csv", progress=False))
    assert len(best) == 2 * 3 and sorted(best["loss_rate"].unique()) == [0.0, 0.01, 0.05]
    for model in ("vit-base", "gpt2-s"):
        assert sorted(best.loc[best["model"] == model, "loss_rate"]) == [0.0, 0.01, 0.05]

    loss = _best({**BASE, "network": {"topology": "switch", "bandwidth_mbps": [500], "loss_rate": [0, 0.5]}}, tmp_path)
    assert sorted(loss["loss_rate"]) == [0.0, 0.5]

    speed = _best(
        {**BASE, "tokens": [1024], "hardware": {"profile": "cpu", "speed": [1, 4]}, "element_bits": [32, 16]}, tmp_path
    )  # switch 500 Mbps, N = 4
    assert len(speed) == 4
    winner = {(r.speed, r.element_bits): (r.best, r.latency_s) for r in speed.itertuples()}
    assert set(winner) == {(1.0, 32), (4.0, 32), (1.0, 16), (4.0, 16)}
    assert winner[(1.0, 32)][0] == "sp" and winner[(4.0, 32)][0] == "single"
    assert winner[(4.0, 32)][1] < winner[(1.0, 32)][1] / 2  # speed 4: its own single time, not speed 1's


def test_memory_fit_counts_the_kv_cache_of_generated_tokens():
    """`fits` and memory_gb count the KV cache of every output token (once only the prompt's): a
    long generation on a nearly full board does not fit."""
    from astrasim.scenario.fleet import memory_check

    def row(output_tokens, headroom):
        sc = from_dict(
            {
                **BASE,
                "strategies": ["single"],
                "output_tokens": [output_tokens],
                "hardware": {"profile": "cpu", "device": ["raspberry-pi-5"]},
                "memory": {"headroom_gb": headroom},
            }
        )
        return next(iter_points(sc))

    prompt, long = memory_check(row(0, 0.0)), memory_check(row(768, 0.0))
    model = row(0, 0.0).model
    kv = 2 * model.layers * model.hidden * 4 * 768 / 1e9  # K and V of 768 more tokens, fp32, GB
    assert long.largest_gb - prompt.largest_gb == pytest.approx(kv, rel=1e-9)
    headroom = long.have_gb[0] - (prompt.largest_gb + long.largest_gb) / 2  # room for the prompt only
    assert memory_check(row(0, headroom)).fits and not memory_check(row(768, headroom)).fits
    assert simulate_point(row(768, headroom))["fits"] is False


def test_resume_recomputes_rows_of_other_simulator_code(tmp_path, monkeypatch):
    """A row's fingerprint holds a hash of the package's source (not the version number, unchanged
    across many engine changes): rows written by other code are recomputed, never kept."""
    import shutil

    from astrasim import results
    from astrasim.sweep import run_sweep

    pkg = tmp_path / "pkg"
    shutil.copytree(results.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    before = results.source_digest(pkg)
    assert before == results.source_digest(results.PACKAGE)
    engine = pkg / "engine" / "sim.py"
    engine.write_text(engine.read_text() + "\n# a changed engine\n")
    assert results.source_digest(pkg) != before

    out, sc = tmp_path / "r.csv", from_dict(BASE)
    run_sweep(sc, out=out, progress=False)
    kept = []
    run_sweep(sc, out=out, progress=False, resume=True, on_row=kept.append)
    assert kept == []  # same code: every row kept
    monkeypatch.setattr(results, "code_digest", lambda: "other code")
    again = []
    run_sweep(sc, out=out, progress=False, resume=True, on_row=again.append)
    assert len(again) == 2  # other code: every row recomputed
