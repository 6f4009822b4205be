"""`astrasim simulate`: one point's breakdown as a table or JSON, a Chrome trace, clean errors."""

import json
from pathlib import Path

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
    p = tmp_path / "s.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "models": ["gpt2-s", "vit-base"],
                "devices": [4, 2],
                "strategies": [{"name": "astra", "groups": [16, 32]}, "tp"],
                "network": {"bandwidth_mbps": [50, 10]},
            }
        )
    )
    return p


def test_json_breakdown_of_the_first_point(scenario):
    res = runner.invoke(app, ["simulate", str(scenario), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["model"], out["strategy"], out["groups"], out["devices"], out["bandwidth_mbps"]) == (
        "gpt2-s",
        "astra",
        16,
        4,
        50.0,
    )
    assert len(out["per_device"]) == 4
    for d in out["per_device"]:
        assert d["compute_s"] + d["exposed_comm_s"] + d["idle_s"] == pytest.approx(out["latency_s"])
    assert out["comm_bits"] > 0 and out["n_messages"] > 0 and out["speedup_vs_single"] > 0


def test_set_picks_another_point_and_trace_is_written(scenario, tmp_path):
    trace = tmp_path / "t.json"
    res = runner.invoke(
        app,
        [
            "simulate",
            str(scenario),
            "--set",
            "strategies=tp",
            "--set",
            "devices=2",
            "--set",
            "models=vit-base",
            "--trace",
            str(trace),
        ],
    )
    assert res.exit_code == 0, res.output
    for word in ("vit-base", "tp on 2", "latency", "exposed comm", "bits sent", "idle"):
        assert word in res.stdout
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e.get("name") == "attn" for e in events)


BAD = [
    ("malformed", "models: [gpt2-s\n", "scenario:"),
    ("unknown field", "foo: 1\n", "foo:"),
    ("unknown strategy", "strategies: [no-such-strategy]\n", "strategies[0].name:"),
    ("unknown model", "models: [bert]\n", "models[0]:"),
    ("G not dividing D", "strategies: [{name: astra, groups: 5}]\n", "strategies[0].groups:"),
    ("N > tokens", "tokens: 3\ndevices: 4\n", "devices:"),
    ("bandwidth", "network: {bandwidth_mbps: 0}\n", "network.bandwidth_mbps[0]:"),
    ("missing profile", "hardware: {profile: nowhere}\n", "hardware.profile:"),
    ("missing trace", "network: {trace: gone.csv}\n", "network.trace:"),
    ("missing profile key", "devices: 8\nstrategies: [sp]\n", "hardware.profile:"),
]


@pytest.mark.parametrize("what, text, field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_exit_2(scenario, tmp_path, what, text, field):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    trace = tmp_path / "t.json"
    res = runner.invoke(app, ["simulate", str(p), "--trace", str(trace)])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + field), res.stderr
    assert "Traceback" not in res.output
    assert not trace.exists()


def test_bad_set_value(scenario):
    res = runner.invoke(app, ["simulate", str(scenario), "--set", "devices"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --set:")
    res = runner.invoke(app, ["simulate", str(Path("nowhere.yaml"))])
    assert res.exit_code == 2 and "not found" in res.stderr
