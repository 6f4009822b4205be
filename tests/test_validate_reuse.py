"""`astrasim validate --reuse-measurements`: the published validation table is what today's
simulator predicts from its stored measurements (no root, no torch), and bad folders get one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from astrasim.cli import app
from astrasim.validation.campaign import repredict
from astrasim.validation.protocol import PROTOCOL, PROTOCOL_HASH
from astrasim.validation.report import PREDICTIONS
from astrasim.validation.reuse import read_results, read_summary
from astrasim.validation.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "validation"
SCENARIO = PUBLISHED / "validate.yaml"


# The published campaign in the default run; the earlier ones kept in validation/runs/ (measured
# before the protocol was frozen, or on an earlier one) are data, checked with --slow.
CAMPAIGNS = [
    PUBLISHED,
    *(pytest.param(p, marks=pytest.mark.slow, id=p.name) for p in sorted((PUBLISHED / "runs").glob("*/"))),
]
KEY = ["topology", "hosts", "bandwidth_mbps", "strategy"]


@pytest.mark.parametrize("folder", CAMPAIGNS, ids=lambda p: p.name)
def test_published_table_is_todays_prediction(folder):
    """Every published prediction (validation/, and with --slow every campaign in validation/runs/)
    is what the simulator predicts now from the stored measurements and microbenchmarks, both of
    them (from profiles and in-situ) where the campaign stored both: a change to the engine or the
    network model that moves them makes this fail until the tables are predicted again (or
    measured again)."""
    stored = read_results(folder)
    results, summary = repredict(load_settings(SCENARIO), folder, None, log=lambda *_: None)
    assert len(results) == len(stored) >= 24
    both = stored.merge(results, on=KEY, suffixes=("_stored", "_now"), validate="one_to_one")
    assert len(both) == len(stored)
    assert (both["protocol_now"] == both["protocol_stored"]).all()
    assert both["measured_s_now"].tolist() == pytest.approx(both["measured_s_stored"].tolist(), rel=1e-5)
    published = read_summary(folder)
    mine = summary[summary["group"] == "all"].iloc[0]
    theirs = published[published["group"] == "all"].iloc[0]
    kinds = [k for k in PREDICTIONS if f"predicted_{k}_s" in stored.columns]
    assert "in_situ" in kinds and (folder != PUBLISHED or kinds == list(PREDICTIONS))
    for kind in kinds:
        assert both[f"predicted_{kind}_s_now"].tolist() == pytest.approx(
            both[f"predicted_{kind}_s_stored"].tolist(), rel=1e-4
        ), kind
        for stat in ("median_abs_error", "max_abs_error"):
            assert mine[f"{stat}_{kind}"] == pytest.approx(theirs[f"{stat}_{kind}"], rel=1e-3), (kind, stat)


def test_published_campaign_is_on_the_frozen_protocol():
    """The published table was measured by today's harness, and says so in every summary."""
    assert (read_results(PUBLISHED)["protocol"] == PROTOCOL).all()
    assert (read_summary(PUBLISHED)["protocol"] == PROTOCOL).all()
    assert f"Protocol: {PROTOCOL} (harness {PROTOCOL_HASH})" in (PUBLISHED / "summary.md").read_text()


def test_cli_repredicts_into_a_folder(tmp_path):
    out = tmp_path / "again"
    result = CliRunner().invoke(
        app, ["validate", str(SCENARIO), "--reuse-measurements", str(PUBLISHED), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    for name in (
        "results.csv",
        "summary.csv",
        "summary.md",
        "profile.csv",
        "calibration.csv",
        "predicted_vs_measured.png",
    ):
        assert (out / name).stat().st_size > 0
    assert "Predicted again" in (out / "summary.md").read_text()


def _one_line_exit_2(args: list[str], *needles: str) -> None:
    result = CliRunner().invoke(app, ["validate", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0]


def test_bad_measurement_folders_get_one_line_and_write_nothing(tmp_path):
    out = tmp_path / "out"
    _one_line_exit_2(
        [str(SCENARIO), "--reuse-measurements", str(tmp_path / "nope"), "--out", str(out)], "results.csv", "not found"
    )
    broken = tmp_path / "broken"
    shutil.copytree(PUBLISHED, broken, ignore=shutil.ignore_patterns("ns3"))
    table = pd.read_csv(broken / "results.csv").drop(columns=["in_pass_ops"])
    table.to_csv(broken / "results.csv", index=False)
    _one_line_exit_2([str(SCENARIO), "--reuse-measurements", str(broken), "--out", str(out)], "in_pass_ops")
    other = tmp_path / "other.yaml"
    other.write_text(SCENARIO.read_text().replace("tokens: 128", "tokens: 64"))
    _one_line_exit_2([str(other), "--reuse-measurements", str(PUBLISHED), "--out", str(out)], "model")
    assert not out.exists()


def test_repredicting_needs_no_torch():
    """The reuse path imports nothing of torch (what the main-job install lacks)."""
    import subprocess
    import sys

    code = (
        "import sys, importlib.abc\n"
        "class B(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('no torch here')\n"
        "sys.meta_path.insert(0, B())\n"
        "from astrasim.validation.campaign import repredict\n"
        "from astrasim.validation.settings import load_settings\n"
        f"r, _ = repredict(load_settings({str(SCENARIO)!r}), {str(PUBLISHED)!r}, None, log=lambda *_: None)\n"
        "print(len(r))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(len(pd.read_csv(PUBLISHED / "results.csv")))


def test_calibration_rows_join_each_transfer_to_its_testbeds_fit():
    from astrasim.validation.calibrate import Calibration
    from astrasim.validation.campaign import calibration_rows

    raw = pd.DataFrame(
        [
            {"topology": "switch", "hosts": n, "bandwidth_mbps": bw, "bytes": 64, "median_s": 1e-3}
            for n in (2, 4)
            for bw in (20.0, 100.0)
        ]
    )
    cals = {
        ("switch", n, bw): Calibration("switch", 1e-3 * n, bw / 1000, 0.1, 8, n, bw)
        for n in (2, 4)
        for bw in (20.0, 100.0)
    }
    rows = calibration_rows(raw, cals)
    assert len(rows) == 4
    assert (rows["alpha_s"] == 1e-3 * rows["hosts"]).all() and (
        rows["efficiency"] == rows["bandwidth_mbps"] / 1000
    ).all()
    empty = calibration_rows(pd.DataFrame(), {})  # single-device points only: nothing calibrated
    assert len(empty) == 0 and {"topology", "hosts", "bandwidth_mbps", "alpha_s"} <= set(empty.columns)
