"""The accuracy side of a plan: the shipped accuracy tables plus the plan's own, its task and
metric, and whether its floor is reachable at all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from astrasim.analysis.accuracy_data import load_accuracy, select_task
from astrasim.analysis.planning.catalogs import _find_profile_file
from astrasim.analysis.planning.schema import PlanScenario
from astrasim.errors import UserError


@dataclass
class AccuracyView:
    """The accuracy rows the plan uses, and the direction and best value of its metric."""

    table: pd.DataFrame
    strict_table: pd.DataFrame
    task: str | None
    metric: str | None
    higher_is_better: bool
    best: float | None


def plan_accuracy(plan: PlanScenario, default_files: list[Path] | None = None) -> AccuracyView:
    """Read the shipped accuracy tables plus the plan's own files and check the floor is reachable at all."""
    base = plan.base_dir or Path.cwd()
    user_files = []
    for f in plan.accuracy.files:
        p = Path(f)
        user_files.append(p if p.is_absolute() or p.is_file() else base / p)
    if default_files is None:
        default_files = [_find_profile_file("accuracy.csv")]
        measured = default_files[0].with_name("accuracy_measured.csv")
        if measured.is_file():
            default_files.append(measured)
    strict = load_accuracy(user_files) if user_files else load_accuracy([])
    acc = (
        pd.concat([strict, load_accuracy(default_files)], ignore_index=True)
        if user_files
        else load_accuracy(default_files)
    )
    mine = select_task(acc[acc["model"] == plan.model], plan.accuracy.task)
    task = str(mine["task"].iloc[0]) if not mine.empty else plan.accuracy.task
    metric = str(mine["metric"].iloc[0]) if not mine.empty else None
    hib = bool(mine["higher_is_better"].iloc[0]) if not mine.empty else True
    values = mine["value"].dropna()
    best = (values.max() if hib else values.min()) if not values.empty else None
    if plan.accuracy.floor is not None:
        if mine.empty:
            have = sorted(set(acc.loc[acc["model"] == plan.model, "task"]))
            raise UserError(
                f"no accuracy rows for model '{plan.model}'"
                + (f" and task '{plan.accuracy.task}' (tasks: {have})" if plan.accuracy.task else "")
                + "; add rows or drop the floor",
                field="plan.accuracy",
            )
        if best is None or (plan.accuracy.floor > best if hib else plan.accuracy.floor < best):
            raise UserError(
                f"floor {plan.accuracy.floor:g} is {'above' if hib else 'below'} the best {metric} any strategy "
                f"reaches for {plan.model}/{task} ({best if best is not None else 'none known'}"
                f"{', the original model' if best is not None else ''}); the constraints contradict",
                field="plan.accuracy.floor",
            )
    return AccuracyView(acc, strict, task, metric, hib, best)
