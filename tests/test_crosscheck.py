"""The ns-3 cross-check: schedules, the grid, the error statistics; one tiny ns-3 run when the wheel
and g++ are there (skipped otherwise, with the reason)."""

import pandas as pd
import pytest

from astrasim.crosscheck import build as ns3build
from astrasim.crosscheck.campaign import QUICK, Grid, air_bytes, combine, summarize, verdict
from astrasim.crosscheck.runner import ReferenceNetwork, schedule_text
from astrasim.network.collectives import plan
from astrasim.network.wifi80211 import WifiPhy


def test_schedule_is_the_plan():
    text = schedule_text("all_reduce", "ring", 3, 3000).splitlines()
    p = plan("all_reduce", 3, "ring")
    assert int(text[0]) == len(p) == 12
    for m, line in enumerate(text[1:]):
        src, dst, nbytes, ndeps, *deps = map(int, line.split())
        assert (src, (dst,), ndeps, tuple(deps)) == (p.src[m], p.dsts[m], len(p.deps[m]), p.deps[m])
        assert nbytes == 1000  # S / n per ring step
    assert schedule_text("p2p", "direct", 2, 0).splitlines()[1] == "0 1 1 0"  # at least one byte


def test_grid_counts_and_skips():
    pts = Grid().points()
    wifi = [p for p in pts if p["kind"] == "wifi"]
    assert len(wifi) >= 100
    assert not any(p["algorithm"] == "direct" and p["collective"] != "p2p" and p["hosts"] == 2 for p in pts)
    assert all(air_bytes(p["collective"], p["hosts"], p["size_bytes"]) <= Grid().max_bytes for p in wifi)
    assert {p["collective"] for p in pts} == {"p2p", "all_gather", "all_reduce"}
    assert len(QUICK.points()) < 30


def test_statistics_keep_erratic_points_apart(monkeypatch):
    import astrasim.crosscheck.campaign as campaign

    points = [
        {
            "network": "w",
            "kind": "wifi",
            "collective": "p2p",
            "algorithm": "direct",
            "hosts": 2,
            "size_bytes": 1024 * (k + 1),
        }
        for k in range(3)
    ]
    runs = pd.DataFrame(
        [
            {"point": i, "seed": s, "measured_s": t, "complete": True}
            for i, ts in enumerate([(1.0, 1.1), (2.0, 2.0), (1.0, 3.0)])
            for s, t in enumerate(ts)
        ]
    )
    monkeypatch.setattr(campaign, "predict", lambda p, g: 1.1 * p["size_bytes"] / 1024)
    res = combine(points, runs, Grid())
    assert list(res["steady"]) == [True, True, False]
    assert res.loc[0, "error"] == pytest.approx(1.1 / 1.05 - 1)
    s = summarize(res)
    allrow = s[s["group"] == "wifi"].iloc[0]
    assert (allrow["points"], allrow["erratic_points"]) == (2, 1)
    assert allrow["median_abs_error"] == pytest.approx((abs(1.1 / 1.05 - 1) + abs(2.2 / 2.0 - 1)) / 2)
    assert not verdict(s)[0]  # fewer than 100 points never meets the target


def test_missing_wheel_is_one_clear_reason(monkeypatch):
    monkeypatch.setattr(ns3build, "ns3_root", lambda: None)
    reason = ns3build.unavailable_reason()
    assert "ns3 package is not installed" in reason and "astrasim[crosscheck]" in reason


def test_reference_network_arguments():
    args = ReferenceNetwork("wifi", 4, WifiPhy("ac", 80, 9)).args()
    assert "--mode=wifi" in args and "--standard=ac" in args and "--width=80" in args and "--mcs=9" in args


@pytest.mark.slow
def test_one_ns3_transfer_matches_the_frame_arithmetic():
    """A lone 1 KiB message station -> AP -> station on an idle 802.11n 20 MHz MCS 7 channel: data
    PPDU, SIFS, ACK, AIFS, the AP's PPDU (it may add up to CWmin backoff slots)."""
    reason = ns3build.unavailable_reason()
    if reason:
        pytest.skip(reason)
    from astrasim.crosscheck.runner import run_point
    from astrasim.network import wifi80211 as w

    exe = ns3build.build(log=lambda m: None)
    r = run_point(exe, ReferenceNetwork("wifi", 2), "p2p", "direct", 1024, seed=1)
    phy = w.WifiPhy("n", 20, 7)
    ppdu = w.ppdu_s(phy, w.mpdu_bytes(1024))
    floor = w.exchange_s(phy, 1, w.mpdu_bytes(1024)) + ppdu
    assert r["complete"]
    assert floor - 1e-6 <= r["elapsed_s"] <= floor + w.CWMIN_BE * w.SLOT_S + 1e-6


def test_reused_runs_are_matched_by_schedule_not_position(tmp_path):
    """A runs.csv row carries its run key (network arguments + message schedule): a run of an
    older plan, or of a point that moved in the grid, is never attributed to another point."""
    from astrasim.crosscheck.campaign import load_runs, run_key

    grid = QUICK
    points = grid.points()
    keys = [run_key(p, grid) for p in points]
    assert len(set(keys)) == len(keys)
    rows = [
        {"point": 0, "key": keys[3], "seed": 1, "measured_s": 0.5, "complete": True},  # moved: now point 3
        {"point": 1, "key": "0123456789abcdef", "seed": 1, "measured_s": 9.0, "complete": True},
    ]  # stale
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    said = []
    runs = load_runs(path, points, grid, log=said.append)
    assert runs[["point", "seed", "measured_s"]].values.tolist() == [[3, 1, 0.5]]
    assert "1 of 2 runs" in said[0]
    pd.DataFrame(rows).drop(columns="key").to_csv(path, index=False)  # an old runs.csv without keys
    with pytest.raises(Exception, match="key"):
        load_runs(path, points, grid)
