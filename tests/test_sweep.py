"""The sweep: result rows, byte-identical files whatever the execution mode, resumable appends."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from astrasim.errors import UserError
from astrasim.models import get_model
from astrasim.scenario import load_scenario
from astrasim.strategies.synthetic import synthetic_profile
from astrasim.sweep import COLUMNS, KNOB_COLUMNS, best_strategies, run_sweep, simulate_point

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = pytest.mark.skipif(
    not (ROOT / "profiles" / "cpu.csv").exists(),
    reason="profiles/cpu.csv (the shipped CPU profile) is not in this checkout yet",
)
REQUIRED = [
    "model",
    "strategy",
    "groups",
    "nb",
    "devices",
    "tokens",
    "network",
    "bandwidth_mbps",
    "latency_s",
    "compute_s",
    "exposed_comm_s",
    "comm_bits",
    "speedup_vs_single",
    "hardware",
]


@pytest.fixture()
def scenario(tmp_path, monkeypatch):
    d = tmp_path / "profiles"
    d.mkdir()
    specs = [get_model("vit-base"), get_model("gpt2-s")]
    synthetic_profile(specs, devices=(2, 4), tokens=None).to_csv(d / "cpu.csv", index=False)
    monkeypatch.setenv("ASTRASIM_PROFILES", str(d))
    p = tmp_path / "small.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "models": ["vit-base", "gpt2-s"],
                "devices": [2, 4],
                "strategies": [
                    "single",
                    "tp",
                    "sp",
                    {"name": "bp-ag", "nb": [1, 4]},
                    {"name": "bp-sp", "nb": 4},
                    {"name": "astra", "groups": [1, 32]},
                ],
                "network": {"topology": "wifi", "bandwidth_mbps": [10, 100]},
            }
        )
    )
    return p


def test_rows_have_the_interface_columns_and_consistent_numbers(scenario, tmp_path):
    df = run_sweep(scenario, out=tmp_path / "r.csv", progress=False)
    assert list(df.columns) == list(COLUMNS) and set(REQUIRED) <= set(df.columns)
    sc = load_scenario(scenario)
    assert len(df) == len(sc.points()) == 2 * (2 + 2 * 2 * 7)
    assert (df["latency_s"] > 0).all()
    single = df[df["strategy"] == "single"].set_index(["model", "bandwidth_mbps"])["latency_s"]
    for r in df.itertuples():
        assert r.speedup_vs_single == pytest.approx(single[(r.model, r.bandwidth_mbps)] / r.latency_s)
        assert r.compute_s + r.exposed_comm_s + r.idle_s == pytest.approx(r.latency_s)
        assert r.comm_fraction == pytest.approx(r.exposed_comm_s / r.latency_s)
    assert (df.loc[df.strategy == "single", "comm_bits"] == 0).all()
    assert (df.loc[df.strategy == "single", "speedup_vs_single"] == 1.0).all()
    # bits: ASTRA's codes are far fewer than SP's fp32 block inputs; bits do not depend on bandwidth
    g = df[(df.model == "gpt2-s") & (df.devices == 4)].set_index(["strategy", "groups", "bandwidth_mbps"])
    assert g.loc[("astra", 32, 10.0), "comm_bits"] < g.loc[("sp", 0, 10.0), "comm_bits"] / 50
    assert g.loc[("tp", 0, 10.0), "comm_bits"] == g.loc[("tp", 0, 100.0), "comm_bits"]
    # more bandwidth never hurts here
    for key, grp in df[df.strategy != "single"].groupby(["model", "strategy", "groups", "nb", "devices"]):
        lat = grp.sort_values("bandwidth_mbps")["latency_s"].tolist()
        assert lat == sorted(lat, reverse=True), key


def test_simulate_point_matches_the_sweep_row(scenario, tmp_path):
    df = run_sweep(scenario, out=tmp_path / "r.csv", progress=False)
    p = load_scenario(scenario).points()[5]
    row = simulate_point(p)
    assert list(row)[: len(KNOB_COLUMNS)] == list(KNOB_COLUMNS)
    assert row["latency_s"] == df.iloc[5]["latency_s"]


def test_serial_workers_and_dask_give_byte_identical_files(scenario, tmp_path):
    from distributed import LocalCluster

    run_sweep(scenario, out=tmp_path / "serial.csv", progress=False)
    run_sweep(scenario, out=tmp_path / "workers.csv", workers=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        run_sweep(scenario, out=tmp_path / "dask.csv", dask_address=cluster.scheduler_address, progress=False)
    serial = (tmp_path / "serial.csv").read_bytes()
    assert serial == (tmp_path / "workers.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()


def test_parquet_output_holds_the_same_rows(scenario, tmp_path):
    csv_df = run_sweep(scenario, out=tmp_path / "r.csv", progress=False)
    run_sweep(scenario, out=tmp_path / "r.parquet", workers=2, progress=False)
    pq = pd.read_parquet(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(pq, csv_df)
    assert not (tmp_path / "r.parquet.partial.csv").exists()


class Stop(Exception):
    pass


def test_interrupted_sweep_resumes_without_losing_or_duplicating_rows(scenario, tmp_path):
    fresh = tmp_path / "fresh.csv"
    run_sweep(scenario, out=fresh, progress=False)
    out = tmp_path / "r.csv"
    seen = []

    def stop_after_7(row):
        seen.append(row)
        if len(seen) == 7:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(scenario, out=out, progress=False, on_row=stop_after_7)
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 7  # header + the rows finished so far, each complete
    # a torn last line (kill -9 in the middle of a write)
    with open(out, "a") as fh:
        fh.write("wifi,gpt2-s,1024,astra,3")
    resumed = []
    df = run_sweep(scenario, out=out, progress=False, resume=True, on_row=resumed.append)
    assert len(resumed) == len(df) - 7
    assert out.read_bytes() == fresh.read_bytes()


def test_resume_of_a_complete_file_runs_nothing(scenario, tmp_path):
    out = tmp_path / "r.csv"
    run_sweep(scenario, out=out, progress=False)
    before = out.read_bytes()
    again = []
    run_sweep(scenario, out=out, progress=False, resume=True, on_row=again.append)
    assert again == [] and out.read_bytes() == before


def test_killed_sweep_process_resumes(scenario, tmp_path):
    """kill -9 a real `astrasim sweep` mid-run, then --resume: same bytes as an uninterrupted run."""
    big = tmp_path / "big.yaml"
    data = yaml.safe_load(scenario.read_text())
    data["network"]["bandwidth_mbps"] = [5, 10, 20, 50, 100, 200, 500, 1000]
    data["network"]["loss_rate"] = [0.0, 0.01, 0.02, 0.05]
    big.write_text(yaml.safe_dump(data))
    fresh, out = tmp_path / "fresh.csv", tmp_path / "killed.csv"
    run_sweep(big, out=fresh, progress=False)
    env = {**os.environ}
    proc = subprocess.Popen(
        [sys.executable, "-m", "astrasim", "sweep", str(big), "--out", str(out), "--no-plots", "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if out.exists() and out.read_text().count("\n") >= 20:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_lines = out.read_text().count("\n")
    assert 20 <= n_lines < fresh.read_text().count("\n"), "the sweep finished before it could be killed"
    run_sweep(big, out=out, progress=False, resume=True)
    assert out.read_bytes() == fresh.read_bytes()


def test_bad_input_touches_no_result_file(scenario, tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("precious\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(scenario.read_text().replace("devices:\n- 2\n- 4", "devices:\n- 8"))
    with pytest.raises(UserError, match="hardware.profile: .*devices=8.*astrasim profile"):
        run_sweep(bad, out=out, progress=False)
    assert out.read_text() == "precious\n"
    with pytest.raises(UserError, match="--out"):
        run_sweep(scenario, out=tmp_path / "r.xlsx", progress=False)
    assert not (tmp_path / "r.xlsx").exists()


def test_best_strategies_picks_the_fastest(scenario, tmp_path):
    df = run_sweep(scenario, out=tmp_path / "r.csv", progress=False)
    best = best_strategies(df)
    assert len(best) == 2 * 2 * 2  # models x devices x bandwidths
    for r in best.itertuples():
        same = df[(df.model == r.model) & (df.devices == r.devices) & (df.bandwidth_mbps == r.bandwidth_mbps)]
        assert r.latency_s == same["latency_s"].min()


@SHIPPED
def test_shipped_wifi_sweep_runs_on_the_shipped_profile(tmp_path):
    df = run_sweep(ROOT / "scenarios" / "wifi.yaml", out=tmp_path / "wifi.csv", workers=2, progress=False)
    assert len(df) == 408 and (df["latency_s"] > 0).all()
    assert set(df["hardware"]) == {"cpu"}


def test_hardware_loss_trace_and_speeds_change_latency_as_expected(scenario, tmp_path):
    (tmp_path / "trace.csv").write_text("time_s,bandwidth_mbps\n0.0,100\n0.05,5\n")
    p = tmp_path / "knobs.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "models": "gpt2-s",
                "devices": 4,
                "strategies": ["single", "sp", {"name": "astra", "groups": 32}],
                "hardware": {"device": [None, "jetson-agx-orin"], "speed": [1.0, 2.0]},
                "network": {"bandwidth_mbps": 100, "loss_rate": [0.0, 0.1]},
            }
        )
    )
    df = run_sweep(p, out=tmp_path / "k.csv", progress=False)
    key = ["hardware", "speed", "loss_rate", "strategy"]
    lat = df.set_index(key)["latency_s"]
    single = df[df.strategy == "single"].set_index(["hardware", "speed", "loss_rate"])["latency_s"]
    assert single[("jetson-agx-orin", 1.0, 0.0)] < single[("cpu", 1.0, 0.0)] / 5  # roofline-scaled GPU
    assert single[("cpu", 2.0, 0.0)] == pytest.approx(single[("cpu", 1.0, 0.0)] / 2)
    assert lat[("cpu", 1.0, 0.1, "sp")] > lat[("cpu", 1.0, 0.0, "sp")]  # loss costs retransmissions
    # a trace that drops to 5 Mbps after 50 ms slows the communication-heavy strategy down
    traced = tmp_path / "traced.yaml"
    traced.write_text(
        yaml.safe_dump(
            {
                "models": "gpt2-s",
                "devices": 4,
                "strategies": ["sp"],
                "network": {"bandwidth_mbps": 100, "trace": "trace.csv"},
            }
        )
    )
    t = run_sweep(traced, out=tmp_path / "t.csv", progress=False)
    assert t["latency_s"].iloc[0] > lat[("cpu", 1.0, 0.0, "sp")] * 5
    assert t["trace"].iloc[0] == "trace.csv"
    # heterogeneous: a slow device slows sp down; single runs on the fastest device
    het = tmp_path / "het.yaml"
    het.write_text(
        yaml.safe_dump(
            {
                "models": "gpt2-s",
                "devices": 4,
                "strategies": ["single", "sp"],
                "hardware": {"speeds": [2.0, 1.0, 1.0, 0.25]},
            }
        )
    )
    h = run_sweep(het, out=tmp_path / "h.csv", progress=False).set_index("strategy")
    assert h.loc["single", "latency_s"] == pytest.approx(single[("cpu", 1.0, 0.0)] / 2)
    assert h.loc["sp", "speeds"] == "2.0;1.0;1.0;0.25"
