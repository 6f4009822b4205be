"""The paper comparison: every headline claim gets astrasim's figure and where it is reached."""

import pytest
import yaml

from astrasim.analysis.paper import compare_with_paper, main, to_markdown
from astrasim.models import get_model
from astrasim.strategies.synthetic import synthetic_profile
from astrasim.sweep import run_sweep


@pytest.fixture()
def results(tmp_path, monkeypatch):
    d = tmp_path / "profiles"
    d.mkdir()
    synthetic_profile([get_model("gpt2-s")], devices=(4,)).to_csv(d / "cpu.csv", index=False)
    monkeypatch.setenv("ASTRASIM_PROFILES", str(d))
    p = tmp_path / "paper.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "models": "gpt2-s",
                "devices": 4,
                "strategies": [
                    "single",
                    "tp",
                    "sp",
                    {"name": "bp-ag", "nb": [1, 4]},
                    {"name": "bp-sp", "nb": [1, 4]},
                    {"name": "astra", "groups": [1, 16, 32]},
                ],
                "hardware": {"device": [None, "gtx-1660-ti-laptop"]},
                "network": {"topology": "ideal", "bandwidth_mbps": [10, 20, 50, 100, 500]},
            }
        )
    )
    out = tmp_path / "paper.csv"
    return p, out, run_sweep(p, out=out, progress=False)


def test_every_claim_per_hardware(results):
    _, _, df = results
    table = compare_with_paper(df)
    assert list(table.columns) == ["claim", "paper", "hardware", "astrasim", "where"]
    assert list(table["hardware"].unique()) == ["cpu", "gtx-1660-ti-laptop"]
    assert len(table) == 2 * 5
    cpu = table[table.hardware == "cpu"].set_index("claim")
    astra = df[(df.strategy == "astra") & (df.hardware == "cpu")]
    assert cpu.loc["ASTRA speedup over one device (max)", "astrasim"] == f"{astra.speedup_vs_single.max():.2f}x"
    assert cpu.loc["ASTRA speedup over one device (max)", "paper"] == "2.64x"
    bp = df[(df.strategy == "bp-ag") & (df.nb == 1) & (df.hardware == "cpu")].set_index("bandwidth_mbps").latency_s
    best = astra.groupby("bandwidth_mbps").latency_s.min()
    assert cpu.loc["ASTRA speedup over BP+AG Nb=1 (max)", "astrasim"] == f"{(bp / best).max():.2f}x"
    assert "Mbps" in cpu.loc["ASTRA speedup over BP+AG Nb=1 (max)", "where"]
    md = to_markdown(table)
    assert md.startswith("| claim | paper | hardware | astrasim | where |") and md.count("\n") == 11


def test_command_prints_the_table_from_results(results, capsys):
    _, out, _ = results
    main(["--results", str(out), "--markdown"])
    text = capsys.readouterr().out
    assert "15.25x" in text and "58.6-93.5 %" in text and "gtx-1660-ti-laptop" in text


def test_bp_claim_uses_detransformer_shape_when_both_shapes_are_swept(results):
    p, _, df = results
    both = yaml.safe_load(p.read_text())
    both["strategies"] = [
        "single",
        {"name": "bp-ag", "nb": 1, "decoupled_mlp": ["full", "sliced"]},
        {"name": "astra", "groups": 1},
    ]
    both["hardware"] = {"device": None}
    p.write_text(yaml.safe_dump(both))
    swept = run_sweep(p, out=p.with_suffix(".both.csv"), progress=False)
    assert set(swept.loc[swept.strategy == "bp-ag", "decoupled_mlp"]) == {"full", "sliced"}
    claim = compare_with_paper(swept).set_index("claim").loc["ASTRA speedup over BP+AG Nb=1 (max)", "astrasim"]
    full = swept[(swept.strategy == "bp-ag") & (swept.decoupled_mlp == "full")].set_index("bandwidth_mbps").latency_s
    best = swept[swept.strategy == "astra"].groupby("bandwidth_mbps").latency_s.min()
    assert claim == f"{(full / best).max():.2f}x"
    sliced = swept[(swept.strategy == "bp-ag") & (swept.decoupled_mlp == "sliced")].latency_s
    assert (sliced.values < full.sort_index().values).all()  # the sliced layer does less work
