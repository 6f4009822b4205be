"""`astrasim accuracy`: the TinyViT's ASTRA path on the real kernels, the run grid, the CLI."""

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from astrasim.accuracy.train import AccuracySettings, ablation_table, grid_table, load_digits_split, run_accuracy
from astrasim.accuracy.vit import TinyViT
from astrasim.analysis.accuracy_data import join_accuracy, read_accuracy
from astrasim.cli import app
from astrasim.errors import UserError
from astrasim.kernels.vq import GroupedVQ

TINY = dict(groups=(2,), devices=(2,), seeds=(0,), ablations=False, pretrain_epochs=1, finetune_epochs=1, codebook=16)


@pytest.mark.parametrize("cls", ["distributed", "single"])
@pytest.mark.parametrize("n", [2, 3, 8])
def test_full_precision_astra_equals_the_exact_model(cls, n):
    """With no quantization (vq=None) ASTRA is sequence parallelism: exact, whatever the CLS mode."""
    torch.manual_seed(0)
    model = TinyViT().eval()
    images = torch.rand(5, 8, 8)
    logits, loss = model.forward_astra(images, [None] * len(model.blocks), n, cls)
    torch.testing.assert_close(logits, model(images), atol=1e-5, rtol=1e-5)
    assert float(loss) == 0.0


def test_quantized_path_trains_codebooks_and_weights():
    torch.manual_seed(0)
    model = TinyViT()
    vqs = nn.ModuleList(GroupedVQ(64, 4, 16, noise_lambda=1.0) for _ in model.blocks)
    logits, loss = model.forward_astra(torch.rand(3, 8, 8), vqs, 4, "distributed")
    (logits.sum() + loss).backward()
    assert loss > 0
    assert all(v.codebook.grad is not None and v.codebook.grad.abs().sum() > 0 for v in vqs)
    assert model.blocks[0].q_proj.weight.grad.abs().sum() > 0


def test_digits_ship_offline_and_split_is_stratified():
    d = load_digits_split()
    assert d.x_train.shape[1:] == (8, 8) and len(d.x_train) + len(d.x_test) == 1797
    assert float(d.x_train.max()) <= 1.0
    assert set(d.y_test.tolist()) == set(range(10))


def test_runs_cover_grid_and_ablations():
    cfg = AccuracySettings(
        groups=(1, 32), devices=(2, 4), seeds=(0,), ablation_seeds=(0, 1), ablation_groups=1, ablation_devices=4
    )
    runs = cfg.runs()
    assert len([r for r in runs if r[5] == "default"]) == 4 + 1  # grid + seed 1's default at the point
    assert {r[5] for r in runs} == {"default", "noise0", "single-cls"}
    assert all(r[1:3] == (1, 4) for r in runs if r[5] != "default")
    with pytest.raises(UserError, match="G=3"):
        AccuracySettings(groups=(3,)).check()
    with pytest.raises(UserError, match="N=17"):
        AccuracySettings(devices=(17,)).check()
    with pytest.raises(UserError, match="two seeds"):
        AccuracySettings(ablation_seeds=(0,)).check()


def test_run_rows_carry_seed_and_settings_and_join():
    df = run_accuracy(AccuracySettings(**TINY))
    assert list(df["strategy"]) == ["single", "astra"]
    assert {"seed", "noise_lambda", "cls", "codebook", "beta", "finetune_epochs", "value_before_finetune"} <= set(df)
    assert df["value"].between(0, 100).all()
    assert df.loc[1, "bits_per_token"] == 2 * 4  # G x log2 K
    res = pd.DataFrame(
        {
            "model": ["vit-tiny-digits"] * 3,
            "strategy": ["tp", "astra", "astra"],
            "groups": [0, 2, 4],
            "devices": [2, 2, 2],
        }
    )
    joined = join_accuracy(res, df.assign(devices=df["devices"].astype(float)))
    assert joined["accuracy"].iloc[0] == df["value"].iloc[0]  # tp joins the original model
    assert joined["accuracy"].iloc[1] == df["value"].iloc[1]
    assert pd.isna(joined["accuracy"].iloc[2])
    assert grid_table(df).shape == (1, 1)
    assert ablation_table(df).empty


def test_cli_writes_rows_atomically_and_rejects_bad_options(tmp_path):
    out = tmp_path / "acc.csv"
    r = CliRunner().invoke(
        app,
        [
            "accuracy",
            "--out",
            str(out),
            "--groups",
            "2",
            "--devices",
            "2",
            "--no-ablations",
            "--pretrain-epochs",
            "1",
            "--finetune-epochs",
            "1",
            "--codebook",
            "16",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = read_accuracy(out)  # a valid accuracy table
    assert len(rows) == 2 and "G=2" in r.output
    assert not list(tmp_path.glob(".acc.csv.*"))  # no temporary left behind
    for args, msg in (
        [["--groups", "3"], "G=3"],
        [["--devices", "x"], "comma-separated"],
        [["--ablation-point", "1"], "G,N"],
    ):
        r = CliRunner().invoke(app, ["accuracy", "--out", str(tmp_path / "b.csv"), *args, "--no-progress"])
        assert r.exit_code == 2 and msg in r.output, r.output
        assert not (tmp_path / "b.csv").exists()


def test_shipped_measured_table_is_valid_and_complete():
    from pathlib import Path

    rows = read_accuracy(Path(__file__).resolve().parents[1] / "profiles" / "accuracy_measured.csv")
    grid = rows[(rows["strategy"] == "astra") & (rows["variant"] == "default")]
    assert set(grid["groups"]) == {1, 2, 4, 8, 16, 32} and set(grid["devices"]) == {2.0, 4.0, 8.0}
    assert {"noise0", "single-cls"} <= set(rows["variant"])
    assert rows["value"].notna().all()


def test_codebook_defaults_to_the_astra_knob_default(tmp_path, monkeypatch):
    """`astrasim accuracy` trains with ASTRA's K unless told otherwise (one home: the knob's default)."""
    import astrasim.accuracy.train as train
    from astrasim.strategies import get

    seen = []

    def fake_run(cfg, progress=None):
        seen.append(cfg.codebook)
        raise UserError("stop here", field="test")

    monkeypatch.setattr(train, "run_accuracy", fake_run)
    res = CliRunner().invoke(app, ["accuracy", "--out", str(tmp_path / "a.csv"), "--no-progress"])
    k = get("astra").knob_defaults()["codebook"]
    assert res.exit_code == 2 and seen == [k] == [1024] and AccuracySettings().codebook == k
