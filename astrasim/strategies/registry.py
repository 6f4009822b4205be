"""The strategy registry: every module of this package that exports `STRATEGY` is a strategy.

Everything else asks here (names, knobs, labels, colours, op names): adding a strategy is one new
module in astrasim/strategies/ plus its tests (docs/strategies.md, "Adding a strategy").
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from astrasim.strategies.base import Knobs, Strategy

_SKIP = {"base", "registry", "synthetic", "lastdevice"}


def _discover() -> dict[str, Strategy]:
    """The modules next to this one that export STRATEGY (found by file, so the registry does not
    import its own package)."""
    found: list[Strategy] = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__package__}.{info.name}")
        strategy = getattr(mod, "STRATEGY", None)
        if isinstance(strategy, Strategy):
            found.append(strategy)
    found.sort(key=lambda s: (s.rank, s.name))
    check_distinct(found)
    return {s.name: s for s in found}


def check_distinct(strategies: list[Strategy]) -> None:
    """Names, colours and markers tell strategies apart in every table and plot: two strategies
    sharing one is a programming error (RuntimeError naming both)."""
    for attr in ("name", "color", "marker"):
        seen: dict[str, str] = {}
        for s in strategies:
            value = getattr(s, attr)
            if value in seen:
                raise RuntimeError(
                    f"strategies '{seen[value]}' and '{s.name}' share the {attr} {value!r}; give each its own"
                )
            seen[value] = s.name
    for s in strategies:
        for k in s.profiled_knobs:
            field = s.Knobs.model_fields.get(k)
            if field is None or type(field.default) is not int:
                raise RuntimeError(
                    f"strategy '{s.name}' profiles knob '{k}', which is not one of its integer knobs; "
                    f"profile rows are keyed by integer knobs only"
                )


STRATEGIES: dict[str, Strategy] = _discover()
"""name -> strategy object, in display order (rank)."""


def _union(attr: str) -> tuple[str, ...]:
    """Union of every strategy's knob names (`attr`: "knobs", or "profiled_knobs"), in the order of the
    strategies' names then their declaration."""
    out: list[str] = []
    for s in sorted(STRATEGIES.values(), key=lambda s: s.name):
        for k in s.Knobs.model_fields if attr == "knobs" else s.profiled_knobs:
            if k not in out:
                out.append(k)
    return tuple(out)


KNOB_FIELDS: tuple[str, ...] = _union("knobs")
"""Result columns of the knobs: a strategy writes 0 for knobs it lacks."""
PROFILED_KNOBS: tuple[str, ...] = _union("profiled_knobs")
"""A profile table's knob key columns (astrasim.compute.profiles): a strategy's rows hold its own
profiled knobs and 0 in the others' columns."""


@contextlib.contextmanager
def registered(strategy: Strategy) -> Iterator[Strategy]:
    """A strategy known to the registry for the duration of the block, as if shipped in this package
    (for an example or a test; RuntimeError on a name, colour or marker that is taken). Tables built
    at import (a scenario's result columns) do not see it."""
    global KNOB_FIELDS, PROFILED_KNOBS
    found = sorted([*STRATEGIES.values(), strategy], key=lambda s: (s.rank, s.name))
    check_distinct(found)
    before = dict(STRATEGIES), KNOB_FIELDS, PROFILED_KNOBS
    STRATEGIES.clear()
    STRATEGIES.update({s.name: s for s in found})
    KNOB_FIELDS, PROFILED_KNOBS = _union("knobs"), _union("profiled_knobs")
    try:
        yield strategy
    finally:
        STRATEGIES.clear()
        STRATEGIES.update(before[0])
        KNOB_FIELDS, PROFILED_KNOBS = before[1], before[2]


def get(name: str) -> Strategy:
    """The strategy called `name`; ValueError listing the known ones otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy '{name}'; use one of {', '.join(STRATEGIES)}") from None


def knob_columns(strategy: str, knobs: Knobs) -> dict[str, Any]:
    """The knob columns of a result row: the strategy's own values, 0 for the knobs it lacks."""
    own = knobs.model_dump()
    return {k: own.get(k, 0) for k in KNOB_FIELDS}


def knobs_from_row(row: Any) -> tuple[Strategy, Knobs]:
    """(strategy, knobs) of a result row or mapping with a `strategy` column and knob columns."""
    s = get(str(row["strategy"]))
    vals = {}
    for k in s.Knobs.model_fields:
        v = row.get(k) if hasattr(row, "get") else row[k]
        default = s.knob_defaults()[k]
        if v is None or (isinstance(v, float) and v != v):
            continue
        if isinstance(default, bool):  # a bool column may come back as text from a CSV
            vals[k] = bool(v) if not isinstance(v, str) else v.strip().lower() in ("true", "1")
        elif v != 0:
            vals[k] = type(default)(v)
    return s, s.Knobs(**vals)


def label_of(row: Any) -> str:
    """Label of a result row's variant ('astra G=32', 'bp-ag Nb=1', 'tp')."""
    s, knobs = knobs_from_row(row)
    return s.label(knobs)


def parse_label(text: str) -> tuple[Strategy, Knobs]:
    """The inverse of Strategy.label: 'astra G=32 K=512' -> (astra, AstraKnobs(groups=32, codebook=512))."""
    name, *parts = text.split()
    s = get(name)
    tags = {tag: k for k, tag in s.label_knobs.items()}
    vals: dict[str, Any] = {}
    for p in parts:
        tag, sep, raw = p.partition("=")
        if not sep or tag not in tags:
            raise ValueError(f"'{text}': '{p}' is not one of {s.name}'s label tags {sorted(tags)}")
        k = tags[tag]
        default = s.knob_defaults()[k]
        vals[k] = raw == "True" if isinstance(default, bool) else type(default)(raw)
    return s, s.Knobs(**vals)


def color_of(name: str) -> str:
    return get(name).color


def exact_strategies() -> tuple[str, ...]:
    """Strategies whose accuracy equals the original model's (no retraining, no quantization)."""
    return tuple(s.name for s in STRATEGIES.values() if s.exact)


def single_device_strategy() -> Strategy:
    """The one-device reference every speedup is measured against."""
    return next(s for s in STRATEGIES.values() if s.single_device)
