"""Validation harness pieces that need no root: code packing, collectives against the engine's
message plans (real gloo processes on localhost), the calibration fit, settings, summary, CLI."""

from __future__ import annotations

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
from astrasim.network.collectives import plan
from astrasim.validation.calibrate import fit, transfer_factor
from astrasim.validation.compare import Settings, load_settings, plot, summarize, summary_markdown, verdict
from astrasim.kernels.codes import pack_codes, packed_bytes, unpack_codes
from astrasim.validation.programs import VALIDATION_MODEL, Collectives, Variant


# ---------------------------------------------------------------------------------- codes
@pytest.mark.parametrize("bits,count", [(10, 64), (10, 1), (10, 7), (3, 33), (16, 5)])
def test_pack_unpack_roundtrip(bits, count):
    codes = torch.randint(0, 2**bits, (count,))
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == packed_bytes(count, bits) == math.ceil(count * bits / 8)
    assert torch.equal(unpack_codes(packed, count, bits), codes)


def test_variant_parse():
    assert Variant.parse("astra-g32") == Variant("astra", groups=32)
    assert Variant.parse("bp-ag") == Variant("bp-ag", nb=1)
    assert Variant.parse("bp-ag-nb2").nb == 2
    assert Variant.parse("astra-g1").label == "astra-g1"
    for bad in ("astra", "bp-sp", "foo", "astra-gx"):
        with pytest.raises(ValueError):
            Variant.parse(bad)


# ------------------------------------------------------------------- collectives vs plan()
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _coll_worker(rank: int, n: int, port: int, q) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=n,
                            timeout=timedelta(seconds=60))
    try:
        for algorithm in ("ring", "direct"):
            coll = Collectives(rank, n, algorithm, log=True)
            chunk = torch.full((3, 5), float(rank + 1))
            gathered = coll.all_gather(chunk, [(3, 5)] * n).result()
            x = torch.arange(4 * n * 3, dtype=torch.float32).reshape(4 * n, 3) * (rank + 1)
            reduced = coll.all_reduce(x).result()
            coll.close()
            ok_ag = all(torch.equal(g, torch.full((3, 5), float(j + 1))) for j, g in enumerate(gathered))
            expect = torch.arange(4 * n * 3, dtype=torch.float32).reshape(4 * n, 3) * sum(range(1, n + 1))
            q.put((algorithm, rank, ok_ag, torch.allclose(reduced, expect), coll.message_log))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("n", [2, 3, 4])
def test_collectives_follow_engine_plans(n):
    """Data is right, and the messages each rank sends are those of collectives.plan()."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_coll_worker, args=(r, n, port, q)) for r in range(n)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in range(2 * n)]
    for p in procs:
        p.join(timeout=60)
    for algorithm in ("ring", "direct"):
        mine = [r for r in results if r[0] == algorithm]
        assert len(mine) == n and all(ok_ag and ok_ar for _, _, ok_ag, ok_ar, _ in mine)
        logs = [m for *_, log in mine for m in log]
        calls = sorted({m[0] for m in logs})
        assert len(calls) == 2
        for call, collective, nbytes in zip(calls, ("all_gather", "all_reduce"), (3 * 5 * 4, 4 * n * 3 * 4)):
            sent = sorted((m[2], m[3], m[4]) for m in logs if m[0] == call)
            p = plan(collective, n, algorithm)
            expected = sorted((p.src[k], d, round(p.frac[k] * nbytes)) for k in range(len(p)) for d in p.dsts[k])
            assert sent == expected, (algorithm, collective)


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


# ------------------------------------------------------------------------ settings, output
def test_shipped_yaml_is_the_default_grid():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "validation" / "validate.yaml"
    assert load_settings(path) == Settings()


def test_settings_defaults_cover_the_target_grid():
    s = Settings()
    multi = [v for v in s.strategies if v != "single"]
    assert len(multi) * len(s.bandwidths) * len(s.topologies) * len(s.hosts) >= 24
    assert set(s.hosts) == {2, 4} and set(s.topologies) == {"switch", "shared"}
    assert VALIDATION_MODEL.tokens % 4 == 0 and VALIDATION_MODEL.heads % 4 == 0


def test_load_settings_from_yaml_and_overrides(tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text("validate:\n  hosts: [2]\n  bandwidths: [20]\n  strategies: [sp, astra-g32]\n"
                 "  model: {layers: 1, hidden: 128, heads: 4, mlp_hidden: 256, tokens: 64}\n")
    s = load_settings(f, repeats=2)
    assert s.hosts == [2] and s.bandwidths == [20.0] and s.repeats == 2 and s.model.hidden == 128
    f.write_text("hosts: [1]\n")
    with pytest.raises(UserError, match="hosts"):
        load_settings(f)
    f.write_text("colour: red\n")
    with pytest.raises(UserError, match="unknown key"):
        load_settings(f)
    with pytest.raises(UserError, match="strategies"):
        load_settings(None, strategies=["astra"])
    with pytest.raises(UserError, match="not found"):
        load_settings(tmp_path / "missing.yaml")


def _fake_results() -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(0)
    for topo in ("switch", "shared"):
        for s in ("tp", "sp"):
            for bw in (10.0, 100.0):
                m = float(rng.uniform(0.05, 0.5))
                e = float(rng.uniform(-0.04, 0.04))
                rows.append({"topology": topo, "hosts": 2, "bandwidth_mbps": bw, "strategy": s, "measured_s": m,
                             "predicted_s": m * (1 + e), "error": e, "abs_error": abs(e), "measured_compute_s": 0.01,
                             "predicted_compute_s": 0.01, "repeats": 3, "loadavg_1m": 0.5})
    return pd.DataFrame(rows)


def test_summary_verdict_and_plot(tmp_path):
    res = _fake_results()
    summary = summarize(res)
    allrow = summary[summary["group"] == "all"].iloc[0]
    assert allrow["points"] == len(res)
    assert allrow["median_abs_error"] == pytest.approx(res["abs_error"].median())
    assert set(summary[summary["group"] == "strategy"]["value"]) == {"tp", "sp"}
    ok, line = verdict(summary)
    assert ok and "MET" in line
    bad = res.copy()
    bad.loc[0, "abs_error"] = 0.5
    assert not verdict(summarize(bad))[0]
    from astrasim.validation.calibrate import Calibration

    md = summary_markdown(res, summary, {"switch": Calibration("switch", 1e-3, 0.95, 0.1, 12)}, Settings(),
                          "astrasim validate", 1.0)
    assert "MET" in md and "alpha = 1.00 ms" in md and md.count("\n| switch |") == 4
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
