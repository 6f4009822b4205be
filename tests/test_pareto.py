"""Pareto frontiers: exact small cases and the invariants (hypothesis)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from astrasim.analysis.pareto import accuracy_objectives, frontier, mark_accuracy_pareto, mark_pareto, pareto_mask
from astrasim.errors import UserError


def _dominates(a, b):
    return np.all(a <= b) and np.any(a < b)


def test_small_exact_case_latency_vs_accuracy():
    df = pd.DataFrame(
        {
            "name": ["fast-bad", "slow-good", "dominated", "mid", "twin-of-mid", "unknown"],
            "latency_s": [1.0, 5.0, 3.0, 2.0, 2.0, 0.1],
            "accuracy": [80.0, 92.0, 85.0, 90.0, 90.0, np.nan],
        }
    )
    out = mark_pareto(df, {"latency_s": "min", "accuracy": "max"})
    assert list(out["pareto"]) == ["frontier", "frontier", "dominated", "frontier", "frontier", "missing"]
    assert len(out) == len(df)  # nothing dropped
    assert list(frontier(df, {"latency_s": "min", "accuracy": "max"})["name"]) == [
        "fast-bad",
        "mid",
        "twin-of-mid",
        "slow-good",
    ]


def test_groups_get_their_own_frontier():
    df = pd.DataFrame({"bw": [10, 10, 20, 20], "latency_s": [1, 2, 5, 6], "bits": [2, 1, 9, 9]})
    out = mark_pareto(df, {"latency_s": "min", "bits": "min"}, by=["bw"])
    assert list(out["pareto"]) == ["frontier", "frontier", "frontier", "dominated"]


def test_perplexity_sense_comes_from_the_metric():
    df = pd.DataFrame(
        {
            "model": ["g", "g", "v", "v"],
            "latency_s": [1, 2, 1, 2],
            "accuracy": [70.0, 60.0, 80.0, 90.0],
            "accuracy_metric": ["ppl", "ppl", "top1", "top1"],
            "accuracy_higher_is_better": [False, False, True, True],
        }
    )
    out = mark_accuracy_pareto(df, by=["model"])
    # perplexity: 60 at 2 s is better than 70 at 1 s -> both on the frontier; top-1 likewise
    assert list(out["pareto"]) == ["frontier"] * 4
    df.loc[1, "accuracy"] = 75.0  # now slower AND worse perplexity
    assert list(mark_accuracy_pareto(df, by=["model"])["pareto"]) == ["frontier", "dominated", "frontier", "frontier"]
    with pytest.raises(UserError, match="mix higher- and lower"):
        accuracy_objectives(df)


def test_bad_objectives():
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(UserError, match="no column 'b'"):
        mark_pareto(df, {"b": "min"})
    with pytest.raises(UserError, match="'min' or 'max'"):
        mark_pareto(df, {"a": "up"})


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(0, 40), st.integers(1, 3)), elements=st.integers(0, 6).map(float)),
    st.randoms(use_true_random=False),
)
def test_frontier_invariants(values, rnd):
    k = values.shape[1]
    senses = ["min"] * k
    mask = pareto_mask(values, senses)
    front, rest = values[mask], values[~mask]
    # no frontier point is dominated by any point
    for f in front:
        assert not any(_dominates(v, f) for v in values)
    # every dominated point is dominated by a frontier point
    for r in rest:
        assert any(_dominates(f, r) for f in front)
    # order does not matter
    perm = list(range(len(values)))
    rnd.shuffle(perm)
    assert np.array_equal(pareto_mask(values[perm], senses), mask[perm])
    # max on negated values is the same frontier
    assert np.array_equal(pareto_mask(-values, ["max"] * k), mask)
