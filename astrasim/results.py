"""Result rows and result files: the columns, how every value is written, and the journal.

Result files are tidy (one row per point; columns `COLUMNS`) and written as points finish: each
row is one complete line, appended, flushed and fsync'ed, so an interrupted sweep (Ctrl-C,
kill -9) loses at most the line being written; resuming drops a torn last line.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from astrasim.errors import UserError
from astrasim.fileio import atomic_path
from astrasim.strategies.registry import KNOB_FIELDS

IDENTITY_COLUMNS = ("scenario", "model", "tokens", "strategy", *KNOB_FIELDS, "devices", "hardware", "speed",
                    "speeds", "network", "bandwidth_mbps", "latency_param_s", "efficiency", "loss_rate", "trace",
                    "broadcast", "element_bits", "causal_skip", "algorithm",
                    "weight_bits", "partition")  # = Point.identity() keys
KNOB_COLUMNS = IDENTITY_COLUMNS  # the old name
RESULT_COLUMNS = ("latency_s", "compute_s", "exposed_comm_s", "idle_s", "comm_fraction", "comm_bits",
                  "n_messages", "single_latency_s", "speedup_vs_single")
MEMORY_COLUMNS = ("memory_gb", "memory_limit_gb", "fits", "single_fits")  # astrasim.scenario.fleet.MemoryCheck
RESULT_COLUMNS = RESULT_COLUMNS + MEMORY_COLUMNS
COLUMNS = IDENTITY_COLUMNS + RESULT_COLUMNS


def format_value(v: Any) -> str:
    """How every value is written to a result file: deterministic, round-trips floats exactly."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return repr(v)
    return str(v)


def row_line(row: dict[str, Any]) -> str:
    """A result row as one CSV line (COLUMNS order)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(format_value(row[c]) for c in COLUMNS)
    return buf.getvalue()


def row_key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(format_value(row[c]) for c in IDENTITY_COLUMNS)


def header_line() -> str:
    return ",".join(COLUMNS) + "\n"


def read_journal(path: Path) -> dict[tuple[str, ...], str]:
    """Finished rows of a journal, key -> line; truncates a torn last line away (resume)."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
        data = data[:end]
    lines = data.decode().splitlines(keepends=True)
    if not lines:
        return {}
    header = next(csv.reader([lines[0]]))
    if tuple(header) != COLUMNS:
        raise UserError(f"'{path}' holds other columns than this version writes; delete it or choose another --out",
                        field="--out")
    done: dict[tuple[str, ...], str] = {}
    for line in lines[1:]:
        fields = next(csv.reader([line]), [])
        if len(fields) != len(COLUMNS):
            continue
        done[tuple(fields[: len(IDENTITY_COLUMNS)])] = line
    return done


def lines_of(df: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Rows of a finished result frame as journal lines, key -> line (resume of a .parquet)."""
    out = {}
    for rec in df.to_dict("records"):
        row = {c: (None if isinstance(rec[c], float) and math.isnan(rec[c]) else rec[c]) for c in COLUMNS}
        out[row_key(row)] = row_line(row)
    return out


class Journal:
    """Append-only CSV of finished rows: one complete line per row, flushed and fsync'ed."""

    def __init__(self, path: Path, fresh: bool, rows: Iterable[str] = ()):
        """fresh: start with the header alone; else keep the file, or start it with `rows`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh or not path.exists() or path.stat().st_size == 0:
            with atomic_path(path) as tmp:
                tmp.write_text(header_line() + ("" if fresh else "".join(rows)))
        self.fh = open(path, "a", encoding="utf-8")

    def append(self, line: str) -> None:
        self.fh.write(line)
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


def read_results_text(text: str) -> pd.DataFrame:
    """A result file's text as a frame (speeds and trace stay text)."""
    return pd.read_csv(io.StringIO(text), converters={"speeds": str, "trace": str})
