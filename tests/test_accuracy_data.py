"""Accuracy tables: the shipped published numbers, validation, and the join onto sweep results."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from astrasim.analysis.accuracy_data import (
    check_matches,
    join_accuracy,
    read_accuracy,
    summarize_accuracy,
    validate_accuracy,
)
from astrasim.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "profiles" / "accuracy.csv"


def _acc(rows):
    cols = ["model", "task", "strategy", "groups", "devices", "metric", "value", "higher_is_better", "source"]
    return validate_accuracy(pd.DataFrame(rows, columns=cols))


def test_published_table_matches_the_paper():
    acc = read_accuracy(PUBLISHED)
    assert acc["source"].str.contains("2505.19342").any()
    key = acc.set_index(["model", "task", "strategy", "groups"])["value"]
    assert key[("vit-base", "cifar100", "single", 0)] == 92.53
    assert key[("vit-base", "cifar100", "astra", 32)] == 91.64
    assert key[("vit-base", "imagenet1k", "astra", 1)] == 77.39
    assert key[("gpt2-m", "wikitext103-finetuned", "astra", 32)] == 16.84
    assert key[("gpt2-s", "zeroshot", "astra", 32)] == 76.24
    assert key[("llama3-8b", "wikipedia", "astra", 1)] == 7.7336
    # exact baselines equal the original model
    for model, task in acc[["model", "task"]].drop_duplicates().itertuples(index=False):
        v = [key[(model, task, s, 0)] for s in ("single", "tp", "sp")]
        assert v[0] == v[1] == v[2] and not np.isnan(v[0])
    # G=16 was not published: present but missing, never invented
    g16 = acc[(acc["strategy"] == "astra") & (acc["groups"] == 16)]
    assert len(g16) == acc[["model", "task"]].drop_duplicates().shape[0]
    assert g16["value"].isna().all()
    # every published value cites the paper
    assert acc.loc[acc["value"].notna(), "source"].str.contains("arXiv 2505.19342").all()


def test_join_rule_model_strategy_groups_and_missing_stays_missing():
    acc = read_accuracy(PUBLISHED)
    res = pd.DataFrame(
        {
            "model": ["vit-base", "vit-base", "vit-base", "vit-base", "vit-base", "gpt2-s", "gpt2-s"],
            "strategy": ["single", "tp", "astra", "astra", "bp-ag", "astra", "astra"],
            "groups": [0, 0, 32, 16, 0, 1, 32],
            "devices": [1, 4, 4, 4, 4, 4, 8],
            "latency_s": [1.0, 2, 3, 4, 5, 6, 7],
        }
    )
    out = join_accuracy(res, acc)
    assert list(out["accuracy"].iloc[:3]) == [92.53, 92.53, 91.64]
    assert out["accuracy"].iloc[[3, 4, 5]].isna().all()  # G=16, BP, GPT2-S G=1: unpublished
    assert out["accuracy"].iloc[6] == 76.24
    assert list(out["accuracy_metric"].iloc[[0, 6]]) == ["top1_pct", "perplexity"]
    assert list(out["accuracy_task"].iloc[[0, 6]]) == ["cifar100", "zeroshot"]
    assert list(out["latency_s"]) == list(res["latency_s"])  # results kept whole, in order
    imagenet = join_accuracy(res, acc, task={"vit-base": "imagenet1k"})
    assert imagenet["accuracy"].iloc[2] == 80.28 and imagenet["accuracy"].iloc[6] == 76.24


def test_groups_only_count_for_astra_and_devices_rows_win():
    acc = _acc(
        [
            ("m", "t", "sp", 0, "", "top1_pct", 90, "true", "s"),
            ("m", "t", "astra", 4, "", "top1_pct", 80, "true", "s"),
            ("m", "t", "astra", 4, 2, "top1_pct", 85, "true", "s"),
            ("m", "t", "astra", 4, 2, "top1_pct", 87, "true", "s"),
        ]
    )
    res = pd.DataFrame(
        {
            "model": ["m"] * 4,
            "strategy": ["sp", "astra", "astra", "astra"],
            "groups": [7, 4, 4, 8],
            "devices": [2, 2, 4, 2],
        }
    )
    out = join_accuracy(res, acc)
    assert out["accuracy"].iloc[0] == 90  # sp joins with groups 0 whatever the row says
    assert out["accuracy"].iloc[1] == 86 and out["accuracy_n"].iloc[1] == 2
    assert out["accuracy_std"].iloc[1] == pytest.approx(np.std([85, 87], ddof=1))
    assert out["accuracy"].iloc[2] == 80  # no devices=4 row: the any-count row
    assert np.isnan(out["accuracy"].iloc[3])


def test_ablation_variants_are_not_joined():
    acc = _acc([("m", "t", "astra", 4, "", "top1_pct", 80, "true", "s")] * 2)
    acc.loc[1, ["variant", "value"]] = ["noise0", 10.0]
    out = join_accuracy(pd.DataFrame({"model": ["m"], "strategy": ["astra"], "groups": [4], "devices": [2]}), acc)
    assert out["accuracy"].iloc[0] == 80


def test_strict_join_rejects_rows_that_match_no_result():
    acc = _acc([("vit_base", "t", "astra", 32, "", "top1_pct", 80, "true", "mine")])
    res = pd.DataFrame({"model": ["vit-base"], "strategy": ["astra"], "groups": [32], "devices": [4]})
    with pytest.raises(UserError, match="vit_base.*matches no result"):
        join_accuracy(res, acc, strict=True)
    check_matches(res, _acc([("vit-base", "t", "astra", 32, 4, "top1_pct", 80, "true", "mine")]))
    with pytest.raises(UserError, match="devices=8"):
        check_matches(res, _acc([("vit-base", "t", "astra", 32, 8, "top1_pct", 80, "true", "mine")]))


@pytest.mark.parametrize(
    "col, val, match",
    [
        ("strategy", "bp", "unknown strategy 'bp'"),
        ("groups", "-1", "non-negative integer"),
        ("value", "ninety", "not a number"),
        ("higher_is_better", "maybe", "not true/false"),
        ("model", "", "empty model"),
    ],
)
def test_bad_rows_name_the_column(col, val, match):
    row = dict(
        model="m",
        task="t",
        strategy="sp",
        groups="0",
        metric="top1_pct",
        value="90",
        higher_is_better="true",
        source="s",
    )
    row[col] = val
    with pytest.raises(UserError, match=match) as info:
        validate_accuracy(pd.DataFrame([row]).replace("", None))
    assert info.value.field == col


def test_missing_column_and_file(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("model,task,strategy,groups,metric,value,source\nm,t,sp,0,top1_pct,1,s\n")
    with pytest.raises(UserError, match="higher_is_better"):
        read_accuracy(p)
    with pytest.raises(UserError, match="not found"):
        read_accuracy(tmp_path / "nope.csv")


def test_astra_rows_need_groups_and_one_direction_per_metric():
    with pytest.raises(UserError, match="groups >= 1"):
        _acc([("m", "t", "astra", 0, "", "top1_pct", 80, "true", "s")])
    with pytest.raises(UserError, match="both higher- and lower"):
        _acc([("m", "t", "sp", 0, "", "ppl", 8, "true", "s"), ("m", "u", "sp", 0, "", "ppl", 8, "false", "s")])


def test_summarize_over_seeds():
    acc = _acc([("m", "t", "astra", 4, 2, "top1_pct", v, "true", "s") for v in (80, 82, 84)])
    s = summarize_accuracy(acc)
    assert list(s[["mean", "n"]].iloc[0]) == [82, 3]
    assert s["std"].iloc[0] == pytest.approx(2.0)
