"""The check against measurements nobody on this project made: `astrasim published`.

validation/published/measurements.csv holds end-to-end timings that others published
(distributed-llama on Raspberry Pi clusters, Ollama and llama.cpp on the Pi 5, MLC and TinyChat
on Jetson boards), each with its source. Every row becomes one scenario point (one device: the
`single` strategy; a cluster: `tp` with the collective algorithm its runtime uses, over the link
it names) and is simulated through the project's one point path (astrasim.pointrun), so this
check exercises exactly what `simulate`, `sweep` and `plan` compute. These rows are never
calibration inputs: the device catalog is calibrated from microbenchmarks only.

Error of a row = predicted time / published time - 1, where a row's time is seconds per
generated token (ms_per_token), seconds of prefill (ttft_s), or prompt_tokens / rate
(prefill_tokens_per_s). Targets (issue 26): single-device rows median |error| <= 15 % and
every row within 30 %; multi-device rows median <= 20 %.

A row the current build cannot represent (a model or device it does not know) is reported as
skipped with the loader's reason, not as an error of the table.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from astrasim.compute.formats import FORMATS
from astrasim.errors import UserError
from astrasim.fileio import atomic_path, check_output_path
from astrasim.network.collectives import ALGORITHMS
from astrasim.pointrun import simulate_point
from astrasim.scenario import from_dict
from astrasim.scenario.grid import iter_points

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = REPO_ROOT / "validation" / "published" / "measurements.csv"
DEFAULT_OUT = Path("validation") / "published"
PREDICTIONS = "predictions.csv"
PLOT = "predicted_vs_published.png"

METRICS = ("ms_per_token", "prefill_tokens_per_s", "ttft_s")
# What a cluster sends between devices, as its runtime names it -> scenario element_bits
# (distributed-llama's Q80 buffer: 8-bit values with one f16 scale per 32, 8.5 bits: sent as 8).
SYNC_BITS = {"q80": 8, "f16": 16, "f32": 32}
TOPOLOGIES = ("switch", "mesh", "wifi", "wifi-adhoc")
# Runtimes whose tensor parallelism computes the LM head on the root node alone (tp knob head: root):
# distributed-llama's `llamaFinalize` (the vocab x dim wcls matmul) is a root-only task
# (b4rtaz/distributed-llama src/llama2-tasks.cpp @ 83745fd).
ROOT_HEAD_RUNTIMES = ("distributed-llama",)


@dataclass(frozen=True)
class Target:
    median: float
    max: float | None


TARGETS = {"single": Target(median=0.15, max=0.30), "multi": Target(median=0.20, max=None)}


class Measurement(BaseModel):
    """One published measurement (a row of measurements.csv; README.md there says each column)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    source: str = Field(min_length=8)
    device: str = Field(min_length=1)
    count: int = Field(ge=1)
    link: str = ""
    model: str = Field(min_length=1)
    weight_format: str = Field(min_length=1)
    astrasim_format: str
    sync_format: str = ""
    runtime: str = Field(min_length=1)
    algorithm: str = ""
    prompt_tokens: int = Field(ge=1)
    generated_tokens: int = Field(ge=0)
    metric: str
    value: float = Field(gt=0, allow_inf_nan=False)
    notes: str = ""

    @field_validator("link")
    @classmethod
    def _link(cls, v: str) -> str:
        if v:
            topology, _, mbps = v.partition(":")
            try:
                ok = topology in TOPOLOGIES and float(mbps) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(
                    f"'{v}' is not <topology>:<Mbps> with topology one of {', '.join(TOPOLOGIES)} "
                    "(e.g. switch:1000 for gigabit Ethernet), or empty for one device"
                )
        return v

    @field_validator("astrasim_format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v not in FORMATS:
            raise ValueError(f"'{v}' is not one of astrasim's weight formats {', '.join(FORMATS)}")
        return v

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, v: str) -> str:
        if v and v not in ALGORITHMS:
            raise ValueError(f"'{v}' is not one of {', '.join(ALGORITHMS)} (or empty for one device)")
        return v

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"'{v}' is not one of {', '.join(METRICS)}")
        return v

    @field_validator("sync_format")
    @classmethod
    def _sync(cls, v: str) -> str:
        if v and v not in SYNC_BITS:
            raise ValueError(f"'{v}' is not one of {', '.join(SYNC_BITS)} (or empty for one device)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Measurement:
        cluster = self.count > 1
        for name in ("link", "algorithm", "sync_format"):
            if bool(getattr(self, name)) != cluster:
                raise ValueError(f"{name} must be {'set' if cluster else 'empty'} when count is {self.count}")
        if self.metric == "ms_per_token" and self.generated_tokens < 2:
            raise ValueError("ms_per_token needs generated_tokens >= 2 (a decode step after the first token)")
        return self

    @property
    def multi(self) -> bool:
        return self.count > 1

    def published_time_s(self) -> float:
        """The row's value as seconds (see the module docstring)."""
        if self.metric == "ms_per_token":
            return self.value / 1e3
        if self.metric == "prefill_tokens_per_s":
            return self.prompt_tokens / self.value
        return self.value


COLUMNS = tuple(Measurement.model_fields)


def load_table(path: str | Path = DEFAULT_TABLE) -> list[Measurement]:
    """The measurements of a CSV table; any defect is one UserError naming the row and column."""
    path = Path(path)
    field = str(path)
    if not path.is_file():
        raise UserError(
            f"{'is a directory' if path.is_dir() else 'not found'}; give the published measurements "
            f"CSV (default {DEFAULT_TABLE.relative_to(REPO_ROOT)})",
            field=field,
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(f, strict=True)
            header = reader.fieldnames or []
            missing = [c for c in COLUMNS if c not in header]
            unknown = [c for c in header if c not in COLUMNS]
            if missing or unknown:
                what = "; ".join(
                    x
                    for x in (
                        f"missing column(s) {', '.join(missing)}" if missing else "",
                        f"unknown column(s) {', '.join(unknown)}" if unknown else "",
                    )
                    if x
                )
                raise UserError(f"{what}; the columns are {', '.join(COLUMNS)}", field=field)
            raw = list(reader)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UserError(f"not a readable CSV ({exc}); fix the file", field=field) from None
    rows: list[Measurement] = []
    seen: set[str] = set()
    for line, record in enumerate(raw, start=2):
        if None in record:
            raise UserError(
                f"has more cells than the header's {len(COLUMNS)} columns; quote cells that hold commas",
                field=f"{field}:{line}",
            )
        if any(v is None for v in record.values()):
            raise UserError(f"has fewer cells than the header's {len(COLUMNS)} columns", field=f"{field}:{line}")
        try:
            row = Measurement.model_validate({k: v.strip() for k, v in record.items()})
        except ValidationError as exc:
            err = exc.errors()[0]
            column = ".".join(str(p) for p in err["loc"]) or "row"
            raise UserError(
                f"{err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})",
                field=f"{field}:{line}:{column}",
            ) from None
        if row.id in seen:
            raise UserError(f"duplicate id '{row.id}'; give every row its own id", field=f"{field}:{line}:id")
        seen.add(row.id)
        rows.append(row)
    if not rows:
        raise UserError("has no rows", field=field)
    return rows


# --------------------------------------------------------------------------- row -> scenario point
def scenario_of(row: Measurement) -> dict[str, Any]:
    """The scenario mapping of one row: its model, prompt and generated tokens, device and count;
    one device runs `single`, a cluster `tp` with the row's collective algorithm over its link."""
    decode = row.metric == "ms_per_token"
    data: dict[str, Any] = {
        "name": "published",
        "models": [row.model],
        "tokens": [row.prompt_tokens],
        "output_tokens": [row.generated_tokens if decode else 1],
        "devices": [row.count],
        "strategies": [_strategy(row)],
        "hardware": {"device": [row.device]},
        "weight_format": [row.astrasim_format],
    }
    if row.multi:
        topology, _, mbps = row.link.partition(":")
        data["algorithm"] = row.algorithm
        data["element_bits"] = [SYNC_BITS[row.sync_format]]
        data["network"] = {"topology": [topology], "bandwidth_mbps": [float(mbps)]}
    return data


def _strategy(row: Measurement) -> str | dict[str, Any]:
    """`single` for one device; a cluster `tp`, its LM head where the runtime computes it."""
    if not row.multi:
        return "single"
    if row.runtime.lower().startswith(ROOT_HEAD_RUNTIMES):
        return {"name": "tp", "head": "root"}
    return "tp"


def point_of(row: Measurement):
    """The one scenario point of a row (UserError where this build cannot represent it)."""
    points = list(iter_points(from_dict(scenario_of(row), name="published", source=f"row {row.id}")))
    if len(points) != 1:  # pragma: no cover - a row's mapping has one value per field
        raise UserError(f"expands to {len(points)} points", field=f"row {row.id}")
    return points[0]


@dataclass
class Prediction:
    row: Measurement
    predicted_time_s: float | None = None
    skipped: str | None = None
    extra: dict[str, Any] | None = None  # result columns worth keeping (compute source, memory fit)

    @property
    def error(self) -> float | None:
        if self.predicted_time_s is None:
            return None
        return self.predicted_time_s / self.row.published_time_s() - 1.0

    @property
    def predicted_value(self) -> float | None:
        """The prediction in the row's own metric."""
        t = self.predicted_time_s
        if t is None:
            return None
        if self.row.metric == "ms_per_token":
            return t * 1e3
        if self.row.metric == "prefill_tokens_per_s":
            return self.row.prompt_tokens / t
        return t


KEPT_COLUMNS = ("compute_source", "fits", "memory_gb")


def predict(row: Measurement) -> Prediction:
    """Simulate one row through astrasim.pointrun (the path every command uses)."""
    try:
        point = point_of(row)
        result = simulate_point(point)
    except UserError as exc:
        return Prediction(row, skipped=str(exc))
    seconds = result["tpot_s"] if row.metric == "ms_per_token" else result["ttft_s"]
    extra = {k: result[k] for k in KEPT_COLUMNS if k in result}
    return Prediction(row, predicted_time_s=float(seconds), extra=extra)


def predict_all(rows: list[Measurement], progress=None) -> list[Prediction]:
    out = []
    for row in rows:
        out.append(predict(row))
        if progress is not None:
            progress(out[-1])
    return out


# --------------------------------------------------------------------------- summary, table, plot
@dataclass
class GroupSummary:
    group: str
    n: int
    median: float | None
    max: float | None
    target: Target

    @property
    def met(self) -> bool:
        if self.n == 0:
            return False
        ok = self.median is not None and self.median <= self.target.median
        if self.target.max is not None:
            ok = ok and self.max is not None and self.max <= self.target.max
        return ok

    def line(self) -> str:
        rule = f"median <= {self.target.median:.0%}" + (
            f", every row <= {self.target.max:.0%}" if self.target.max is not None else ""
        )
        if self.n == 0:
            return f"{self.group}-device rows: none predicted (target {rule}): not checked"
        return (
            f"{self.group}-device rows: {self.n} predicted, median |error| {self.median:.1%}, "
            f"max {self.max:.1%} (target {rule}): {'met' if self.met else 'MISSED'}"
        )


def summarize(predictions: list[Prediction]) -> dict[str, GroupSummary]:
    """Median and max |error| of the single-device and of the multi-device rows (skipped rows excluded)."""
    out = {}
    for group, target in TARGETS.items():
        errs = [abs(p.error) for p in predictions if p.error is not None and (p.row.multi == (group == "multi"))]
        out[group] = GroupSummary(
            group, len(errs), statistics.median(errs) if errs else None, max(errs) if errs else None, target
        )
    return out


def frame(predictions: list[Prediction]):
    """One row per measurement: what was published, what astrasim predicts, the error or why skipped."""
    import pandas as pd

    records = []
    for p in predictions:
        r = p.row
        records.append(
            {
                "id": r.id,
                "device": r.device,
                "count": r.count,
                "model": r.model,
                "weight_format": r.astrasim_format,
                "runtime": r.runtime,
                "metric": r.metric,
                "published": r.value,
                "predicted": p.predicted_value,
                "published_time_s": r.published_time_s(),
                "predicted_time_s": p.predicted_time_s,
                "error": p.error,
                **{k: (p.extra or {}).get(k) for k in KEPT_COLUMNS},
                "status": "ok" if p.skipped is None else f"skipped: {p.skipped}",
            }
        )
    return pd.DataFrame.from_records(records)


def plot(predictions: list[Prediction], path: Path) -> bool:
    """Predicted vs published time, log-log, the diagonal and the +-30 % band; colour = single or
    multi-device, marker = metric. False (nothing written) when no row was predicted."""
    done = [p for p in predictions if p.predicted_time_s is not None]
    if not done:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astrasim.analysis.style import identity_axes, number, plain_axis

    markers = {"ms_per_token": "o", "prefill_tokens_per_s": "s", "ttft_s": "^"}
    labels = {
        "ms_per_token": "time per generated token",
        "prefill_tokens_per_s": "prefill (tokens/s as time)",
        "ttft_s": "time to first token",
    }
    colors = {False: "#1f77b4", True: "#d62728"}
    fig, ax = plt.subplots(figsize=(6.6, 6.0))
    for multi in (False, True):
        for metric, mk in markers.items():
            sub = [p for p in done if p.row.multi == multi and p.row.metric == metric]
            if sub:
                ax.scatter(
                    [p.row.published_time_s() for p in sub],
                    [p.predicted_time_s for p in sub],
                    marker=mk,
                    color=colors[multi],
                    s=36,
                    alpha=0.85,
                    label=f"{'multi-device' if multi else 'one device'}: {labels[metric]} ({len(sub)})",
                )
    identity_axes(ax, [p.row.published_time_s() for p in done], [p.predicted_time_s for p in done], band=1.3, pad=1.5)
    skipped = len(predictions) - len(done)
    ax.set_xlabel("published (s)")
    ax.set_ylabel("astrasim (s)")
    ax.set_title(
        f"astrasim vs published measurements ({len(done)} rows" + (f", {skipped} skipped)" if skipped else ")")
    )
    plain_axis(ax, "x", number)
    plain_axis(ax, "y", number)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return True


def check_out(out: Path) -> tuple[Path, Path]:
    """The two output paths under `out`, refused before anything runs if they cannot be written."""
    if out.exists() and not out.is_dir():
        raise UserError(f"'{out}' is a file; give a folder", field="--out")
    return (check_output_path(out / PREDICTIONS, "--out"), check_output_path(out / PLOT, "--out"))


def fmt_error(e: float | None) -> str:
    return "" if e is None or math.isnan(e) else f"{e:+.1%}"
