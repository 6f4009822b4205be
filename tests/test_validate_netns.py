"""Real test hosts: namespaces, shaping, cleanup, and a reduced validation run that guards
the network model (docs/validation.md has the target and where it is missed). Needs root and
`ip netns` (CI runs as root); skipped elsewhere with the reason."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from astrasim.validation import netns

REASON = netns.unavailable_reason()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def _mine(pid: int) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"asv-{pid}-")]


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Every test must leave no namespace of this process (nor any veth/ifb in the caller's
    namespace: the harness never creates one there)."""
    links_before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.count("\n")
    yield
    assert netns.leftovers() == []
    links_after = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.count("\n")
    assert links_after == links_before


@pytest.mark.parametrize("topology", ["switch", "shared"])
def test_testbed_builds_connects_and_cleans_up(topology):
    with netns.testbed(3, topology, 20) as bed:
        assert _mine(os.getpid())
        probe = [sys.executable, "-c", "import socket; socket.create_connection(('10.77.0.3', 9), timeout=3)"]
        res = subprocess.run(bed.command(0, probe), capture_output=True, text=True)
        assert "ConnectionRefused" in res.stderr  # reached host 2, nothing listens on port 9
        qdiscs = bed.qdisc_stats()
        assert "tbf" in qdiscs and "rate 20Mbit" in qdiscs
        bed.set_bandwidth(50)
        assert "rate 50Mbit" in bed.qdisc_stats()
    assert _mine(os.getpid()) == []


def test_cleanup_on_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with netns.testbed(2, "switch", 10):
            assert _mine(os.getpid())
            raise RuntimeError("boom")
    assert _mine(os.getpid()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cleanup_on_signal(sig):
    script = textwrap.dedent("""
        import sys, time
        from astrasim.validation.netns import testbed
        with testbed(2, "shared", 10) as bed:
            p = bed.popen(1, [sys.executable, "-c", "import time; time.sleep(60)"])
            print("ready", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert _mine(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _mine(proc.pid) == []


def test_clean_stale_removes_only_dead_runs():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = f"asv-{dead.pid}-0-h0"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        removed = netns.clean_stale()
        assert stale in removed
        assert stale not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)


def test_shaped_transfer_matches_the_rate():
    """One 256 KB message at 20 Mbps takes bytes x 1514/1448 / rate (+ a per-message cost)."""
    from astrasim.validation.launch import run_job

    size = 262144
    with netns.machine_lock(log=lambda m: None), netns.testbed(2, "switch", 20) as bed:
        res = run_job(bed, {"mode": "p2p", "sizes": [size], "warmup": 1, "repeats": 3})
    lat = sorted(
        max(r["result"][str(size)][k]["end"] for r in res) - res[0]["result"][str(size)][k]["start"] for k in range(3)
    )[1]
    wire = size * 8 * 1514 / 1448 / 20e6
    assert wire * 0.97 < lat < wire * 1.10


def _reduced_validation(tmp_path, settings):
    from astrasim.validation import idle
    from astrasim.validation.campaign import run_validation

    saved = idle.IDLE_WAIT_S, idle.IDLE_START_S
    idle.IDLE_WAIT_S = idle.IDLE_START_S = 2.0  # a test shares the machine: it cannot wait for idle CPUs

    t0 = time.monotonic()
    waited = [0.0]

    def log(msg: str) -> None:  # time spent waiting for another validation run does not count
        if "waiting for another" in msg:
            waited[0] = -time.monotonic()
        elif waited[0] < 0:
            waited[0] += time.monotonic()

    try:
        results, summary = run_validation(settings, tmp_path, command="pytest", log=log, trace_dir=tmp_path / "traces")
    finally:
        idle.IDLE_WAIT_S, idle.IDLE_START_S = saved
    return results, summary, time.monotonic() - t0 - waited[0]


def _assert_guard(results, summary, tmp_path):
    from astrasim.validation.protocol import PROTOCOL
    from astrasim.validation.report import TARGET_MEDIAN

    allrow = summary[summary["group"] == "all"].iloc[0]
    table = results[
        [
            "topology",
            "bandwidth_mbps",
            "strategy",
            "measured_s",
            "predicted_profiles_s",
            "error_profiles",
            "error_in_situ",
            "error_in_pass",
        ]
    ].to_string()
    # The target (median <= 5 %, max <= 15 %) is judged on the full grid (`astrasim validate`,
    # docs/validation.md), minutes of passes on a quiet machine; a test run shares its CPUs with
    # pytest and cannot hold to it. This small run is a
    # regression guard of what does hold: with the op times measured inside the passes, the network,
    # collective and engine model predicts the real runs (a broken plan or calibration is off by 30 to
    # 100 %), and both predictions stay within the known compute gap (never slower than measured by
    # more than 2x, never faster than a sixth of it).
    assert allrow["median_abs_error_in_pass"] <= 3 * TARGET_MEDIAN, table
    assert allrow["max_abs_error_in_pass"] <= 0.5, table
    for kind in ("profiles", "in_situ"):
        assert results[f"error_{kind}"].between(-5 / 6, 1.0).all(), table
    assert (results["protocol"] == PROTOCOL).all() and (summary["protocol"] == PROTOCOL).all()
    assert (results["noise"] >= 0).all()
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "predicted_vs_measured.png").is_file()


def test_reduced_validation_meets_the_error_guard(tmp_path):
    """2 hosts, 1 bandwidth, 2 network-bound strategies, both topologies, a 2-layer model."""
    from astrasim.validation.programs import VALIDATION_MODEL
    from astrasim.validation.protocol import Settings

    settings = Settings(
        hosts=[2],
        bandwidths=[50.0],
        strategies=["sp", "bp-ag"],
        topologies=["switch", "shared"],
        repeats=3,
        budget_s=0.5,
        max_repeats=5,
        calibration_repeats=3,
        profile_repeats=5,
        model=dataclasses.replace(VALIDATION_MODEL, layers=2),
    )
    results, summary, elapsed = _reduced_validation(tmp_path, settings)
    assert len(results) == 4
    _assert_guard(results, summary, tmp_path)
    import json

    traces = sorted((tmp_path / "traces").glob("*.json"))  # --trace: every job's raw worker records
    assert [t.name for t in traces] == ["shared-N2-50Mbps.json", "switch-N2-50Mbps.json"]
    ranks = json.loads(traces[0].read_text())
    passes = ranks[0]["result"]["sp"]["passes"]
    assert len(ranks) == 2 and passes and all(p["trace"] and p["cpu_s"][1] > 0 for p in passes)


@pytest.mark.slow
def test_ci_sized_validation_meets_the_error_guard(tmp_path):
    """2 hosts, 2 bandwidths, 2 strategies, both topologies: the CI-sized validation."""
    from astrasim.validation.protocol import Settings

    settings = Settings(
        hosts=[2],
        bandwidths=[20.0, 50.0],
        strategies=["sp", "bp-ag"],
        topologies=["switch", "shared"],
        repeats=3,
        budget_s=1.0,
        max_repeats=10,
        calibration_repeats=3,
        profile_repeats=5,
    )
    results, summary, elapsed = _reduced_validation(tmp_path, settings)
    assert len(results) == 8
    _assert_guard(results, summary, tmp_path)
