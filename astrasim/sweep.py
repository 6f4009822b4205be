"""Running a scenario's grid: serially, in local worker processes, or on a Dask cluster.

Result files are tidy (one row per point; columns `COLUMNS`) and written as points finish: each
row is one complete line, appended, flushed and fsync'ed, so an interrupted sweep (Ctrl-C,
kill -9) loses at most the line being written. `resume=True` drops a torn last line, keeps the
finished rows and runs only the missing points. When every point is done the file is rewritten
(atomically) in grid order, so serial, local-worker and Dask runs give byte-identical files.
A .parquet output is journaled the same way in `<out>.partial.csv` and converted at the end.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from astrasim.errors import UserError
from astrasim.fileio import atomic_path
from astrasim.pointrun import PRELOADED_TRACES, build_point_graph, load_trace, simulate_point
from astrasim.results import (
    COLUMNS, IDENTITY_COLUMNS, KNOB_COLUMNS, RESULT_COLUMNS, Journal, header_line, lines_of, read_journal,
    read_results_text, row_key, row_line,
)
from astrasim.scenario import Point, Scenario, load_scenario, point_key
from astrasim.strategies.costs import costs_for
from astrasim.strategies.registry import label_of, single_device_strategy

__all__ = ["COLUMNS", "IDENTITY_COLUMNS", "KNOB_COLUMNS", "RESULT_COLUMNS", "run_sweep", "best_strategies",
           "simulate_point", "build_point_graph"]


def _output_paths(out: Path) -> tuple[Path, Path]:
    if out.suffix == ".csv":
        return out, out
    if out.suffix == ".parquet":
        return out, out.with_name(out.name + ".partial.csv")
    raise UserError(f"unknown result format '{out.suffix}'; use a .csv or .parquet path", field="--out")


# ---------------------------------------------------------------------------------------------
# Executors: each yields rows as points finish (any order)


def _serial(points: list[Point]) -> Iterator[dict[str, Any]]:
    for p in points:
        yield simulate_point(p)


def _simulate_many(points: list[Point]) -> list[dict[str, Any]]:
    return [simulate_point(p) for p in points]


def _local(points: list[Point], workers: int) -> Iterator[dict[str, Any]]:
    """Points go to the workers in small batches (a point takes milliseconds: one task per point
    would spend more on inter-process traffic than on simulating); rows are yielded per batch."""
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    size = max(1, min(16, len(points) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending = {pool.submit(_simulate_many, points[i:i + size]) for i in range(0, len(points), size)}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield from fut.result()
        finally:
            for fut in pending:
                fut.cancel()


def _preload(costs: dict, traces: dict[str, list]) -> None:
    """Dask workers: install the client's costs and traces in this process's caches, so workers
    need not see the client's files."""
    from astrasim.strategies import costs as costs_mod

    costs_mod.PRELOADED.update(costs)
    PRELOADED_TRACES.update(traces)


def _simulate_with(point: Point, shared) -> dict[str, Any]:
    _preload(*shared)
    return simulate_point(point)


def _dask_client(address: str):
    """Connect to a Dask scheduler (before any file is touched)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise UserError("dask.distributed is not installed; pip install 'dask[distributed]'", field="--dask") from None
    try:
        return Client(address, timeout="5s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"cannot reach the Dask scheduler at '{address}' ({' '.join(str(exc).split())}); start one "
                        f"with `dask scheduler` and give its tcp://host:port", field="--dask") from None


def _dask(points: list[Point], client) -> Iterator[dict[str, Any]]:
    from distributed import as_completed

    costs = {(p, d): costs_for(p, d) for p, d in {(pt.profile_path, pt.device) for pt in points}}
    traces = {t: load_trace(t) for t in sorted({pt.network.trace_path for pt in points if pt.network.trace_path})}
    try:
        shared = client.scatter([(costs, traces)], broadcast=True)[0]
        futures = client.map(_simulate_with, points, shared=shared, pure=False)
        for fut in as_completed(futures, loop=client.loop):
            yield fut.result()
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# The sweep


def _check_points(points: list[Point]) -> None:
    """Everything that can fail before any simulation: profile keys, topology parameters."""
    for p in points:
        build_point_graph(p)


def run_sweep(scenario_or_path: Scenario | str | Path, *, out: str | Path | None = None, workers: int = 1,
              dask_address: str | None = None, resume: bool = False, progress: bool = True,
              overrides: list[str] | None = None,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> pd.DataFrame:
    """Run every point of a scenario and write the result file; returns the rows in grid order.

    out: .csv or .parquet path (default results/<scenario name>.csv); workers: local processes
    (1 = serial); dask_address: run on that Dask scheduler instead; resume: keep the finished
    rows of an interrupted run. Bad input raises UserError before any file is touched."""
    sc = scenario_or_path if isinstance(scenario_or_path, Scenario) else load_scenario(scenario_or_path, overrides)
    if workers < 1:
        raise UserError(f"workers={workers} must be >= 1", field="--workers")
    points = sc.points()
    out_path = Path(out) if out is not None else Path("results") / f"{sc.name}.csv"
    final, journal_path = _output_paths(out_path)
    _check_points(points)

    keys = [point_key(p) for p in points]
    grid = set(keys)
    done: dict[tuple[str, ...], str] = {}
    if resume and journal_path.exists():
        done = {k: v for k, v in read_journal(journal_path).items() if k in grid}
    elif resume and final != journal_path and final.exists():  # a finished parquet: its rows are done
        done = {k: v for k, v in lines_of(pd.read_parquet(final)).items() if k in grid}
    todo = [p for p, k in zip(points, keys) if k not in done]

    client = _dask_client(dask_address) if dask_address else None
    journal = Journal(journal_path, fresh=not resume, rows=done.values())
    try:
        if client is not None:
            rows = _dask(todo, client)
        elif workers > 1 and len(todo) > 1:
            rows = _local(todo, workers)
        else:
            rows = _serial(todo)
        with _progress(progress, len(points), len(done)) as advance:
            for row in rows:
                line = row_line(row)
                journal.append(line)
                done[row_key(row)] = line
                if on_row:
                    on_row(row)
                advance()
    finally:
        journal.close()

    text = header_line() + "".join(done[k] for k in keys)
    if final.suffix == ".csv":
        with atomic_path(final) as tmp:
            tmp.write_text(text)
    df = read_results_text(text)
    if final.suffix == ".parquet":
        with atomic_path(final) as tmp:
            df.to_parquet(tmp, index=False)
        journal_path.unlink(missing_ok=True)
    return df


class _progress:
    """A rich progress bar (or nothing): `with _progress(on, total, done) as advance: advance()`."""

    def __init__(self, enabled: bool, total: int, completed: int):
        self.enabled, self.total, self.completed = enabled, total, completed
        self.bar = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            transient=False)
        self.bar.start()
        task = self.bar.add_task("points", total=self.total, completed=self.completed)
        return lambda: self.bar.advance(task)  # type: ignore[union-attr]

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


NOTHING_FITS = "nothing fits"


def best_strategies(df: pd.DataFrame) -> pd.DataFrame:
    """The fastest strategy per (model, tokens, hardware, network, devices, bandwidth, weight bits),
    among the points that fit in memory. A split that is not faster than one device is never
    recommended: then the answer is the single-device strategy (if it fits), else NOTHING_FITS."""
    multi = df[df["devices"] > 1].copy()
    if multi.empty:
        return multi
    multi["label"] = [label_of(r) for r in multi.to_dict("records")]
    group = [c for c in ("model", "tokens", "hardware", "network", "devices", "bandwidth_mbps", "weight_bits")
             if c in multi.columns]
    cols = ["latency_s", "speedup_vs_single", "comm_fraction", "memory_gb"]
    single = single_device_strategy().name
    fits = multi["fits"].astype(str).str.lower().isin(["true", "1"]) if "fits" in multi.columns else True
    rows = []
    for _, grp in multi.groupby(group, sort=False):
        first = grp.iloc[0]
        ok = grp[fits[grp.index]] if not isinstance(fits, bool) else grp
        pick = ok.loc[ok["latency_s"].idxmin()] if not ok.empty else None
        row = {c: first[c] for c in group}
        if pick is not None and pick["latency_s"] < pick["single_latency_s"]:
            row.update(best=pick["label"], **{c: pick[c] for c in cols if c in pick.index})
        else:
            single_fits = str(first.get("single_fits", True)).lower() in ("true", "1")
            row.update(best=single if single_fits else NOTHING_FITS, latency_s=first["single_latency_s"],
                       speedup_vs_single=1.0, comm_fraction=0.0, memory_gb=float("nan"))
        rows.append(row)
    return pd.DataFrame(rows, columns=group + ["best"] + cols)
