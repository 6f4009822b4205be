"""The plan scenario a user writes (scenarios/plan.yaml), its loading and its names checked against
the catalogs."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from astrasim.analysis.capacity import StreamPlan
from astrasim.analysis.planning.catalogs import NetworkOption, _pydantic_message
from astrasim.errors import UserError
from astrasim.fileio import read_yaml_file
from astrasim.scenario.schema import StrategyEntry
from astrasim.strategies import STRATEGIES, get


class AccuracyConstraint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    floor: float | None = Field(
        None,
        description="worst acceptable value: a minimum for higher-is-better "
        "metrics (top-1 %), a maximum for lower-is-better (perplexity)",
    )
    task: str | None = Field(None, description="task in the accuracy tables; default: the model's first task")
    files: list[str] = Field(
        default_factory=list,
        description="your accuracy tables (strict: every row must match a simulated configuration)",
    )


class PlanScenario(BaseModel):
    """A capacity-planning question (scenarios/plan.yaml)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "plan"
    model: str
    tokens: int | None = Field(None, gt=0)
    latency_target_s: float = Field(gt=0)
    accuracy: AccuracyConstraint = Field(default_factory=AccuracyConstraint)
    budget_usd: float | None = Field(None, gt=0)
    devices: list[str] = Field(min_length=1, description="candidate device names from profiles/devices.yaml")
    device_counts: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    networks: list[str] = Field(min_length=1, description="candidate network names from profiles/networks.yaml")
    fleets: list[list[str]] = Field(
        default_factory=list,
        description="mixed fleets to try: per-device lists of catalog device names (fastest first)",
    )
    mixed: bool = Field(False, description="also try every mix of two or more of `devices` at each device count")
    strategies: list[StrategyEntry] = Field(
        default_factory=lambda: [StrategyEntry(name=n) for n in STRATEGIES],
        min_length=1,
        description="strategy names or mappings {name, <knobs>}, as in a sweep scenario",
    )
    sweep: dict = Field(default_factory=dict, description="other sweep-scenario knobs, passed through")
    # request streams (astrasim.analysis.capacity): plan for a rate instead of one request
    rate_per_s: float | None = Field(None, gt=0, description="requests per second to sustain with p99 <= target")
    stream: StreamPlan = Field(default_factory=StreamPlan, description="arrival process, requests, seed")
    base_dir: Path | None = Field(None, exclude=True)

    @field_validator("device_counts")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError(f"all values must be >= 1, got {v}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _contradictions(self) -> PlanScenario:
        multi = self.multi_device_entries()
        if multi and not any(n >= 2 for n in self.device_counts):
            raise ValueError(
                f"strategies {[e.name for e in multi]} need 2 or more devices but device_counts is {self.device_counts}"
            )
        return self

    def multi_device_entries(self) -> list[StrategyEntry]:
        return [e for e in self.strategies if not get(e.name).single_device]

    def single_device_entries(self) -> list[StrategyEntry]:
        return [e for e in self.strategies if get(e.name).single_device]


def load_plan(path: str | Path) -> PlanScenario:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"plan scenario '{p}' not found", field="scenario")
    data = read_yaml_file(p, "scenario")
    if not isinstance(data, dict):
        raise UserError(f"'{p}' must be a mapping of plan fields", field="scenario")
    try:
        plan = PlanScenario(**data)
    except ValidationError as exc:
        raise _pydantic_message(exc, "plan") from None
    return plan.model_copy(update={"base_dir": p.parent})


def check_names(plan: PlanScenario, devices: dict, networks: dict[str, NetworkOption]) -> None:
    """Unknown device or network names: UserError listing the known ones."""
    for name in plan.devices:
        if name not in devices:
            raise UserError(
                f"unknown device '{name}'; profiles/devices.yaml has {sorted(devices)}", field="plan.devices"
            )
    for i, fleet in enumerate(plan.fleets):
        for name in fleet:
            if name not in devices:
                raise UserError(
                    f"unknown device '{name}'; profiles/devices.yaml has {sorted(devices)}", field=f"plan.fleets[{i}]"
                )
        if len(fleet) < 2:
            raise UserError(
                "a fleet lists two or more devices (one device: put it in plan.devices)", field=f"plan.fleets[{i}]"
            )
    for name in plan.networks:
        if name not in networks:
            raise UserError(
                f"unknown network '{name}'; profiles/networks.yaml has {sorted(networks)}", field="plan.networks"
            )
    multi = [n for n in plan.device_counts if n >= 2]
    if multi and plan.multi_device_entries():
        usable = [net for net in plan.networks if networks[net].max_devices >= min(multi)]
        if not usable:
            raise UserError(
                f"no candidate network serves {min(multi)} devices (max_devices: "
                f"{ {n: networks[n].max_devices for n in plan.networks} })",
                field="plan.device_counts",
            )
    if plan.budget_usd is not None:
        cheapest = min(devices[d].price_usd for d in plan.devices)
        if cheapest > plan.budget_usd:
            raise UserError(
                f"budget ${plan.budget_usd:,.0f} is below the cheapest single device "
                f"(${cheapest:,.0f}); no configuration can fit",
                field="plan.budget_usd",
            )
