"""The strategy registry: every module of this package that exports `STRATEGY` is a strategy.

Everything else asks here (names, knobs, labels, colours, op names): adding a strategy is one new
module in astrasim/strategies/ plus its tests (docs/strategies.md, "Adding a strategy").
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from astrasim.strategies.base import Knobs, Strategy

_SKIP = {"base", "registry", "synthetic"}


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
                raise RuntimeError(f"strategies '{seen[value]}' and '{s.name}' share the {attr} {value!r}; "
                                   f"give each its own")
            seen[value] = s.name


STRATEGIES: dict[str, Strategy] = _discover()
"""name -> strategy object, in display order (rank)."""


def _knob_fields() -> tuple[str, ...]:
    """Union of every strategy's knob names, in the order of the strategies' names then their
    declaration (result columns: a strategy writes 0 for knobs it lacks)."""
    out: list[str] = []
    for s in sorted(STRATEGIES.values(), key=lambda s: s.name):
        for k in s.Knobs.model_fields:
            if k not in out:
                out.append(k)
    return tuple(out)


KNOB_FIELDS: tuple[str, ...] = _knob_fields()


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
        if v is not None and not (isinstance(v, float) and v != v) and v != 0:
            vals[k] = type(s.knob_defaults()[k])(v)
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
        vals[k] = type(s.knob_defaults()[k])(raw)
    return s, s.Knobs(**vals)


def color_of(name: str) -> str:
    return get(name).color


def exact_strategies() -> tuple[str, ...]:
    """Strategies whose accuracy equals the original model's (no retraining, no quantization)."""
    return tuple(s.name for s in STRATEGIES.values() if s.exact)


def single_device_strategy() -> Strategy:
    """The one-device reference every speedup is measured against."""
    return next(s for s in STRATEGIES.values() if s.single_device)
