"""Per-op compute times for the strategy builders: profile lookup, interpolation in tokens, and
scaling to hardware that was not measured.

Rules (documented in docs/strategies.md):

* A profile table (columns profile_columns(knobs), docs/kernels.md) gives, per (model, strategy,
  devices, profiled knobs, op), the median seconds of ONE layer's op on the device holding the
  largest shard, at one or more total sequence lengths `tokens`. The profiled knobs are the union of
  the strategies' `profiled_knobs` (astrasim.strategies.registry.PROFILED_KNOBS: ASTRA's groups and
  codebook); a strategy's rows are keyed by its own ones (Strategy.profile_key) and hold 0 in the
  others; a knob column absent from a file reads as 0.
* Lookup in tokens: an exact measured `tokens` is used as is. Between two measured points the
  time (and the flops and bytes columns) is interpolated linearly in tokens. Outside the measured
  range the nearest measured point is scaled in proportion to tokens (t * T / T_nearest).
* A key with no row at all is a UserError naming the key and the `astrasim profile` command
  that measures it.
* Other hardware: roofline scaling from the device catalog (profiles/devices.yaml):
  t_target = t_measured * max(flops/peak_t, bytes/bw_t) / max(flops/peak_m, bytes/bw_m),
  with m the measured hardware's catalog entry (same id as the profile) and t the target's.
  A row with neither flops nor bytes falls back to the ratio of peak FLOP/s.
  A plain speed factor (and per-device speeds) is applied by the engine, not here.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from astrasim.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from astrasim.compute.roofline import Roofline

PROFILE_COLUMNS = (
    "model",
    "strategy",
    "devices",
    "tokens",
    "op",
    "median_s",
    "p10_s",
    "p90_s",
    "repeats",
    "flops",
    "bytes",
    "hardware",
    "threads",
    "dtype",
    "torch_version",
)
"""The columns every profile has; the profiled knobs' columns follow `devices` (profile_columns)."""
ProfileKey = tuple[tuple[str, int], ...]
"""A variant's profiled knobs as (column, value) pairs: (("groups", 32), ("codebook", 1024)); () for none."""


def profile_columns(knobs: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A profile's columns with the profiled knobs' key columns `knobs` after `devices`."""
    i = PROFILE_COLUMNS.index("devices") + 1
    return (*PROFILE_COLUMNS[:i], *knobs, *PROFILE_COLUMNS[i:])


# Optional noise columns (written by `astrasim profile` since 2026-12; older files lack them and stay
# readable): spread = (p90 - p10) / median, drift between the halves of the samples, cpu_share =
# the CPU the measuring process got per thread and wall second (1 = the cores were its own), and
# unstable = still noisier than the profiler's threshold after its re-measurements, and clock =
# what median_s measures (wall, or cpu: CPU seconds per thread, for a shared machine; docs/kernels.md).
# Lookup does not use them.
PROFILE_NOISE_COLUMNS = ("spread", "drift", "cpu_share", "unstable", "clock")
REPO_ROOT = Path(__file__).resolve().parents[2]


def profiles_dirs() -> list[Path]:
    """Where profile ids and the device catalog are looked up: $ASTRASIM_PROFILES, ./profiles,
    then the profiles/ folder of the source tree this package runs from."""
    dirs = [Path(os.environ["ASTRASIM_PROFILES"])] if os.environ.get("ASTRASIM_PROFILES") else []
    dirs += [Path.cwd() / "profiles", REPO_ROOT / "profiles"]
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def resolve_profile_path(profile: str, base_dir: Path | None = None, field: str = "hardware.profile") -> Path:
    """A profile id ("cpu" -> profiles/cpu.csv) or a path to a CSV (relative to `base_dir`, then cwd)."""
    if profile.endswith(".csv") or "/" in profile or os.sep in profile:
        p = Path(profile)
        for cand in ([base_dir / p] if base_dir and not p.is_absolute() else []) + [p]:
            if cand.is_file():
                return cand
        raise UserError(
            f"profile file '{profile}' not found; give an existing CSV or a profile id such as 'cpu'", field=field
        )
    for d in profiles_dirs():
        cand = d / f"{profile}.csv"
        if cand.is_file():
            return cand
    raise UserError(
        f"no profile '{profile}' (looked for profiles/{profile}.csv); measure it with "
        f"`astrasim profile --out profiles/{profile}.csv` or use an existing id such as 'cpu'",
        field=field,
    )


def profile_id(path: Path) -> str:
    """The hardware id of a profile file is its file name without .csv."""
    return Path(path).stem


# ---------------------------------------------------------------------------------------------
# Profile table


# column -> (kind, lower bound, bound inclusive): every value of a profile is checked on reading
# (the time the simulator uses, median_s, must be > 0; spread and counts are descriptive)
KNOB_VALUES = ("int", 0, True)  # every profiled knob column
PROFILE_VALUES = {
    "devices": ("int", 1, True),
    "tokens": ("int", 1, True),
    "repeats": ("int", 0, True),
    "threads": ("int", 0, True),
    "median_s": ("float", 0, False),
    "p10_s": ("float", 0, True),
    "p90_s": ("float", 0, True),
    "flops": ("float?", 0, True),
    "bytes": ("float?", 0, True),
    "model": ("text", None, True),
    "strategy": ("text", None, True),
    "op": ("text", None, True),
}


def read_profile_table(path: str | Path, field: str = "hardware.profile", knobs: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a profile CSV and check its schema and every value (times finite and > 0, counts
    integers, names non-empty); a bad file is one UserError naming the file, row and column.
    The one profile reader (astrasim.profiling.read_profile uses it). Extra columns are kept.
    `knobs`: the profiled knobs' key columns, checked as counts; one the file lacks reads as 0."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"profile file '{p}' not found; measure it with `astrasim profile --out {p}`", field=field)
    fix = "fix it or re-measure it with `astrasim profile`"
    try:
        df = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise UserError(f"profile '{p}' is empty; {fix}", field=field) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"profile '{p}' is not a readable CSV ({first}); {fix}", field=field) from None
    missing = [c for c in PROFILE_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"profile '{p}' lacks column(s) {', '.join(missing)}; {fix}", field=field)
    if df.empty:
        raise UserError(f"profile '{p}' has a header but no rows; {fix}", field=field)
    for k in knobs:
        if k not in df.columns:
            df.insert(list(df.columns).index("devices") + 1, k, 0)
    for col, rule in [*PROFILE_VALUES.items(), *((k, KNOB_VALUES) for k in knobs)]:
        df[col] = _checked(p, df[col], rule, fix, field)
    return df


def _checked(p: Path | str, raw: pd.Series, rule: tuple, fix: str, field: str) -> pd.Series:
    """The column converted to its kind (int64, float64, str), or a UserError naming its first bad value."""
    kind, lo, inclusive = rule
    if kind == "text":
        _first_bad(p, raw, raw.isna() | (raw.astype(str).str.strip() == ""), "is blank", fix, field)
        return raw.astype(str)
    values = raw if pd.api.types.is_numeric_dtype(raw) else pd.to_numeric(raw, errors="coerce")
    _first_bad(p, raw, values.isna() & (raw.notna() if kind == "float?" else True), "is not a number", fix, field)
    _first_bad(p, raw, values.abs() == float("inf"), "is not finite", fix, field)
    _first_bad(
        p, raw, (values < lo) if inclusive else (values <= lo), f"must be {'>=' if inclusive else '>'} {lo}", fix, field
    )
    if kind == "int":
        _first_bad(p, raw, values != values.round(), "must be an integer", fix, field)
        return values.astype("int64")
    return values.astype("float64")


def _first_bad(p: Path | str, raw: pd.Series, bad: pd.Series, why: str, fix: str, field: str) -> None:
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        value = raw.iloc[i]
        what = "is empty (or NaN)" if pd.isna(value) else f"{str(value)!r} {why}"
        raise UserError(f"profile '{p}' row {i + 2} column {raw.name} {what}; {fix}", field=field)


def profile_files(path: str | Path) -> list[Path]:
    """A profile and its extension files: profiles/cpu.csv plus profiles/cpu.*.csv (sorted by name;
    for the same key a later file's row wins). `astrasim profile` writes whole files, so missing
    keys are measured into an extension file instead of overwriting the profile."""
    p = Path(path)
    return [p] + sorted(x for x in p.parent.glob(f"{p.stem}.*.csv") if x.is_file())


def key_text(key: ProfileKey) -> str:
    """'groups=16 codebook=1024' ('' for a strategy without profiled knobs)."""
    return " ".join(f"{k}={v}" for k, v in key)


def profile_command(model: str, strategy: str, devices: int, key: ProfileKey, tokens: int, source: str) -> str:
    """The `astrasim profile` command line that measures one missing key into an extension file."""
    p = Path(source)
    tag = f"{model}-{strategy}-n{devices}" + "".join(f"-{k}{v}" for k, v in key) + f"-t{tokens}"
    from astrasim.models import CUSTOM_MODEL_FILES, known_names

    models = model if model in known_names() else CUSTOM_MODEL_FILES.get(model, f"<model file of {model}>")
    cmd = f"astrasim profile --models {models} --strategies {strategy} --devices {devices} --tokens {tokens}"
    cmd += "".join(f" --knob {k}={v}" for k, v in key)
    return cmd + f" --out {p.parent / f'{p.stem}.{tag}.csv'}"


Entry = tuple[list[int], list[float], list[float], list[float]]  # tokens, median_s, flops, bytes


class ProfileCosts:
    """Answers per-op seconds at speed 1.0 of the target hardware (see module docstring).

    Rows are indexed per set of key columns on first use: a strategy's rows by (model, strategy,
    devices, its own profiled knobs, op), so no other strategy's knob columns need to exist."""

    COLUMNS = ("model", "strategy", "devices", "op", "tokens", "median_s", "flops", "bytes")

    def __init__(self, table: pd.DataFrame, *, source: str = "profile", roofline: Roofline | None = None):
        self.source = source
        self.roofline = roofline
        self._indexes: dict[tuple[str, ...], dict[tuple, Entry]] = {}
        self._cache: dict[tuple, float] = {}
        missing = [c for c in self.COLUMNS if c not in table.columns]
        if missing:
            raise UserError(f"profile '{source}' lacks column(s) {missing}", field="hardware.profile")
        self._table = table

    def _index(self, names: tuple[str, ...]) -> dict[tuple, Entry]:
        """(model, strategy, devices, *values of `names`, op) -> measured points in tokens; duplicates
        (re-measured points) keep the last row."""
        index = self._indexes.get(names)
        if index is not None:
            return index
        t = self._table[list(self.COLUMNS)].copy()
        for k in names:
            raw = self._table[k] if k in self._table.columns else pd.Series(0, index=self._table.index, name=k)
            t[k] = _checked(self.source, raw, KNOB_VALUES, "fix or re-measure it", "hardware.profile")
        key = ["model", "strategy", "devices", *names, "op"]
        t = t.drop_duplicates(subset=[*key, "tokens"], keep="last").sort_values([*key, "tokens"], kind="stable")
        index = {}
        for k, grp in t.groupby(key, sort=True):
            model, strategy, devices, *values, op = k
            index[(str(model), str(strategy), int(devices), *(int(v) for v in values), str(op))] = (
                [int(x) for x in grp["tokens"]],
                [float(x) for x in grp["median_s"]],
                [float(x) for x in grp["flops"].fillna(0)],
                [float(x) for x in grp["bytes"].fillna(0)],
            )
        self._indexes[names] = index
        return index

    def _entry(self, model: str, strategy: str, devices: int, op: str, key: ProfileKey) -> Entry | None:
        index = self._index(tuple(k for k, _ in key))
        return index.get((model, strategy, devices, *(v for _, v in key), op))

    @classmethod
    def from_file(cls, path: str | Path, *, roofline: Roofline | None = None) -> ProfileCosts:
        """A profile file together with its extension files (profile_files)."""
        table = pd.concat([read_profile_table(f) for f in profile_files(path)], ignore_index=True)
        return cls(table, source=str(path), roofline=roofline)

    def has(self, model: str, strategy: str, devices: int, op: str, key: ProfileKey = ()) -> bool:
        return self._entry(model, strategy, devices, op, key) is not None

    def seconds(self, model: str, strategy: str, devices: int, op: str, tokens: int, key: ProfileKey = ()) -> float:
        """Seconds of one layer's `op` on the largest-shard device, scaled to the target hardware."""
        ck = (model, strategy, devices, op, tokens, key)
        hit = self._cache.get(ck)
        if hit is not None:
            return hit
        entry = self._entry(model, strategy, devices, op, key)
        if entry is None:
            cmd = profile_command(model, strategy, devices, key, tokens, self.source)
            knobs = key_text(key)
            raise UserError(
                f"profile '{self.source}' has no row for model={model} strategy={strategy} devices={devices} "
                f"{knobs + ' ' if knobs else ''}op={op} (tokens={tokens}); measure it with `{cmd}`",
                field="hardware.profile",
            )
        time, flops, nbytes = interpolate(entry, tokens)
        if self.roofline is not None:
            time *= self.roofline.factor(flops, nbytes)
        self._cache[ck] = time
        return time

    def bind(self, model: str, strategy: str, devices: int, tokens: int, key: ProfileKey = ()):
        """A one-argument lookup `op -> seconds` for one (model, strategy, devices, tokens, profiled knobs)."""
        return lambda op: self.seconds(model, strategy, devices, op, tokens, key)


def interpolate(entry: Entry, tokens: int) -> tuple[float, float, float]:
    """(time, flops, bytes) at `tokens`: exact, linear between measured points, proportional outside."""
    ts, times, flops, nbytes = entry
    i = bisect.bisect_left(ts, tokens)
    if i < len(ts) and ts[i] == tokens:
        return times[i], flops[i], nbytes[i]
    if 0 < i < len(ts):
        t0, t1 = ts[i - 1], ts[i]
        w = (tokens - t0) / (t1 - t0)
        return tuple(v[i - 1] + w * (v[i] - v[i - 1]) for v in (times, flops, nbytes))  # type: ignore[return-value]
    j = 0 if i == 0 else len(ts) - 1
    s = tokens / ts[j]
    return times[j] * s, flops[j] * s, nbytes[j] * s
