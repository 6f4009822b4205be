"""Result rows and result files: the columns, how every value is written, and the journal.

Result files are tidy (one row per point; columns `COLUMNS`) and written as points finish: each
row is one complete line, appended, flushed and fsync'ed, so an interrupted sweep (Ctrl-C,
kill -9) loses at most the line being written; resuming drops a torn last line.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from astrasim.errors import UserError
from astrasim.fileio import atomic_path, format_value  # noqa: F401 (format_value: re-exported)
from astrasim.scenario.grid import IDENTITY_COLUMNS  # the one definition of a point's identity (grid.IDENTITY)

KNOB_COLUMNS = IDENTITY_COLUMNS  # the old name
RESULT_COLUMNS = (
    "latency_s",
    "compute_s",
    "exposed_comm_s",
    "idle_s",
    "comm_fraction",
    "comm_bits",
    "n_messages",
    "single_latency_s",
    "speedup_vs_single",
)
MEMORY_COLUMNS = ("memory_gb", "memory_limit_gb", "fits", "single_fits")  # astrasim.scenario.fleet.MemoryCheck
RESULT_COLUMNS = RESULT_COLUMNS + MEMORY_COLUMNS
GENERATION_COLUMNS = ("ttft_s", "tpot_s", "e2e_s")  # empty when output_tokens = 0 (pointrun.generation_columns)
RESULT_COLUMNS += GENERATION_COLUMNS
STREAM_COLUMNS = ("throughput_per_s", "latency_p50_s", "latency_p90_s", "latency_p99_s", "utilization", "stable")
RESULT_COLUMNS += STREAM_COLUMNS  # streams: astrasim.streams.StreamStats.columns
RESULT_COLUMNS += ("compute_source",)  # measured | calibrated | datasheet (astrasim.compute.hardware.compute_source)
ENERGY_COLUMNS = ("energy_j", "energy_per_token_j", "avg_power_w")  # astrasim.placement.energy
RESULT_COLUMNS += ENERGY_COLUMNS
COLUMNS = IDENTITY_COLUMNS + RESULT_COLUMNS


def format_ratio(x: float) -> str:
    """A speedup for people: three significant digits, so 0.005x is not printed as 0.00x."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.3g}x" if abs(x) < 100 else f"{x:.0f}x"


def row_line(row: dict[str, Any]) -> str:
    """A result row as one CSV line (COLUMNS order)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(format_value(row[c]) for c in COLUMNS)
    return buf.getvalue()


def row_key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(format_value(row[c]) for c in IDENTITY_COLUMNS)


def header_line() -> str:
    return ",".join(COLUMNS) + "\n"


# Result values a resumed row must hold (other columns are free text): column -> may be empty
_CHECKED_VALUES = {
    "latency_s": False,
    "compute_s": False,
    "exposed_comm_s": False,
    "idle_s": False,
    "comm_fraction": False,
    "comm_bits": False,
    "n_messages": False,
    "single_latency_s": False,
    "speedup_vs_single": True,
}


def row_problem(fields: list[str]) -> str | None:
    """Why a journal line cannot be kept (wrong field count, a result value that is not a finite
    number >= 0), or None."""
    if len(fields) != len(COLUMNS):
        return f"{len(fields)} fields instead of {len(COLUMNS)}"
    for col, may_be_empty in _CHECKED_VALUES.items():
        text = fields[COLUMNS.index(col)]
        if text == "" and may_be_empty:
            continue
        try:
            value = float(text)
        except ValueError:
            return f"{col}={text!r} is not a number"
        if not (math.isfinite(value) and value >= 0):
            return f"{col}={text!r} is not a finite number >= 0"
    return None


def read_journal(path: Path, rejected: list[str] | None = None) -> dict[tuple[str, ...], str]:
    """Finished rows of a journal, key -> line; truncates a torn last line away (resume). Lines
    whose values are not valid (row_problem) are left out (and described in `rejected`)."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
        data = data[:end]
    try:
        lines = data.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        raise UserError(
            f"'{path}' is not a text result file; delete it or choose another --out", field="--out"
        ) from None
    if not lines:
        return {}
    header = next(csv.reader([lines[0]]))
    if tuple(header) != COLUMNS:
        raise UserError(
            f"'{path}' holds other columns than this version writes; delete it or choose another --out", field="--out"
        )
    done: dict[tuple[str, ...], str] = {}
    for n, line in enumerate(lines[1:], start=2):
        fields = next(csv.reader([line]), [])
        problem = row_problem(fields)
        if problem is not None:
            if rejected is not None:
                rejected.append(f"line {n}: {problem}")
            continue
        done[tuple(fields[: len(IDENTITY_COLUMNS)])] = line
    return done


# ---------------------------------------------------------------------------------------------
# Input fingerprints: a resumed row is kept only if every input it was computed from is unchanged


def fingerprint_path(final: Path) -> Path:
    """Where the fingerprints of a result file's rows are kept: `<out>.inputs` beside it."""
    return final.with_name(final.name + ".inputs")


def key_digest(key: tuple[str, ...]) -> str:
    return hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:32]


PACKAGE = Path(__file__).resolve().parent
SOURCE_SUFFIXES = (".py", ".c", ".cc", ".h", ".yaml", ".json", ".csv")  # the package's code and data, no build output


def source_digest(root: Path = PACKAGE) -> str:
    """A hash of the simulator's code: every source file of the package (its path and content). A
    row computed by other code never passes for this code's (the version number stays the same
    across many behaviour-changing commits)."""
    h = hashlib.sha256()
    for f in sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts
    ):
        h.update(f"{f.relative_to(root).as_posix()}\0".encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """`source_digest` of this package (hashed once per process)."""
    return source_digest(PACKAGE)


class InputDigests:
    """Fingerprints of points: their full description (model shape, knobs, custom graph, every
    option) and the content of every file they read (profile and its extension files, trace,
    device catalog), plus the simulator's code (`code_digest`). File contents are hashed once
    per run."""

    def __init__(self):
        self._files: dict[str, str] = {}

    def file(self, path: str | Path) -> str:
        key = str(path)
        if key not in self._files:
            self._files[key] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return self._files[key]

    def files_of(self, point) -> list[Path]:
        """The files a point's row depends on."""
        from astrasim.compute.catalog import catalog_path
        from astrasim.compute.profiles import profile_files

        files = profile_files(point.profile_path)
        if point.network.trace_path:
            files.append(Path(point.network.trace_path))
        if point.device is not None:
            files.append(catalog_path())
        return files

    def point(self, point) -> str:
        from dataclasses import replace

        described = replace(point, profile_path="", network=replace(point.network, trace_path=None))
        h = hashlib.sha256(f"astrasim {code_digest()}\n{described!r}\n".encode())
        for f in self.files_of(point):
            h.update(f"{Path(f).name} {self.file(f)}\n".encode())
        return h.hexdigest()[:32]


def read_fingerprints(path: Path) -> dict[str, str]:
    """key digest -> inputs fingerprint (the last line of a key wins; a torn line is ignored)."""
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split(",")
        if len(parts) == 2 and len(parts[0]) == 32 and len(parts[1]) == 32:
            out[parts[0]] = parts[1]
    return out


def lines_of(df: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Rows of a finished result frame as journal lines, key -> line (resume of a .parquet)."""
    out = {}
    for rec in df.to_dict("records"):
        row = {c: (None if isinstance(rec[c], float) and math.isnan(rec[c]) else rec[c]) for c in COLUMNS}
        out[row_key(row)] = row_line(row)
    return out


class Journal:
    """Append-only CSV of finished rows (one complete line per row, flushed and fsync'ed), with the
    inputs fingerprint of each row appended to `<out>.inputs` after it (a row without one is
    recomputed on resume)."""

    def __init__(
        self,
        path: Path,
        fingerprints: Path,
        rows: dict[tuple[str, ...], str] | None = None,
        prints: dict[str, str] | None = None,
    ):
        """Start the journal afresh with `rows` (key -> line) and their fingerprints."""
        path.parent.mkdir(parents=True, exist_ok=True)
        rows, prints = rows or {}, prints or {}
        with atomic_path(path) as tmp:
            tmp.write_text(header_line() + "".join(rows.values()))
        write_fingerprints(fingerprints, {k: prints[key_digest(k)] for k in rows})
        self.fh = open(path, "a", encoding="utf-8")
        self.fp = open(fingerprints, "a", encoding="utf-8")

    def append(self, line: str, key: tuple[str, ...], fingerprint: str) -> None:
        for fh, text in ((self.fh, line), (self.fp, f"{key_digest(key)},{fingerprint}\n")):
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def close(self) -> None:
        self.fh.close()
        self.fp.close()


def write_fingerprints(path: Path, prints: dict[tuple[str, ...], str]) -> None:
    """Rewrite `<out>.inputs` (atomically) with one line per key, in the given order."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{key_digest(k)},{v}\n" for k, v in prints.items()))


def read_results_text(text: str) -> pd.DataFrame:
    """A result file's text as a frame (speeds and trace stay text)."""
    return pd.read_csv(io.StringIO(text), converters={"speeds": str, "trace": str})
