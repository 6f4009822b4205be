"""Pareto frontiers over sweep results: which configurations are not beaten on every axis.

A row *dominates* another when it is at least as good on every objective and strictly better
on one. Frontier rows are dominated by no row. Nothing is dropped: ``mark_pareto`` adds a
``pareto`` column with one of

    "frontier"  - on the frontier,
    "dominated" - some row with all objectives known dominates it,
    "missing"   - an objective is missing (NaN, e.g. an unpublished accuracy); such a row is
                  compared with nobody and dominates nobody.

Objectives are a mapping ``{column: "min" | "max"}``, e.g.
``{"latency_s": "min", "accuracy": "max"}``. For accuracy metrics where lower is better
(perplexity) use ``accuracy_objectives`` to get the right sense from the joined column
``accuracy_higher_is_better``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from astrasim.errors import UserError

FRONTIER, DOMINATED, MISSING = "frontier", "dominated", "missing"


def pareto_mask(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` [n, k] (no NaN) under ``senses``
    ("min"/"max" per column). Duplicate points are all kept (neither strictly dominates)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(senses):
        raise ValueError("values must be [n, k] with one sense per column")
    sign = np.array([1.0 if s == "min" else -1.0 for s in senses])
    v = v * sign  # now minimize everything
    n = len(v)
    keep = np.ones(n, dtype=bool)
    # visit in lexicographic order: a row can only be dominated by rows before it in this order
    order = np.lexsort(v.T[::-1]) if n else np.array([], dtype=int)
    front: list[int] = []
    for i in order:
        if front:
            f = v[front]
            dominated = np.all(f <= v[i], axis=1) & np.any(f < v[i], axis=1)
            if dominated.any():
                keep[i] = False
                continue
        front.append(i)
    return keep


def _check_objectives(df: pd.DataFrame, objectives: Mapping[str, str]) -> None:
    if not objectives:
        raise UserError("give at least one objective", field="objectives")
    for col, sense in objectives.items():
        if col not in df.columns:
            raise UserError(f"no column '{col}' in the results; have {list(df.columns)}", field="objectives")
        if sense not in ("min", "max"):
            raise UserError(f"sense of '{col}' must be 'min' or 'max', got '{sense}'", field="objectives")


def mark_pareto(
    df: pd.DataFrame, objectives: Mapping[str, str], *, by: Sequence[str] | None = None, column: str = "pareto"
) -> pd.DataFrame:
    """Return a copy of ``df`` with ``column`` = frontier/dominated/missing (see module doc).
    ``by``: compute one frontier per group (e.g. per model and bandwidth)."""
    _check_objectives(df, objectives)
    out = df.copy()
    cols = list(objectives)
    vals = out[cols].apply(pd.to_numeric, errors="coerce")
    known = vals.notna().all(axis=1).to_numpy()
    status = np.where(known, DOMINATED, MISSING).astype(object)
    groups = (
        [np.arange(len(out))]
        if not by
        else [
            np.asarray(ix)
            for ix in out.reset_index(drop=True).groupby(list(by), dropna=False, sort=False).indices.values()
        ]
    )
    senses = [objectives[c] for c in cols]
    arr = vals.to_numpy(dtype=float)
    for ix in groups:
        ix = ix[known[ix]]
        if len(ix):
            status[ix[pareto_mask(arr[ix], senses)]] = FRONTIER
    out[column] = status
    return out


def frontier(df: pd.DataFrame, objectives: Mapping[str, str], *, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Only the frontier rows, sorted by the first objective (a view for printing)."""
    marked = mark_pareto(df, objectives, by=by)
    first = next(iter(objectives))
    return marked[marked["pareto"] == FRONTIER].sort_values([*(by or []), first], kind="stable")


def accuracy_objectives(df: pd.DataFrame, x: str = "latency_s", x_sense: str = "min") -> dict[str, str]:
    """Objectives {x: x_sense, "accuracy": max-or-min} with the accuracy sense taken from the
    joined ``accuracy_higher_is_better`` column (perplexity: lower is better). Raises UserError
    when the rows mix metrics of both directions (compare one metric at a time)."""
    if "accuracy" not in df.columns:
        raise UserError("results carry no accuracy; join an accuracy table first", field="accuracy")
    hib = df.get("accuracy_higher_is_better")
    senses = set(hib.dropna().astype(bool)) if hib is not None else {True}
    if len(senses) > 1:
        raise UserError(
            "rows mix higher- and lower-is-better accuracy metrics; group by model/metric first", field="accuracy"
        )
    return {x: x_sense, "accuracy": "max" if senses in ({True}, set()) else "min"}


def mark_accuracy_pareto(
    df: pd.DataFrame,
    x: str = "latency_s",
    *,
    x_sense: str = "min",
    by: Sequence[str] = ("model",),
    column: str = "pareto",
) -> pd.DataFrame:
    """``mark_pareto`` of (x, accuracy) with one frontier per ``by`` group, the accuracy sense
    of each group taken from its metric (top-1: max; perplexity: min). Rows without accuracy
    are marked missing."""
    if "accuracy" not in df.columns:
        raise UserError("results carry no accuracy; join an accuracy table first", field="accuracy")
    work = df.reset_index(drop=True)
    status = np.full(len(work), MISSING, dtype=object)
    known = work["accuracy"].notna()
    keys = [*by, "accuracy_metric"]
    for ix in work[known].groupby(keys, dropna=False, sort=False).indices.values():
        part = work[known].iloc[ix]
        status[part.index.to_numpy()] = mark_pareto(part, accuracy_objectives(part, x, x_sense))["pareto"].to_numpy()
    out = df.copy()
    out[column] = status
    return out
