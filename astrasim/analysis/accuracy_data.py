"""Accuracy data: read and validate accuracy tables, and join them onto sweep results.

An accuracy table is a CSV with one row per (model, task, strategy, groups, metric) value.
Required columns, in any order:

    model, task, strategy, groups, metric, value, higher_is_better, source

Optional columns: ``devices`` (the row holds only for that device count; empty = any count),
``variant`` (empty or ``default`` = the method as deployed; anything else, e.g. ``noise0`` or
``single-cls``, is an ablation and is never joined onto results), ``notes``, ``seed`` and any
setting columns (they are kept and ignored by the join).

``value`` may be empty: the point is known to be missing (for example ASTRA G=16, which the
paper did not publish). Missing stays missing: nothing is interpolated or invented.

Join rule (``join_accuracy``): a sweep result row gets the accuracy rows whose key ``(model,
strategy, groups)`` equals its own, where groups counts only for ``astra`` (every other strategy
joins with groups 0) and single, tp and sp are one key (they are exact: the original model's
accuracy, so an ``original``-model row written as any of them serves all three), restricted to one
task per model (the requested task, or the model's first task in file order) and, for rows that name
``devices``, to results with that device count (a devices-specific row wins over an any-count row).
Several matching rows (seeds, several sources) are averaged: ``accuracy`` is their mean,
``accuracy_std`` the sample standard deviation and ``accuracy_n`` their count. Results with no
matching value keep ``accuracy`` = NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from astrasim.errors import UserError
from astrasim.strategies import STRATEGIES
from astrasim.strategies.registry import exact_strategies

REQUIRED_COLUMNS = ("model", "task", "strategy", "groups", "metric", "value", "higher_is_better", "source")
STRATEGY_NAMES = tuple(STRATEGIES)
DEFAULT_VARIANTS = ("", "default")
JOIN_COLUMNS = (
    "accuracy",
    "accuracy_std",
    "accuracy_n",
    "accuracy_task",
    "accuracy_metric",
    "accuracy_higher_is_better",
    "accuracy_source",
)

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _fail(where: str, column: str, message: str) -> UserError:
    return UserError(f"{where}: {message}", field=column)


def validate_accuracy(df: pd.DataFrame, where: str = "accuracy table") -> pd.DataFrame:
    """Check columns and values of an accuracy table; return a normalized copy.

    Normalized: ``groups`` int (0 for non-astra strategies), ``value`` float (NaN = missing),
    ``higher_is_better`` bool, ``devices`` float (NaN = any count), ``variant`` str.
    Raises UserError naming the file, the row and the column of the first problem.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise _fail(where, missing[0], f"missing column(s) {missing}; required: {list(REQUIRED_COLUMNS)}")
    out = df.copy()
    for col in ("model", "task", "strategy", "metric", "source"):
        out[col] = out[col].astype("string").str.strip()
        bad = out[col].isna() | (out[col] == "")
        if bad.any():
            raise _fail(where, col, f"row {int(np.flatnonzero(bad)[0]) + 1} has an empty {col}")
    bad = ~out["strategy"].isin(STRATEGY_NAMES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(
            where,
            "strategy",
            f"row {i + 1} has unknown strategy '{out['strategy'].iloc[i]}'; use one of {list(STRATEGY_NAMES)}",
        )

    groups = pd.to_numeric(out["groups"], errors="coerce")
    bad = groups.isna() | (groups < 0) | (groups != groups.round())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(
            where, "groups", f"row {i + 1}: groups must be a non-negative integer, got '{out['groups'].iloc[i]}'"
        )
    grouped = out["strategy"].map(_uses_groups).astype(bool)
    bad = grouped & (groups < 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(where, "groups", f"row {i + 1}: {out['strategy'].iloc[i]} rows need groups >= 1")
    out["groups"] = groups.where(grouped, 0).astype(int)

    raw = out["value"]
    value = pd.to_numeric(raw, errors="coerce")
    bad = value.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(where, "value", f"row {i + 1}: value '{raw.iloc[i]}' is not a number (leave it empty when missing)")
    out["value"] = value.astype(float)

    hib = out["higher_is_better"].astype(str).str.strip().str.lower()
    bad = ~hib.isin(_TRUE | _FALSE)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(where, "higher_is_better", f"row {i + 1}: '{out['higher_is_better'].iloc[i]}' is not true/false")
    out["higher_is_better"] = hib.isin(_TRUE)
    # one direction per metric, or Pareto and floors would be ambiguous
    directions = out.groupby("metric")["higher_is_better"].nunique()
    if (directions > 1).any():
        metric = directions[directions > 1].index[0]
        raise _fail(where, "higher_is_better", f"metric '{metric}' is marked both higher- and lower-is-better")

    if "devices" in out.columns:
        dev = pd.to_numeric(out["devices"], errors="coerce")
        bad = dev.notna() & ((dev < 1) | (dev != dev.round()))
        if bad.any():
            raise _fail(
                where, "devices", f"row {int(np.flatnonzero(bad)[0]) + 1}: devices must be a positive integer or empty"
            )
        out["devices"] = dev.astype(float)
    else:
        out["devices"] = np.nan
    if "variant" in out.columns:
        out["variant"] = out["variant"].fillna("").astype(str).str.strip()
    else:
        out["variant"] = ""
    return out


def read_accuracy(path: str | Path) -> pd.DataFrame:
    """Read and validate one accuracy CSV; adds a ``file`` column. UserError on a bad file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"accuracy file '{p}' not found", field="accuracy")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""], comment=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read accuracy file '{p}': {str(exc).splitlines()[0]}", field="accuracy") from None
    out = validate_accuracy(df, where=str(p))
    out["file"] = str(p)
    return out


def load_accuracy(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Read several accuracy files into one validated table (file order kept)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames = [read_accuracy(p) for p in paths]
    if not frames:
        return validate_accuracy(pd.DataFrame(columns=list(REQUIRED_COLUMNS)))
    return pd.concat(frames, ignore_index=True)


EXACT_STRATEGIES = exact_strategies()


def _uses_groups(name: str) -> bool:
    """Whether accuracy rows of this strategy are keyed by G (its knobs have groups)."""
    s = STRATEGIES.get(str(name))
    return s is not None and "groups" in s.Knobs.model_fields


def _key_strategy(df: pd.DataFrame) -> pd.Series:
    """Join key of the strategy: exact strategies (single, tp, sp, ...: the original model's
    accuracy) share one key, so a row of any of them serves all of them."""
    s = df["strategy"].astype(str)
    return s.where(~s.isin(EXACT_STRATEGIES), "exact")


def _key_groups(df: pd.DataFrame) -> pd.Series:
    g = pd.to_numeric(df["groups"], errors="coerce").fillna(0).astype(int)
    return g.where(df["strategy"].map(_uses_groups).astype(bool), 0)


def default_tasks(acc: pd.DataFrame) -> dict[str, str]:
    """The task used for each model when none is asked for: the model's first task in file order."""
    return {str(m): str(t) for m, t in acc.drop_duplicates("model")[["model", "task"]].itertuples(index=False)}


def select_task(acc: pd.DataFrame, task: str | dict[str, str] | None = None, metric: str | None = None) -> pd.DataFrame:
    """Keep one task (and one metric) per model: ``task`` by name, a per-model mapping, or None =
    each model's first task. Models whose requested task is absent are dropped."""
    if acc.empty:
        return acc
    if metric is not None:
        acc = acc[acc["metric"] == metric]
    if task is None:
        chosen = default_tasks(acc)
    elif isinstance(task, str):
        chosen = {m: task for m in acc["model"].unique()}
    else:
        chosen = {**default_tasks(acc), **task}
    keep = acc["task"] == acc["model"].map(chosen)
    acc = acc[keep.fillna(False)]
    # one metric per (model, task): the first listed
    first_metric = acc.drop_duplicates(["model", "task"]).set_index(["model", "task"])["metric"]
    idx = pd.MultiIndex.from_frame(acc[["model", "task"]])
    return acc[acc["metric"].to_numpy() == first_metric.reindex(idx).to_numpy()]


def _aggregate(acc: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    def sources(s: pd.Series) -> str:
        return "; ".join(dict.fromkeys(s.dropna().astype(str)))

    g = acc.groupby(keys, dropna=False, sort=False)
    out = g.agg(
        accuracy=("value", "mean"),
        accuracy_std=("value", "std"),
        accuracy_n=("value", "count"),
        accuracy_task=("task", "first"),
        accuracy_metric=("metric", "first"),
        accuracy_higher_is_better=("higher_is_better", "first"),
        accuracy_source=("source", sources),
    )
    return out.reset_index()


def unmatched_rows(results: pd.DataFrame, acc: pd.DataFrame) -> pd.DataFrame:
    """Accuracy rows (with a value) whose key matches no result row (model, strategy, groups,
    and devices when the row names it)."""
    if acc.empty:
        return acc
    res = pd.DataFrame(
        {
            "model": results["model"].astype(str),
            "strategy": _key_strategy(results),
            "groups": _key_groups(results),
            "devices": pd.to_numeric(results.get("devices", np.nan), errors="coerce"),
        }
    )
    any_keys = set(res[["model", "strategy", "groups"]].itertuples(index=False, name=None))
    dev_keys = set(res[["model", "strategy", "groups", "devices"]].itertuples(index=False, name=None))
    rows = acc[acc["value"].notna()]
    g = _key_groups(rows)
    hit = [
        ((m, s, k) in any_keys) if np.isnan(d) else ((m, s, k, float(d)) in dev_keys)
        for m, s, k, d in zip(rows["model"].astype(str), _key_strategy(rows), g, rows["devices"])
    ]
    return rows[~np.asarray(hit, dtype=bool)]


def check_matches(results: pd.DataFrame, acc: pd.DataFrame) -> None:
    """Raise UserError when an accuracy row with a value matches no sweep result (a typo in a model
    or strategy name, a G that was not simulated...)."""
    bad = unmatched_rows(results, acc)
    if bad.empty:
        return
    row = bad.iloc[0]
    where = row.get("file", "accuracy table")
    dev = "" if np.isnan(row["devices"]) else f", devices={int(row['devices'])}"
    have = sorted(set(zip(results["model"].astype(str), results["strategy"].astype(str), _key_groups(results))))
    raise UserError(
        f"{where}: row (model={row['model']}, strategy={row['strategy']}, groups={int(row['groups'])}{dev}) "
        f"matches no result; results have (model, strategy, groups) in {have[:8]}"
        + (" ..." if len(have) > 8 else "")
        + f" ({len(bad)} unmatched row(s))",
        field="accuracy",
    )


def join_accuracy(
    results: pd.DataFrame,
    acc: pd.DataFrame,
    *,
    task: str | dict[str, str] | None = None,
    metric: str | None = None,
    strict: bool = False,
) -> pd.DataFrame:
    """Return ``results`` with the accuracy columns (JOIN_COLUMNS) added by the join rule of this
    module. ``strict``: first raise UserError if any accuracy row matches no result row."""
    for col in ("model", "strategy"):
        if col not in results.columns:
            raise UserError(f"results have no '{col}' column; cannot join accuracy", field="results")
    if strict:
        check_matches(results, acc)
    acc = acc[acc["variant"].isin(DEFAULT_VARIANTS)] if "variant" in acc.columns else acc
    acc = select_task(acc, task, metric)
    out = results.drop(columns=[c for c in JOIN_COLUMNS if c in results.columns]).copy()
    out["_model"] = out["model"].astype(str)
    out["_strategy"] = _key_strategy(out)
    out["_groups"] = _key_groups(out)
    out["_devices"] = pd.to_numeric(out["devices"], errors="coerce") if "devices" in out.columns else np.nan
    if acc.empty:
        joined = out.assign(**{c: np.nan for c in JOIN_COLUMNS})
    else:
        acc = acc.assign(
            _model=acc["model"].astype(str),
            _strategy=_key_strategy(acc),
            _groups=_key_groups(acc),
            _devices=acc["devices"],
        )
        keys = ["_model", "_strategy", "_groups"]
        # the same number listed for single, tp and sp is one measurement, not three
        same = [*keys, "_devices", "task", "metric", "value", "source", *(["seed"] if "seed" in acc.columns else [])]
        acc = acc.drop_duplicates(subset=same)
        specific = _aggregate(acc[acc["_devices"].notna()], keys + ["_devices"])
        generic = _aggregate(acc[acc["_devices"].isna()], keys)
        joined = out.merge(specific, on=keys + ["_devices"], how="left")
        fallback = out[keys].merge(generic, on=keys, how="left")
        use_generic = joined["accuracy"].isna() & joined["accuracy_task"].isna()
        for col in JOIN_COLUMNS:
            joined[col] = joined[col].where(~use_generic, fallback[col].to_numpy())
        joined.index = out.index
    joined["accuracy"] = pd.to_numeric(joined["accuracy"], errors="coerce").astype(float)
    joined["accuracy_std"] = pd.to_numeric(joined["accuracy_std"], errors="coerce").astype(float)
    joined["accuracy_n"] = pd.to_numeric(joined["accuracy_n"], errors="coerce").fillna(0).astype(int)
    return joined.drop(columns=["_model", "_strategy", "_groups", "_devices"])


def summarize_accuracy(
    acc: pd.DataFrame, by: Sequence[str] = ("model", "task", "strategy", "groups", "devices", "variant", "metric")
) -> pd.DataFrame:
    """Mean, sample std and count of ``value`` per group (e.g. over seeds): columns mean, std, n."""
    by = [c for c in by if c in acc.columns]
    g = acc.groupby(by, dropna=False, sort=True)["value"]
    return g.agg(mean="mean", std="std", n="count").reset_index()
