"""`astrasim sweep`: results + plots beside them, best-strategy table, resume, clean errors."""

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from astrasim.cli import app
from astrasim.models import get_model
from astrasim.strategies.synthetic import synthetic_profile

runner = CliRunner()


@pytest.fixture()
def scenario(tmp_path, monkeypatch):
    d = tmp_path / "profiles"
    d.mkdir()
    synthetic_profile([get_model("vit-base"), get_model("gpt2-s")], devices=(2, 4)).to_csv(d / "cpu.csv", index=False)
    monkeypatch.setenv("ASTRASIM_PROFILES", str(d))
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "demo.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "models": ["vit-base", "gpt2-s"],
                "devices": [2, 4],
                "strategies": ["single", "sp", {"name": "astra", "groups": [1, 32]}],
                "network": {"bandwidth_mbps": [10, 100]},
            }
        )
    )
    return p


def test_sweep_writes_results_plots_and_prints_the_best(scenario, tmp_path):
    res = runner.invoke(app, ["sweep", str(scenario), "--workers", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "results" / "demo.csv"
    df = pd.read_csv(out)
    assert len(df) == 2 * (2 + 2 * 2 * 3)
    assert (tmp_path / "results" / "demo_latency.png").stat().st_size > 10_000
    assert (tmp_path / "results" / "demo_speedup.png").stat().st_size > 10_000
    assert "Best strategy" in res.stdout and "astra G=1" in res.stdout


def test_sweep_parquet_and_resume(scenario, tmp_path):
    out = tmp_path / "r.parquet"
    res = runner.invoke(app, ["sweep", str(scenario), "--out", str(out), "--no-plots", "--no-progress"])
    assert res.exit_code == 0, res.output
    first = out.read_bytes()
    res = runner.invoke(app, ["sweep", str(scenario), "--out", str(out), "--resume", "--no-plots", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == first
    # resuming a finished parquet reruns nothing: a changed row in it survives
    df = pd.read_parquet(out)
    df.loc[0, "latency_s"] = 123.0
    df.to_parquet(out, index=False)
    res = runner.invoke(app, ["sweep", str(scenario), "--out", str(out), "--resume", "--no-plots", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(out).loc[0, "latency_s"] == 123.0


BAD = [
    ("malformed", "devices: [2\n", "scenario:"),
    ("unknown field", "network: {speed: 3}\n", "network.speed:"),
    ("unknown strategy", "strategies: [zero]\n", "strategies[0].name:"),
    ("unknown model", "models: bert\n", "models[0]:"),
    ("G not dividing D", "strategies: [{name: astra, groups: [16, 7]}]\n", "strategies[0].groups:"),
    ("N > tokens", "models: vit-base\ndevices: [2, 500]\n", "devices:"),
    ("bandwidth", "network: {bandwidth_mbps: [10, -1]}\n", "network.bandwidth_mbps[1]:"),
    ("missing profile", "hardware: {profile: profiles/none.csv}\n", "hardware.profile:"),
    ("missing trace", "network: {trace: traces/none.csv}\n", "network.trace:"),
    ("missing profile key", "models: gpt2-m\n", "hardware.profile:"),
]


@pytest.mark.parametrize("what, text, field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_exit_2_and_touches_no_file(scenario, tmp_path, what, text, field):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    out = tmp_path / "results" / "bad.csv"
    out.parent.mkdir(exist_ok=True)
    out.write_text("keep me\n")
    res = runner.invoke(app, ["sweep", str(p), "--no-progress"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + field), res.stderr
    assert "Traceback" not in res.output
    assert out.read_text() == "keep me\n"
    assert sorted(x.name for x in out.parent.iterdir()) == ["bad.csv"]


def test_bad_options(scenario, tmp_path):
    res = runner.invoke(app, ["sweep", str(scenario), "--out", str(tmp_path / "r.txt")])
    assert res.exit_code == 2 and res.stderr.startswith("error: --out:")
    res = runner.invoke(app, ["sweep", str(scenario), "--workers", "0"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --workers:")
    res = runner.invoke(app, ["sweep", str(scenario), "--dask", "tcp://127.0.0.1:1", "--no-progress"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --dask:")
    assert not (tmp_path / "results" / "demo.csv").exists()
