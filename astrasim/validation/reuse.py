"""Predict stored measurements again: `astrasim validate --reuse-measurements DIR`.

Measuring takes root, network namespaces and ten quiet minutes; predicting takes a second. A
campaign's folder keeps everything both predictions need: the measured rows (results.csv), the
kernel costs (profile.csv: the rows timed alone, which the prediction from profiles uses, and each
point's co-run rows, which the in-situ one uses), the network calibration (calibration.csv) and
the model measured (model.json). This module rebuilds each point from them exactly as the
campaign built it (`points.point_for`, the testbed's hosts, cores and dispatch cost from the row)
and runs today's simulator on it, so a change to the engine or the network model is checked
against the published real runs without measuring again (and without root). Nothing is
re-measured or refitted here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from astrasim.errors import UserError
from astrasim.strategies import registry
from astrasim.validation.calibrate import Calibration
from astrasim.validation.points import alone_costs, point_costs, point_for, point_key

MEASURED_COLUMNS = (
    "topology",
    "hosts",
    "bandwidth_mbps",
    "strategy",
    "measured_s",
    "measured_min_s",
    "measured_max_s",
    "noise",
    "measured_compute_s",
    "in_pass_ops",
    "repeats",
    "late_start_s",
    "loadavg_1m",
    "stolen",
)
OPTIONAL_COLUMNS = (
    "passes_dropped",
    "job_stolen",
    "busy_before",
)  # absent from the oldest campaigns kept: carried over where present
# Campaigns measured before the protocol was frozen (protocol 0: results.csv has no `protocol`
# column) named the in-situ prediction `predicted_s` and the prediction from the op times inside
# the passes `predicted_in_situ_s`; they had no prediction from profiles. Their names, as today's:
LEGACY_RESULTS = {
    "in_situ_ops": "in_pass_ops",
    "predicted_s": "predicted_in_situ_s",
    "error": "error_in_situ",
    "abs_error": "abs_error_in_situ",
    "predicted_compute_s": "predicted_compute_in_situ_s",
    "predicted_in_situ_s": "predicted_in_pass_s",
    "error_in_situ": "error_in_pass",
}
LEGACY_SUMMARY = {
    "median_abs_error": "median_abs_error_in_situ",
    "max_abs_error": "max_abs_error_in_situ",
    "mean_error": "mean_error_in_situ",
    "median_abs_error_in_situ": "median_abs_error_in_pass",
    "max_abs_error_in_situ": "max_abs_error_in_pass",
}


def read_results(folder: str | Path) -> pd.DataFrame:
    """A campaign's results.csv with today's column names (a legacy one renamed, protocol 0)."""
    table = pd.read_csv(Path(folder) / "results.csv")
    if "protocol" not in table.columns:
        table = table.rename(columns=LEGACY_RESULTS).assign(protocol=0)
    return table


def read_summary(folder: str | Path) -> pd.DataFrame:
    """A campaign's summary.csv with today's column names (a legacy one renamed)."""
    table = pd.read_csv(Path(folder) / "summary.csv")
    if "protocol" not in table.columns:
        table = table.rename(columns=LEGACY_SUMMARY).assign(protocol=0)
    return table


SETUP_COLUMNS = ("hosts_on_machine", "cores", "op_overhead_s", "message_cpu_s", "speed_jitter")
FILES = ("results.csv", "profile.csv", "calibration.csv", "model.json")


def _read(folder: Path, name: str, needed: tuple[str, ...]) -> pd.DataFrame:
    path = folder / name
    if not path.is_file():
        raise UserError(
            f"'{path}' not found; give the folder of an earlier `astrasim validate` run (it holds {', '.join(FILES)})",
            field="reuse_measurements",
        )
    try:
        table = read_results(folder) if name == "results.csv" else pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(
            f"'{path}' is not a readable CSV ({exc}); measure again with `astrasim validate`",
            field="reuse_measurements",
        ) from None
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise UserError(
            f"'{path}' lacks column(s) {missing}: it was not written by this version of "
            f"`astrasim validate`; measure again",
            field="reuse_measurements",
        )
    return table


def load_measurements(
    settings, folder: str | Path
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple, Calibration], pd.DataFrame]:
    """(measured rows with their rebuilt `_point`, the profile rows, {(topology, N, bandwidth):
    Calibration}, the raw calibration table) of an earlier campaign; its profiles are installed
    under the keys the campaign used."""
    from astrasim.strategies import parse_label

    folder = Path(folder)
    results = _read(folder, "results.csv", MEASURED_COLUMNS + SETUP_COLUMNS)
    profile = _read(
        folder,
        "profile.csv",
        ("model", "strategy", "devices", "op", "median_s", "topology", "hosts", "bandwidth_mbps", "label"),
    )
    for k in registry.PROFILED_KNOBS:  # a profiled knob's column absent from the file reads as 0
        if k not in profile.columns:
            profile[k] = 0
    cal_table = _read(
        folder,
        "calibration.csv",
        ("topology", "hosts", "bandwidth_mbps", "alpha_s", "efficiency", "max_rel_residual", "points"),
    )
    try:
        stored = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"'{folder / 'model.json'}' is missing or unreadable ({exc}); measure again with `astrasim validate`",
            field="reuse_measurements",
        ) from None
    from astrasim.models import ModelSpec

    # fields a stored model.json predates take their defaults (ModelSpec grows fields, old campaigns stay valid)
    defaults = {f.name: f.default for f in dataclasses.fields(ModelSpec)}
    filled = (
        asdict(ModelSpec(**{k: stored.get(k, defaults[k]) for k in defaults}))
        if all(k in stored for k in defaults if defaults[k] is dataclasses.MISSING)
        else stored
    )
    differ = sorted(k for k, v in asdict(settings.model).items() if filled.get(k) != v)
    if differ:
        raise UserError(
            f"the measurements in '{folder}' are of another model (it differs in {', '.join(differ)}); "
            f"give the scenario they were measured with",
            field="model",
        )
    alone = profile[profile["topology"] == "alone"].drop(columns=["topology", "hosts", "bandwidth_mbps", "label"])
    alone = alone.reset_index(drop=True)
    base = alone_costs(alone, source=f"{folder}/profile.csv")
    timed = {}  # point_key -> {op: seconds} of that point's co-run windows
    for (topo, n, bw, label), rows in profile[profile["topology"] != "alone"].groupby(
        ["topology", "hosts", "bandwidth_mbps", "label"], dropna=False
    ):
        key = point_key(None if topo == "none" else str(topo), int(n), float(bw), str(label))
        timed[key] = dict(zip(rows["op"], rows["median_s"]))
    cals = {}
    for (topo, n, bw), rows in cal_table.groupby(["topology", "hosts", "bandwidth_mbps"]):
        r = rows.iloc[0]
        cals[(str(topo), int(n), float(bw))] = Calibration(
            str(topo),
            float(r["alpha_s"]),
            float(r["efficiency"]),
            float(r["max_rel_residual"]),
            int(r["points"]),
            int(n),
            float(bw),
        )
    measured = []
    for row in results.to_dict("records"):
        label = str(row["strategy"])
        try:
            parse_label(label)
        except Exception as exc:
            raise UserError(
                f"results.csv names strategy '{label}', which this version cannot build ({exc})",
                field="reuse_measurements",
            ) from None
        topo = None if row["topology"] == "none" else str(row["topology"])
        n, bw = int(row["hosts"]), float(row["bandwidth_mbps"])
        key = point_key(topo, n, bw, label)
        if key not in timed:
            raise UserError(
                f"profile.csv has no co-run rows of point ({row['topology']}, N={n}, {bw:g} Mbps, "
                f"{label}); measure again",
                field="reuse_measurements",
            )
        costs, _ = point_costs(alone, label, n, timed[key], key)
        setup = {
            "hosts": int(row["hosts_on_machine"]),
            "cores_per_host": int(row["cores"]),
            "op_overhead_s": float(row["op_overhead_s"]),
            "message_cpu_s": float(row["message_cpu_s"]),
            "speed_jitter": float(row["speed_jitter"]),
        }
        cal = cals.get((topo, n, bw))
        if topo is not None and cal is None:
            raise UserError(
                f"calibration.csv has no calibration of testbed ({topo}, N={n}) at {bw:g} Mbps; measure again",
                field="reuse_measurements",
            )
        point = point_for(settings, label, n, topo, bw, cal, setup, key, costs)
        measured.append(
            {c: row[c] for c in MEASURED_COLUMNS + OPTIONAL_COLUMNS if c in row}
            | {"protocol": int(row["protocol"]), "_point": point, "_alone": base}
        )
    raw_cal = cal_table.drop(
        columns=[c for c in ("alpha_s", "efficiency", "max_rel_residual", "points") if c in cal_table.columns]
    )
    return pd.DataFrame(measured), profile, cals, raw_cal
