"""The validation protocol: every setting of the harness in one model, frozen under a number.

`Settings` is what a campaign runs; its defaults are the published grid (validation/validate.yaml
states the same values, and tests/test_validate_protocol.py checks that it does). A campaign's
numbers are only comparable with another's when both ran the same harness, so every summary
carries PROTOCOL, and `harness_hash()` (the defaults plus the constants the harness modules time
with) is stored next to it: changing either without bumping PROTOCOL (and storing the new hash)
fails that test.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from astrasim.models import ModelSpec
from astrasim.validation.graphs import VALIDATION_MODEL

PROTOCOL = 2  # what each number changed: docs/validation.md, "The protocol"
PROTOCOL_HASH = "f379f693a23f8d41"  # harness_hash() of PROTOCOL; bump both together

# The model fields a validation YAML may set (model_from_dict fills the rest).
MODEL_KEYS = ("name", "layers", "hidden", "heads", "mlp_hidden", "tokens")


class Settings(BaseModel):
    """One validation campaign. The defaults are the frozen protocol's grid and harness."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    hosts: list[int] = Field(
        default_factory=lambda: [2, 4], description="N test hosts (network namespaces), one gloo process each"
    )
    bandwidths: list[float] = Field(default_factory=lambda: [20.0, 100.0], description="Mbps of every shaped hop (tbf)")
    topologies: list[str] = Field(
        default_factory=lambda: ["switch", "shared"],
        description="switch: a shaped full-duplex port per host; shared: one shaped medium",
    )
    strategies: list[str] = Field(
        default_factory=lambda: ["single", "tp", "sp", "bp-ag Nb=1", "bp-sp Nb=1", "pp", "astra G=1", "astra G=32"],
        description="registry labels (astrasim.strategies.parse_label)",
    )
    repeats: int = Field(3, description="at least this many timed passes per point")
    budget_s: float = Field(3.0, description="more timed passes for short passes, up to max_repeats within this time")
    max_repeats: int = Field(40, description="most timed passes per point")
    warmup: int = Field(1, description="untimed passes before the timed ones")
    calibration_repeats: int = Field(5, description="point-to-point network microbenchmark repeats per size")
    profile_repeats: int = Field(10, description="kernel microbenchmark repeats (each strategy alone, one thread)")
    model: ModelSpec = Field(default_factory=lambda: VALIDATION_MODEL, description="the model whose passes are timed")
    seed: int = Field(0, description="seed of the workers' weights and inputs")

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> Any:
        if isinstance(value, dict):
            from astrasim.models import model_from_dict

            return model_from_dict({"name": "val-custom", **value})
        return value

    def check(self) -> None:
        """Values the types cannot refuse: ranges, topologies, and labels the model can take."""
        from astrasim.errors import UserError
        from astrasim.strategies import parse_label
        from astrasim.validation.netns import TOPOLOGIES

        if not self.hosts or any(n < 2 or n > 16 for n in self.hosts):
            raise UserError("every host count must be in 2..16", field="hosts")
        if not self.bandwidths or any(b <= 0 or b > 10000 for b in self.bandwidths):
            raise UserError("bandwidths must be in (0, 10000] Mbps", field="bandwidths")
        bad = [t for t in self.topologies if t not in TOPOLOGIES]
        if bad or not self.topologies:
            raise UserError(f"unknown topology {bad}; use {', '.join(TOPOLOGIES)}", field="topologies")
        if not self.strategies:
            raise UserError("give at least one strategy label", field="strategies")
        for label in self.strategies:
            try:
                strategy, knobs = parse_label(label)
                for n in self.hosts:
                    strategy.check(self.model, n, self.model.tokens, knobs)
            except Exception as exc:  # unknown name, bad tag, a knob the model cannot take
                raise UserError(
                    f"strategy '{label}': {exc}; use registry labels such as "
                    f"{', '.join(repr(x) for x in DEFAULTS.strategies)}",
                    field="strategies",
                ) from None
        if self.repeats < 1 or self.warmup < 0 or self.max_repeats < self.repeats:
            raise UserError("repeats must be >= 1, max_repeats >= repeats and warmup >= 0", field="repeats")
        if self.budget_s < 0 or self.calibration_repeats < 1 or self.profile_repeats < 1:
            raise UserError("budget_s must be >= 0 and calibration_repeats, profile_repeats >= 1", field="scenario")

    def fingerprint(self) -> dict:
        """The settings as plain data (the model by the fields a YAML sets)."""
        data = self.model_dump(exclude={"model"})
        data["model"] = {k: getattr(self.model, k) for k in MODEL_KEYS}
        return data

    def differs_from_protocol(self) -> list[str]:
        """The settings that differ from the frozen protocol's defaults (an override narrows the grid)."""
        mine, base = self.fingerprint(), DEFAULTS.fingerprint()
        return [k for k in base if mine[k] != base[k]]


DEFAULTS = Settings()
SETTINGS_KEYS = tuple(Settings.model_fields)


def harness_constants() -> dict:
    """The constants the harness modules measure with (each in its own module, its one home)."""
    from astrasim.validation import calibrate, corun, dispatch, idle, interference, steal

    # the keys are part of the stored hash: PAIRED_MIN keeps the name of the module it was frozen in
    return {
        "corun.ROUNDS": corun.ROUNDS,
        "compare.PAIRED_MIN": corun.PAIRED_MIN,
        "steal.STEAL_MAX": steal.STEAL_MAX,
        "steal.RETAKES": steal.RETAKES,
        "idle.IDLE_MAX": idle.IDLE_MAX,
        "idle.IDLE_WAIT_S": idle.IDLE_WAIT_S,
        "idle.IDLE_START_S": idle.IDLE_START_S,
        "calibrate.LADDER_BYTES": list(calibrate.LADDER_BYTES),
        "calibrate.FIT_MIN_BYTES": calibrate.FIT_MIN_BYTES,
        "calibrate.ALPHA_MAX_BYTES": calibrate.ALPHA_MAX_BYTES,
        "calibrate.SMALL_REPEATS": calibrate.SMALL_REPEATS,
        "calibrate.SIM_KIND": calibrate.SIM_KIND,
        "dispatch.CHAIN_OPS": dispatch.CHAIN_OPS,
        "interference.CHAIN_OPS": interference.CHAIN_OPS,
        "interference.SHAPE": list(interference.SHAPE),
        "interference.MESSAGE_BYTES": interference.MESSAGE_BYTES,
        "interference.PAIRS": interference.PAIRS,
    }


def harness_hash() -> str:
    """16 hex digits of the protocol's settings and the harness constants."""
    text = json.dumps({"settings": DEFAULTS.fingerprint(), "constants": harness_constants()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
