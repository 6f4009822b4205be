"""The validation campaign: measure real multi-process inference over shaped links, predict the
same points with the simulator, and compare.

Steps (`run_validation`):

1. microbenchmarks, before any point: every strategy's kernels timed alone by the shipped
   profiler (`astrasim.profiling.profile_ops`, one thread, one process) and the harness's per-op
   dispatch cost (`dispatch.py`); on each testbed, before its points, the CPU cost of a message
   (`interference.py`) and, at each bandwidth, the network's alpha and efficiency from a
   point-to-point exchange (`calibrate.py`);
2. build every point as the simulator does (`points.point_for` -> `astrasim.pointrun.engine_inputs`);
3. measure: for each topology and N, build N shaped hosts (`netns.py`), each a worker process
   pinned to a CPU (`worker.pin`), and at each bandwidth run the point's own OpGraph on every host
   (`worker.py`, `programs.py`: real kernels, the engine's collective plans); latency = the
   median over repeats of (last rank's end - common start), and its spread over repeats as the
   point's noise figure. Around the point's passes its workers also run co-run rounds
   (`corun.py`: every rank's kernels at once, no communication, one right before each pass);
4. predict each point twice (`predict.py`): **from profiles** (`from_profiles`: the kernels timed
   alone, the testbed's microbenchmarks, nothing measured during the point's passes: what a user
   with the shipped profiler gets) and **in-situ** (the kernel costs and speed jitter of the
   point's own co-run rounds: the engine and network model given the kernels' times as they ran);
5. write results.csv, summary.csv / summary.md, calibration.csv, profile.csv and the plot
   (`report.py`), each with the protocol number (`protocol.py`).

error = predicted / measured - 1 (positive: the simulator is slower than reality).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from astrasim.fileio import write_csv_atomic, write_text_atomic
from astrasim.models import ModelSpec
from astrasim.validation.calibrate import Calibration
from astrasim.validation.dispatch import dispatch_overhead_s
from astrasim.validation.idle import IDLE_START_S, wait_idle
from astrasim.validation.measure import measure, microbenchmark_profile
from astrasim.validation.netns import machine_lock
from astrasim.validation.points import machine_hosts
from astrasim.validation.predict import predict
from astrasim.validation.protocol import Settings
from astrasim.validation.report import plot, summarize, summary_markdown, verdict
from astrasim.validation.reuse import load_measurements


def run_validation(
    settings: Settings,
    out_dir: str | Path | None = "validation",
    *,
    command: str = "",
    log=print,
    trace_dir: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole campaign; writes the files into `out_dir` (None: write nothing), and with
    `trace_dir` every job's raw worker records there (`measure`). Returns (results, summary)."""
    settings.check()
    with machine_lock(log):
        t0 = time.monotonic()
        log("1/3 microbenchmarks: the kernels (each alone) and the harness's dispatch cost")
        wait_idle(log, "the campaign", limit_s=IDLE_START_S)
        profile = microbenchmark_profile(settings, log=log)
        overhead = dispatch_overhead_s()
        log(f"  dispatch cost per op (no-op chain walked by the harness): {overhead * 1e6:.1f} us")
        log(
            "2/3 measuring real forward passes over shaped links (each point's own OpGraph): per testbed its "
            "message CPU cost, per bandwidth its network calibration, per point its kernels timed all ranks at "
            "once right before each pass and in windows before and after its passes"
        )
        measured, profile, cals, cal_table = measure(
            settings, machine_hosts(overhead), profile, log=log, trace_dir=trace_dir
        )
    log("3/3 simulating the same points")
    results = predict(measured)
    summary = summarize(results)
    elapsed = time.monotonic() - t0
    if out_dir is not None:
        write_outputs(
            Path(out_dir),
            results,
            summary,
            profile,
            cal_table,
            cals,
            settings.model,
            summary_markdown(results, summary, cals, settings, command, elapsed),
        )
    log(verdict(summary)[1] + f" ({elapsed:.0f} s)")
    return results, summary


def calibration_rows(cal_table: pd.DataFrame, cals: dict[tuple, Calibration]) -> pd.DataFrame:
    """calibration.csv: every raw transfer with its testbed's fit (only the columns when a campaign
    of single-device points calibrated nothing)."""
    fits = pd.DataFrame([c.to_dict() for c in cals.values()], columns=list(Calibration.__dataclass_fields__))
    return cal_table.merge(fits, on=["topology", "hosts", "bandwidth_mbps"]) if len(cal_table) else fits


def write_outputs(
    out: Path,
    results: pd.DataFrame,
    summary: pd.DataFrame,
    profile: pd.DataFrame,
    cal_table: pd.DataFrame,
    cals: dict[tuple, Calibration],
    model: ModelSpec,
    markdown: str,
) -> None:
    """The campaign's files (each written whole or not at all): results, summary, profile and
    calibration CSVs, the model measured (model.json), summary.md and the plot."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "model.json", json.dumps(asdict(model), indent=1, sort_keys=True) + "\n")
    cal_rows = calibration_rows(cal_table, cals)
    for name, df in (
        ("results.csv", results),
        ("summary.csv", summary),
        ("profile.csv", profile),
        ("calibration.csv", cal_rows),
    ):
        write_csv_atomic(out / name, df, "%.6g")
    write_text_atomic(out / "summary.md", markdown)
    plot(results, out / "predicted_vs_measured.png")


def repredict(
    settings: Settings, measurements: str | Path, out_dir: str | Path | None, *, command: str = "", log=print
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Today's simulator on an earlier campaign's measurements and microbenchmarks (`reuse.py`):
    nothing is measured or refitted. Writes the same files into `out_dir` (None: nothing)."""
    t0 = time.monotonic()
    measured, profile, cals, cal_table = load_measurements(settings, measurements)
    results = predict(measured)
    summary = summarize(results)
    if out_dir is not None:
        note = (
            f"Predicted again by today's simulator from the measurements and microbenchmarks stored in "
            f"`{measurements}` (nothing re-measured; the machine line is where it was re-predicted)."
        )
        write_outputs(
            Path(out_dir),
            results,
            summary,
            profile,
            cal_table,
            cals,
            settings.model,
            summary_markdown(results, summary, cals, settings, command, None, note),
        )
    log(verdict(summary)[1] + f" (re-predicted {len(results)} stored points in {time.monotonic() - t0:.1f} s)")
    return results, summary
