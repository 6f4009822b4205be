"""Planning for a request rate (`rate_per_s` in a plan scenario): the plan's configurations serve a
stream at that rate; a configuration meets the latency target when the stream is stable and its
p99 latency (arrival to completion) is at most `latency_target_s`. Then a capacity search: the
maximum sustainable rate (stable, p99 <= target) of the best candidates, by bisection.

Vidur's capacity search answers the same question for datacenter serving; here the search is a
doubling/halving bracket from the plan's rate, then `BISECTIONS` halvings of the bracket.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from astrasim.errors import UserError
from astrasim.strategies import label_of

BISECTIONS = 6  # the bracket [lo, hi] shrinks to (hi - lo) / 64: about 1.5 % of the rate
BRACKET_STEPS = 10  # at most 2^10 x above or below the plan's rate
CANDIDATES = 3  # capacity search for this many best configurations


class StreamPlan(BaseModel):
    """How the plan's request stream is generated (astrasim/streams.py)."""

    model_config = ConfigDict(extra="forbid")
    arrival: Literal["poisson", "periodic"] = Field("poisson", description="arrival process at rate_per_s")
    requests: int = Field(200, ge=4, le=100_000, description="requests per simulated stream")
    seed: int = Field(0, ge=0, description="seed of poisson arrivals")


def sweep_workload(plan) -> dict:
    """The sweep-scenario `workload` field of a plan (empty without rate_per_s)."""
    if plan.rate_per_s is None:
        return {}
    if "workload" in plan.sweep:
        raise UserError(
            "the plan's rate_per_s and stream set the workload; remove it from plan.sweep", field="plan.sweep.workload"
        )
    s = plan.stream
    return {"workload": [{"arrival": s.arrival, "rate_per_s": plan.rate_per_s, "requests": s.requests, "seed": s.seed}]}


def meets_latency(df: pd.DataFrame, plan) -> pd.Series:
    """One request: latency <= target. A stream: stable and p99 <= target."""
    if plan.rate_per_s is None:
        return df["latency_s"] <= plan.latency_target_s
    return (df["latency_p99_s"] <= plan.latency_target_s) & df["stable"].astype(bool)


@dataclass(frozen=True)
class Capacity:
    configuration: str
    max_rate_per_s: float  # the highest rate found sustainable (0 if none down to the bracket's floor)
    p99_at_max_s: float


def _points_by_configuration(scenarios: dict) -> dict[tuple, object]:
    out: dict[tuple, object] = {}
    for name, sc in scenarios.items():
        for p in sc.points():
            out.setdefault((name, p.hardware, p.devices, p.label()), p)
    return out


def _probe(point, rate: float, target: float) -> tuple[bool, float]:
    from astrasim.pointrun import run_stream_point

    cols = run_stream_point(replace(point, workload=point.workload.at_rate(rate)))[1].columns()
    return bool(cols["stable"] and cols["latency_p99_s"] <= target), cols["latency_p99_s"]


def max_sustainable_rate(point, start: float, target: float) -> tuple[float, float]:
    """(rate, p99 there): the highest rate at which `point`'s stream is stable with p99 <= target."""
    ok, p99 = _probe(point, start, target)
    lo, hi, lo_p99 = (start, None, p99) if ok else (None, start, float("nan"))
    for _ in range(BRACKET_STEPS):
        if lo is not None and hi is not None:
            break
        rate = (lo * 2) if hi is None else (hi / 2)
        ok, p99 = _probe(point, rate, target)
        if ok:
            lo, lo_p99 = rate, p99
        else:
            hi = rate
    if lo is None:
        return 0.0, float("nan")
    if hi is None:
        return lo, lo_p99
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        ok, p99 = _probe(point, mid, target)
        if ok:
            lo, lo_p99 = mid, p99
        else:
            hi = mid
    return lo, lo_p99


def capacity_search(result, scenarios: dict) -> list[Capacity]:
    """Max sustainable rate of the CANDIDATES best configurations (feasible ones by the plan's
    ranking; if none is feasible, the lowest-p99 ones); `scenarios` are the plan's sweep scenarios
    (`planning.grid.sweep_scenarios`), whose points the search runs at other rates."""
    plan = result.plan
    df = result.table
    best = result.feasible if not result.feasible.empty else df.sort_values("latency_p99_s", kind="stable")
    points = _points_by_configuration(scenarios)
    out = []
    for _, row in best.head(CANDIDATES).iterrows():
        key = (row["network_option"], row["hardware"], int(row["devices"]), label_of(row))
        rate, p99 = max_sustainable_rate(points[key], plan.rate_per_s, plan.latency_target_s)
        out.append(Capacity(row["configuration"], rate, p99))
    return out


def report_lines(result) -> list[str]:
    if result.plan.rate_per_s is None:
        return []
    plan = result.plan
    lines = [
        "",
        f"stream: {plan.stream.arrival} arrivals at {plan.rate_per_s:g} requests/s, "
        f"{plan.stream.requests} requests; meets latency = stable and p99 <= {plan.latency_target_s:g} s",
        "maximum sustainable rate (stable, p99 <= target; bisection to about 1.5 %):",
    ]
    for c in result.capacity:
        lines.append(
            f"- {c.configuration}: {c.max_rate_per_s:.3g} requests/s"
            + ("" if c.max_rate_per_s == 0 else f" (p99 {c.p99_at_max_s:.3f} s)")
        )
    return lines


STREAM_REPORT_COLUMNS = ["latency_p99_s", "throughput_per_s", "utilization", "stable"]
