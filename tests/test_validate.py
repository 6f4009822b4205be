"""Validation harness pieces that need no root: code packing, collectives against the engine's
message plans (real gloo processes on localhost), the calibration fit, settings, summary, CLI."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from typer.testing import CliRunner

from astrasim.errors import UserError
from astrasim.kernels.codes import pack_codes, packed_bytes, unpack_codes
from astrasim.models import ModelSpec
from astrasim.network.collectives import ALGORITHMS, RING_CAPABLE, plan, resolve_algorithm
from astrasim.opgraph import COLLECTIVES, Comm, Compute
from astrasim.strategies.base import Builder
from astrasim.validation.calibrate import fit, transfer_factor
from astrasim.validation.programs import (
    VALIDATION_MODEL,
    DeviceRun,
    graph_from_json,
    graph_to_json,
    kernel_calls_per_layer,
    message_bytes,
)
from astrasim.validation.protocol import PROTOCOL, Settings
from astrasim.validation.report import plot, summarize, summary_markdown, verdict
from astrasim.validation.settings import load_settings


# ---------------------------------------------------------------------------------- codes
@pytest.mark.parametrize("bits,count", [(10, 64), (10, 1), (10, 7), (3, 33), (16, 5)])
def test_pack_unpack_roundtrip(bits, count):
    codes = torch.randint(0, 2**bits, (count,))
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == packed_bytes(count, bits) == math.ceil(count * bits / 8)
    assert torch.equal(unpack_codes(packed, count, bits), codes)


# --------------------------------------------------- the harness walks the simulator's graphs
TINY = ModelSpec(
    name="val-tiny",
    family="custom",
    layers=2,
    hidden=64,
    heads=4,
    kv_heads=4,
    mlp_hidden=128,
    activation="gelu",
    norm="layernorm",
    causal=False,
    tokens=24,
    max_tokens=24,
)


def _labels() -> list[str]:
    """Every registered strategy, plus one non-default variant of each strategy that has knobs."""
    from astrasim.strategies import STRATEGIES

    out = []
    for s in STRATEGIES.values():
        out.append(s.label())
        for k in s.Knobs.model_fields:
            if k in s.profiled_knobs or k in s.label_knobs:
                alt = {"groups": 4, "nb": 2}.get(k)
                if alt is not None:
                    out.append(s.label(s.knobs(**{k: alt})))
    return out


TINY_MOE = dataclasses.replace(TINY, name="val-tiny-moe", experts=4, experts_per_token=2, expert_mlp_hidden=128)


def _spec(label: str) -> ModelSpec:
    """TINY, or its MoE twin for a strategy that exists for MoE models only (ep)."""
    from astrasim.strategies import parse_label

    return TINY if parse_label(label)[0].applies(TINY) else TINY_MOE


def _graph(label: str, n: int):
    from astrasim.strategies import build_graph, parse_label

    class UnitCosts:  # the graph's structure is what the harness walks; durations do not matter
        def seconds(self, *args, **kwargs) -> float:
            return 1e-3

    strategy, knobs = parse_label(label)
    spec = _spec(label)
    return build_graph(strategy, spec, UnitCosts(), n, spec.tokens, knobs)


def _collective_graph(n: int):
    """One Comm of every collective and algorithm, each after a compute on every device."""
    b = Builder(n, {})
    prev = [""] * n
    k = 0
    for collective in COLLECTIVES:
        if collective == "p2p" and n != 2:
            continue
        for algorithm in ALGORITHMS if collective in RING_CAPABLE else ("auto",):
            c = [b.compute(d, "op", k, 0.0, [prev[d]]) for d in range(n)]
            root = 1 % n if collective in ("gather", "broadcast") else None
            cid = b.comm(
                f"{collective}-{algorithm}", k, collective, range(n), 8 * 1000 * n, c, root=root, algorithm=algorithm
            )
            prev = [cid] * n
            k += 1
    return b.graph


def _noop_calls(graph):
    return {op.layer: {op.name: (lambda: None)} for op in graph.ops if isinstance(op, Compute)}


def test_graph_json_roundtrip():
    g = _graph("astra G=4", 2)
    assert graph_from_json(graph_to_json(g)).ops == g.ops


@pytest.mark.parametrize("label", _labels())
def test_kernel_calls_cover_every_op_of_every_device(label):
    """The harness can run every compute op the simulator's graph holds, on every device."""
    n = 2
    g = _graph(label, n)
    for rank in range(g.n_devices):
        calls = kernel_calls_per_layer(label, _spec(label), n, rank)
        DeviceRun(g, rank, calls, "ring")  # raises if an op has no kernel call


def test_single_device_pass_runs_ops_in_engine_order():
    """A one-device graph runs with real kernels, every op once, in program order."""
    g = _graph("single", 1)
    run = DeviceRun(g, 0, kernel_calls_per_layer("single", TINY, 1, 0), "direct")
    run.run()
    assert [t[0] for t in run.trace] == [op.name for op in g.ops]
    assert run.compute_s() > 0 and set(run.op_seconds()) == {"attn", "mlp"}


def test_message_bytes_round_up():
    assert message_bytes(0.5, 8 * 10) == 5 and message_bytes(1 / 3, 8 * 10) == 4 and message_bytes(1.0, 0) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graph_worker(rank: int, n: int, port: int, labels: list[str], q) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=n, timeout=timedelta(seconds=60)
    )
    try:
        g = _collective_graph(n)
        run = DeviceRun(g, rank, _noop_calls(g), "ring", log=True)
        run.run()
        run.run()  # a second pass reuses the buffers and tags
        logs = {"collectives": run.message_log}
        for label in labels:
            sg = _graph(label, n)
            if rank < sg.n_devices:
                srun = DeviceRun(sg, rank, kernel_calls_per_layer(label, _spec(label), n, rank), "ring", log=True)
                srun.run()
                logs[label] = srun.message_log
            dist.barrier()
        q.put((rank, logs))
    finally:
        dist.destroy_process_group()


def _expected(graph, default="ring"):
    out = []
    for op in graph.ops:
        if isinstance(op, Comm):
            algo = resolve_algorithm(op.collective, op.algorithm, default)
            root = op.devices.index(op.root) if op.root is not None else 0
            p = plan(op.collective, len(op.devices), algo, root)
            out += [
                (op.id, op.devices[p.src[m]], op.devices[d], message_bytes(p.frac[m], op.bits), m)
                for m in range(len(p))
                for d in p.dsts[m]
            ]
    return sorted(out)


def _check_collectives(n: int, labels: list[str]) -> None:
    labels = [lb for lb in labels if _buildable(lb, n)]  # e.g. pp: no more stages than layers
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_graph_worker, args=(r, n, port, labels, q)) for r in range(n)]
    for p in procs:
        p.start()
    results = dict(q.get(timeout=240) for _ in range(n))  # a worker that dies fails here, not hangs
    for p in procs:
        p.join(timeout=60)
    g = _collective_graph(n)
    sent = [m for r in range(n) for m in results[r]["collectives"]]
    assert sorted(m[:5] for m in sent) == sorted(_expected(g) * 2)  # two passes
    for r in range(n):  # a message leaves after this rank's own messages it depends on
        order = {}
        for k, m in enumerate(results[r]["collectives"][: len(results[r]["collectives"]) // 2]):
            order.setdefault((m[0], m[4]), k)
            for d in m[5]:
                if (m[0], d) in order:
                    assert order[(m[0], d)] < k
    for label in labels:
        sg = _graph(label, n)
        got = sorted(m[:5] for r in range(sg.n_devices) for m in results[r][label])
        assert got == _expected(sg), label


def test_harness_runs_the_engine_plans_on_three_ranks():
    """Real gloo processes: every collective, ring, direct and star, and every strategy's graph run
    message by message exactly as collectives.plan() decomposes them (3 ranks: odd ring, forwarding)."""
    _check_collectives(3, ["tp", "astra G=32", "bp-sp Nb=2"])  # all-reduce, all-gather, all-to-all inside graphs


def _buildable(label: str, n: int) -> bool:
    """Whether the strategy variant has a graph at N devices (checked here, before the workers start)."""
    from astrasim.errors import UserError

    try:
        _graph(label, n)
    except UserError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3, 4])
def test_harness_runs_the_engine_plans(n):
    """The full-size variant: every registered strategy and a variant of each knob."""
    _check_collectives(n, _labels())


# --------------------------------------------------------------------------- calibration
@pytest.mark.parametrize("topology,k", [("switch", 1), ("shared", 2)])
def test_fit_recovers_alpha_and_efficiency(topology, k):
    """The calibration exchange costs k s / B in the simulator: one link per direction on the switch,
    both messages on the one channel of the shared medium."""
    assert transfer_factor(topology) == pytest.approx(k)
    alpha, eff = 8e-4, 0.93
    rows = []
    for bw in (10.0, 100.0):
        for size in (64, 4096, 65536, 262144, 1048576):
            t = alpha + k * size * 8 / (eff * bw * 1e6)
            rows.append({"topology": topology, "bandwidth_mbps": bw, "bytes": size, "median_s": t})
    cal = fit(pd.DataFrame(rows), topology)
    assert cal.alpha_s == pytest.approx(alpha, rel=1e-6)
    assert cal.efficiency == pytest.approx(eff, rel=1e-6)
    assert cal.max_rel_residual < 1e-6
    rows[0]["median_s"] *= 3  # one small message's hiccup does not move alpha
    assert fit(pd.DataFrame(rows), topology).alpha_s == pytest.approx(alpha, rel=1e-6)


# ------------------------------------------------------------------------ settings, output
def test_shipped_yaml_covers_the_target_grid():
    """validation/validate.yaml (the frozen protocol's grid): registry labels of every strategy
    registered when the protocol was frozen, >= 24 points of N = 2 and 4 on both topologies, the
    built-in validation model."""
    from pathlib import Path

    from astrasim.strategies import parse_label

    s = load_settings(Path(__file__).resolve().parents[1] / "validation" / "validate.yaml")
    assert s.model == VALIDATION_MODEL and s.strategies == Settings().strategies
    assert {parse_label(lb)[0].name for lb in s.strategies} >= {"single", "tp", "sp", "bp-ag", "bp-sp", "pp", "astra"}
    multi = [lb for lb in s.strategies if not parse_label(lb)[0].single_device]
    assert len(multi) * len(s.bandwidths) * len(s.topologies) * len(s.hosts) >= 24
    assert set(s.hosts) == {2, 4} and set(s.topologies) == {"switch", "shared"}
    assert VALIDATION_MODEL.tokens % 4 == 0 and VALIDATION_MODEL.heads % 4 == 0


def test_load_settings_from_yaml_and_overrides(tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text(
        "validate:\n  hosts: [2]\n  bandwidths: [20]\n  strategies: [sp, astra G=32]\n"
        "  model: {layers: 1, hidden: 128, heads: 4, mlp_hidden: 256, tokens: 64}\n"
    )
    s = load_settings(f, repeats=2)
    assert s.hosts == [2] and s.bandwidths == [20.0] and s.repeats == 2 and s.model.hidden == 128
    f.write_text("hosts: [1]\n")
    with pytest.raises(UserError, match="hosts"):
        load_settings(f)
    f.write_text("colour: red\n")
    with pytest.raises(UserError, match="unknown key"):
        load_settings(f)
    with pytest.raises(UserError, match="strategies"):
        load_settings(None, strategies=["astra-g32"])  # not a registry label
    with pytest.raises(UserError, match="strategies"):
        load_settings(None, strategies=["astra G=7"])  # G must divide the hidden size
    with pytest.raises(UserError, match="not found"):
        load_settings(tmp_path / "missing.yaml")


def _fake_results() -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(0)
    for topo in ("switch", "shared"):
        for s in ("tp", "sp"):
            for bw in (10.0, 100.0):
                m = float(rng.uniform(0.05, 0.5))
                row = {
                    "topology": topo,
                    "hosts": 2,
                    "bandwidth_mbps": bw,
                    "strategy": s,
                    "measured_s": m,
                    "measured_compute_s": 0.01,
                    "repeats": 3,
                    "loadavg_1m": 0.5,
                    "protocol": PROTOCOL,
                }
                for kind, spread in (("profiles", 0.04), ("in_situ", 0.02)):
                    e = float(rng.uniform(-spread, spread))
                    row.update(
                        {
                            f"predicted_{kind}_s": m * (1 + e),
                            f"error_{kind}": e,
                            f"abs_error_{kind}": abs(e),
                            f"predicted_compute_{kind}_s": 0.01,
                        }
                    )
                rows.append(row)
    return pd.DataFrame(rows)


def test_summary_verdict_and_plot(tmp_path):
    """Both errors in every table; the verdict is the prediction from profiles'."""
    res = _fake_results()
    summary = summarize(res)
    allrow = summary[summary["group"] == "all"].iloc[0]
    assert allrow["points"] == len(res)
    for kind in ("profiles", "in_situ"):
        assert allrow[f"median_abs_error_{kind}"] == pytest.approx(res[f"abs_error_{kind}"].median())
        assert allrow[f"max_abs_error_{kind}"] == pytest.approx(res[f"abs_error_{kind}"].max())
    assert set(summary[summary["group"] == "strategy"]["value"]) == {"tp", "sp"}
    ok, line = verdict(summary)
    assert ok and "MET" in line and "from profiles" in line and "in-situ" in line
    bad = res.copy()
    bad.loc[0, "abs_error_profiles"] = 0.5
    assert not verdict(summarize(bad))[0]
    worse_in_situ = res.copy()
    worse_in_situ.loc[0, "abs_error_in_situ"] = 0.5
    assert verdict(summarize(worse_in_situ))[0]  # the target is the prediction from profiles'
    from astrasim.validation.calibrate import Calibration

    md = summary_markdown(
        res, summary, {"switch": Calibration("switch", 1e-3, 0.95, 0.1, 12)}, Settings(), "astrasim validate", 1.0
    )
    assert "MET" in md and "alpha = 1.00 ms" in md and md.count("\n| switch |") == 4
    point = next(line for line in md.splitlines() if line.startswith("| switch | 2 | 10 | tp |"))
    r = res.iloc[0]
    assert f"{r['predicted_profiles_s'] * 1e3:.1f} | {r['error_profiles']:+.1%}" in point
    assert f"{r['predicted_in_situ_s'] * 1e3:.1f} | {r['error_in_situ']:+.1%}" in point
    plot(res, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_says_why_it_cannot_run(monkeypatch):
    from astrasim.cli import app
    from astrasim.validation import netns

    monkeypatch.setattr(netns, "unavailable_reason", lambda: "astrasim validate needs root (test)")
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs root" in lines[0]


def test_kernel_rounds_time_every_op_from_a_common_start_and_pool(monkeypatch):
    """A window runs the rank's ops in program order, each round after `sync` (as a pass starts),
    keeps all but the first round; two windows pool into one record whose costs add up to the
    mean round. The kernels advance a virtual clock (exact on a loaded machine)."""
    import types

    from astrasim.validation import corun
    from astrasim.validation.corun import kernel_rounds, one_core_op_seconds, pooled

    clock = [0.0]
    monkeypatch.setattr(
        corun, "time", types.SimpleNamespace(perf_counter=lambda: clock[0], process_time=lambda: clock[0])
    )

    def busy(seconds):
        def fn():
            clock[0] += seconds

        return fn

    syncs = []
    sequence = [("a", busy(0.002)), ("b", busy(0.006)), ("a", busy(0.002))]
    w = kernel_rounds(sequence, 4, lambda: syncs.append(clock.__setitem__(0, clock[0] + 0.001)))
    assert len(syncs) == 4 and len(w["wall"]) == 3
    assert len(w["ops"]["a"]) == 6 and len(w["ops"]["b"]) == 3
    assert w["wall"] == pytest.approx([0.010] * 3)  # the sync is not part of the round
    both = pooled([w, w])
    assert len(both["wall"]) == 6 and len(both["ops"]["b"]) == 6
    cost = one_core_op_seconds([both], 1.0)
    assert cost["a"] == pytest.approx(0.002) and cost["b"] == pytest.approx(0.006)
    assert 2 * cost["a"] + cost["b"] == pytest.approx(sorted(w["wall"])[1], rel=1e-9)
    from astrasim.validation.corun import robust_cv, round_spread

    steady = {"wall": [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 5.0]}  # one disturbed round
    assert round_spread([steady]) == pytest.approx(robust_cv(steady["wall"]))
    assert robust_cv(steady["wall"]) < 0.1


def test_pinned_ranks_share_cores_in_even_groups():
    from astrasim.validation.points import core_shares, machine_hosts

    assert core_shares(1, 2) == [1.0] and core_shares(2, 2) == [1.0, 1.0]
    assert core_shares(4, 2) == [0.5] * 4 and core_shares(3, 2) == [0.5, 0.5, 1.0]
    assert machine_hosts(1e-6, cores=2)(4) == {"hosts": 2, "cores_per_host": 1, "op_overhead_s": 1e-6}


def test_corun_cost_keeps_the_time_slices_that_the_median_misses():
    """Four processes on two cores: ops shorter than a slice mostly run uninterrupted (median =
    time alone) and sometimes wait out a slice; the round's wall time (twice the work) holds that,
    so one core's worth of each op is its time alone, in proportion, not half of it."""
    from astrasim.validation.corun import one_core_op_seconds

    rank = {"ops": {"a": [1.0, 1.0, 1.0, 4.0], "b": [3.0, 3.0, 3.0, 3.0]}, "wall": [8.0, 8.0, 8.0, 8.0]}
    cost = one_core_op_seconds([rank, rank], expected=0.5)
    assert cost == {"a": 1.0, "b": 3.0}
    layers = {"ops": {"a": [1.0] * 4, "b": [3.0] * 4}, "wall": [16.0, 16.0]}  # two layers per round
    assert one_core_op_seconds([layers], expected=0.5) == {"a": 1.0, "b": 3.0}
    own_core = {"ops": {"a": [1.0] * 4, "b": [3.0] * 4}, "wall": [8.0, 8.0]}
    assert one_core_op_seconds([layers, own_core], expected=[0.5, 1.0]) == {"a": 1.0, "b": 3.0}
    alone = {"ops": {"a": [1.0, 1.0], "b": [3.0, 3.0]}, "wall": [4.2, 4.2]}  # a core per device
    assert one_core_op_seconds([alone], expected=1.0) == pytest.approx({"a": 1.05, "b": 3.15})
