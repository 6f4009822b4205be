"""Shared set-up of the hostile-input tests (test_bad_input.py, test_bad_runs.py): a tmp folder with
a synthetic gpt2-s profile and the shipped catalogs, small scenarios, and the CLI run that must be
refused with one line."""

import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from astrasim.cli import app
from astrasim.models import get_model
from astrasim.strategies.synthetic import synthetic_profile

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0

CUSTOM_OK = {
    "nodes": [0, 1, "sw"],
    "edges": [{"u": 0, "v": "sw", "bandwidth_mbps": 50}, {"u": 1, "v": "sw", "bandwidth_mbps": 50}],
}


@pytest.fixture(name="env")  # a test module imports env_fixture; its tests take `env`
def env_fixture(tmp_path, monkeypatch):
    d = tmp_path / "profiles"
    d.mkdir()
    synthetic_profile([get_model("gpt2-s")], devices=(2, 4)).to_csv(d / "cpu.csv", index=False)
    for catalog in ("devices.yaml", "networks.yaml"):
        shutil.copy(ROOT / "profiles" / catalog, d / catalog)
    monkeypatch.setenv("ASTRASIM_PROFILES", str(d))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def scenario(tmp_path, file="s", **fields):
    data = {
        "models": "gpt2-s",
        "devices": 2,
        "strategies": ["single", "tp"],
        "network": {"topology": "switch", "bandwidth_mbps": 100},
    }
    for k, v in fields.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    p = tmp_path / f"{file}.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def refused(args, field, *, code=2):
    """Run the CLI; assert one stderr line 'error: <field>...', the exit code and no traceback."""
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == code, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + field), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


def nothing_written(tmp_path):
    results = tmp_path / "results"
    return not results.exists() or not any(results.iterdir())
