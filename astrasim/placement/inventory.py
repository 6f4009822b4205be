"""What a user owns and wants: a plan scenario with `inventory:` (astrasim plan, astrasim whatif).

    name: my-boards
    model: gpt2-s
    tokens: 1024                 # prompt
    output_tokens: 0             # > 0: generation (ttft, tpot, e2e)
    rate_per_s: null             # a request stream: p99 at this rate (stream: arrival, requests, seed)
    inventory: {jetson-orin-nano: 1, raspberry-pi-5: 3}   # catalog names (incl. calibrate-device entries)
    buy: {raspberry-pi-5: 2}     # next to what you own: up to this many more may be bought ...
    budget_usd: 200              # ... for at most this much (the devices bought)
    networks: [wifi5-1x1-80mhz, ethernet-1g]             # what can join them (profiles/networks.yaml)
    objective: auto              # latency | ttft | tpot | e2e | p99; auto: ttft, e2e when generating, p99 at a rate
    tie_breakers: [energy, price]
    latency_target_s: null       # a target on the objective
    accuracy: {floor: null}
    strategies: [...]            # default: every strategy with its default knobs
    sweep: {hardware: {profile: cpu}, weight_bits: 32}   # other scenario fields (one value each)
    search: {exhaustive_max: 400}

Each field is checked once here (pydantic, extra keys refused); names are checked against the
catalogs in `check_inventory`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from astrasim.analysis.capacity import StreamPlan
from astrasim.analysis.planning import AccuracyConstraint
from astrasim.errors import UserError
from astrasim.fileio import read_yaml_file
from astrasim.scenario.schema import StrategyEntry

OBJECTIVES = ("latency", "ttft", "tpot", "e2e", "p99")
TIE_BREAKERS = ("energy", "price")


class SearchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exhaustive_max: int = Field(
        400,
        ge=0,
        description="simulate every candidate when there are at most this many; above, prune with the analytic bounds",
    )
    batch: int = Field(8, ge=1, description="candidates simulated between two pruning passes (x workers)")


class InventoryPlan(BaseModel):
    """A placement question over owned devices."""

    model_config = ConfigDict(extra="forbid")
    name: str = "placement"
    model: str
    tokens: int | None = Field(None, gt=0)
    output_tokens: int = Field(0, ge=0)
    rate_per_s: float | None = Field(None, gt=0)
    stream: StreamPlan = Field(default_factory=StreamPlan)
    inventory: dict[str, int] = Field(description="catalog device name -> how many you own")
    buy: dict[str, int] = Field(
        default_factory=dict, description="catalog device name -> how many more may be bought (at the catalog's price)"
    )
    budget_usd: float | None = Field(None, ge=0, description="most to spend on devices bought")
    networks: list[str] = Field(default_factory=lambda: ["wifi5-1x1-80mhz"], min_length=1)
    objective: Literal["auto", "latency", "ttft", "tpot", "e2e", "p99"] = "auto"
    tie_breakers: list[Literal["energy", "price"]] = Field(default_factory=lambda: ["energy", "price"])
    latency_target_s: float | None = Field(None, gt=0)
    accuracy: AccuracyConstraint = Field(default_factory=AccuracyConstraint)
    strategies: list[StrategyEntry] | None = None
    sweep: dict = Field(default_factory=dict)
    search: SearchSettings = Field(default_factory=SearchSettings)
    base_dir: Path | None = Field(None, exclude=True)

    @field_validator("inventory", "buy")
    @classmethod
    def _counts(cls, v: dict[str, int], info) -> dict[str, int]:
        if not v and info.field_name == "inventory":
            raise ValueError("the inventory is empty; list the devices you own, e.g. {raspberry-pi-5: 3}")
        for name, count in v.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"'{name}': count {count!r} must be an integer >= 1 (leave a device out instead)")
        return v

    def metric(self) -> str:
        """The objective's column: latency_s, ttft_s, tpot_s, e2e_s or latency_p99_s."""
        obj = self.objective
        if obj == "auto":
            obj = "p99" if self.rate_per_s else ("e2e" if self.output_tokens > 0 else "latency")
        if obj in ("tpot", "e2e", "ttft") and self.output_tokens <= (1 if obj == "tpot" else 0):
            raise UserError(
                f"objective {obj} needs a generation (output_tokens > {1 if obj == 'tpot' else 0})",
                field="plan.objective",
            )
        if obj == "p99" and not self.rate_per_s:
            raise UserError("objective p99 needs a request rate (rate_per_s)", field="plan.objective")
        return {"latency": "latency_s", "ttft": "ttft_s", "tpot": "tpot_s", "e2e": "e2e_s", "p99": "latency_p99_s"}[obj]

    def owned(self) -> list[str]:
        """Every owned device, one name per unit."""
        return [name for name, count in self.inventory.items() for _ in range(count)]

    def available(self) -> dict[str, int]:
        """What a placement may use: the inventory plus what may be bought."""
        out = dict(self.inventory)
        for name, n in self.buy.items():
            out[name] = out.get(name, 0) + n
        return out

    def bought(self, order) -> dict[str, int]:
        """The devices of `order` beyond the inventory (to be bought), per kind."""
        out = {}
        for name in set(order):
            extra = list(order).count(name) - self.inventory.get(name, 0)
            if extra > 0:
                out[name] = extra
        return out


def is_inventory_plan(data) -> bool:
    return isinstance(data, dict) and "inventory" in data


def parse_plan(data: dict, base_dir: Path | None = None) -> InventoryPlan:
    try:
        plan = InventoryPlan(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise UserError(msg, field=f"plan.{loc}" if loc else "plan") from None
    return plan.model_copy(update={"base_dir": base_dir})


def load_inventory_plan(path: str | Path) -> InventoryPlan:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"plan scenario '{p}' not found", field="scenario")
    data = read_yaml_file(p, "scenario")
    if not isinstance(data, dict):
        raise UserError(f"'{p}' must be a mapping of plan fields", field="scenario")
    return parse_plan(data, p.parent)


def check_inventory(plan: InventoryPlan, devices: dict, networks: dict) -> None:
    """Unknown device or network names: UserError listing the known ones."""
    for field, names in (("plan.inventory", plan.inventory), ("plan.buy", plan.buy)):
        for name in names:
            if name not in devices:
                raise UserError(f"unknown device '{name}'; profiles/devices.yaml has {sorted(devices)}", field=field)
    for name in plan.networks:
        if name not in networks:
            raise UserError(
                f"unknown network '{name}'; profiles/networks.yaml has {sorted(networks)}", field="plan.networks"
            )
    for key in ("name", "models", "tokens", "devices", "strategies", "output_tokens", "network", "workload"):
        if key in plan.sweep:
            raise UserError(f"'{key}' is set by the plan itself; remove it from plan.sweep", field=f"plan.sweep.{key}")
    plan.metric()
