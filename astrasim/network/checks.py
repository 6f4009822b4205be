"""The checks of network parameters that users write (preset kinds in astrasim.network.topology,
custom graphs in astrasim.network.custom): one UserError naming the field each, and bandwidth
traces (inline or CSV), piecewise constant."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from astrasim.errors import UserError

Trace = list[tuple[float, float]]


def number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"must be a number, got {value!r}", field)
    value = float(value)
    if not math.isfinite(value):
        raise UserError(f"must be finite, got {value!r}", field)
    return value


def check_bandwidth(value: Any, field: str) -> float:
    value = number(value, field)
    if value <= 0:
        raise UserError(f"must be > 0 Mbps, got {value:g}", field)
    return value


def check_latency(value: Any, field: str) -> float:
    value = number(value, field)
    if value < 0:
        raise UserError(f"must be >= 0 seconds, got {value:g}", field)
    return value


def check_efficiency(value: Any, field: str) -> float:
    value = number(value, field)
    if not 0 < value <= 1:
        raise UserError(f"must be in (0, 1], got {value:g}", field)
    return value


def check_loss(value: Any, field: str) -> float:
    value = number(value, field)
    if not 0 <= value < 1:
        raise UserError(f"must be in [0, 1), got {value:g}", field)
    return value


def check_trace(trace: Any, field: str = "bandwidth_trace") -> Trace | None:
    """Validate a piecewise-constant trace: (time_s >= 0, strictly increasing; Mbps >= 0)."""
    if trace is None:
        return None
    if isinstance(trace, (str, Path)):
        return load_bandwidth_trace(trace)
    try:
        points = [(p[0], p[1]) for p in trace]
    except (TypeError, IndexError, KeyError):
        raise UserError("must be a list of [time_s, bandwidth_mbps] pairs or a CSV path", field) from None
    if not points:
        raise UserError("must have at least one [time_s, bandwidth_mbps] point", field)
    out: Trace = []
    for k, (t, b) in enumerate(points):
        t = number(t, f"{field}[{k}].time_s")
        b = number(b, f"{field}[{k}].bandwidth_mbps")
        if t < 0:
            raise UserError(f"time must be >= 0, got {t:g}", f"{field}[{k}].time_s")
        if b < 0:
            raise UserError(f"bandwidth must be >= 0 Mbps, got {b:g}", f"{field}[{k}].bandwidth_mbps")
        if out and t <= out[-1][0]:
            raise UserError("times must be strictly increasing", f"{field}[{k}].time_s")
        out.append((t, b))
    return out


def check_trace_ends_up(trace: Trace | None, field: str) -> Trace | None:
    """User traces (scenario files, custom graphs) must end above 0 Mbps: the last value holds
    forever, so a transfer still running then would never finish (the engine would report a
    deadlock after the whole run)."""
    if trace and trace[-1][1] == 0:
        raise UserError(
            "the last bandwidth holds forever and is 0, so a transfer after it never finishes; "
            "end the trace with a bandwidth > 0",
            f"{field}[{len(trace) - 1}].bandwidth_mbps",
        )
    return trace


def load_bandwidth_trace(path: str | Path) -> Trace:
    """Read a CSV trace with columns time_s, bandwidth_mbps (piecewise constant, see module doc)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"trace file {str(p)!r} not found", "bandwidth_trace")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"cannot read trace {str(p)!r} as text ({type(exc).__name__}); give a CSV with columns "
            "time_s, bandwidth_mbps",
            "bandwidth_trace",
        ) from None
    if not text.strip():
        raise UserError(
            f"trace {str(p)!r} is empty; give a header time_s,bandwidth_mbps and one row per change", "bandwidth_trace"
        )
    reader = csv.DictReader(text.splitlines())
    cols = [c.strip() for c in (reader.fieldnames or [])]
    for col in ("time_s", "bandwidth_mbps"):
        if col not in cols:
            raise UserError(
                f"{str(p)!r} has no header naming {col!r}; its first line must be time_s,bandwidth_mbps",
                "bandwidth_trace",
            )
    rows = []
    for k, row in enumerate(reader):
        row = {key.strip(): v for key, v in row.items() if key is not None}
        try:
            rows.append((float(row["time_s"]), float(row["bandwidth_mbps"])))
        except (TypeError, ValueError):
            raise UserError(
                f"{str(p)!r} row {k + 2}: not a number in {row.get('time_s')!r}, "
                f"{row.get('bandwidth_mbps')!r}; give seconds and Mbps",
                "bandwidth_trace",
            ) from None
    field = f"bandwidth_trace ({p.name})"
    return check_trace_ends_up(check_trace(rows, field), field)  # type: ignore[return-value]


def check_node(value: Any, field: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UserError(f"node names must be integers (devices) or strings, got {value!r}", field)
    return value
