"""Running a scenario's grid: serially, in local worker processes, or on a Dask cluster.

Result files are tidy (one row per point; columns `COLUMNS`) and written as points finish: each
row is one complete line, appended, flushed and fsync'ed, so an interrupted sweep (Ctrl-C,
kill -9) loses at most the line being written. `resume=True` drops a torn last line, keeps the
finished rows and runs only the missing points. When every point is done the file is rewritten
(atomically) in grid order, so serial, local-worker and Dask runs give byte-identical files.
A .parquet output is journaled the same way in `<out>.partial.csv` and converted at the end.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pandas as pd

from astrasim.errors import UserError
from astrasim.fileio import atomic_path
from astrasim.scenario import Point, Scenario, format_value, load_scenario, point_key
from astrasim.strategies import build_graph, strategy_label
from astrasim.strategies.costs import costs_for

KNOB_COLUMNS = ("scenario", "model", "tokens", "strategy", "groups", "codebook", "nb", "devices", "hardware",
                "speed", "speeds", "network", "bandwidth_mbps", "latency_param_s", "efficiency", "loss_rate",
                "trace", "broadcast", "element_bits", "causal_skip", "algorithm")  # = Point.knobs() keys
RESULT_COLUMNS = ("latency_s", "compute_s", "exposed_comm_s", "idle_s", "comm_fraction", "comm_bits",
                  "n_messages", "single_latency_s", "speedup_vs_single")
COLUMNS = KNOB_COLUMNS + RESULT_COLUMNS


# ---------------------------------------------------------------------------------------------
# One point


def build_point_graph(point: Point):
    """The op graph of a point (profile lookups happen here: a missing key is a UserError)."""
    costs = costs_for(point.profile_path, point.device)
    return build_graph(point.strategy, point.model, costs, point.devices, point.tokens, point.options())


_PRELOADED_TRACES: dict[str, list] = {}


@functools.lru_cache(maxsize=16)
def _trace_cached(path: str, mtime: float) -> list[tuple[float, float]]:
    from astrasim.network.topology import load_bandwidth_trace

    return load_bandwidth_trace(path)


def _trace(path: str) -> list[tuple[float, float]]:
    if path in _PRELOADED_TRACES:
        return _PRELOADED_TRACES[path]
    return _trace_cached(path, os.path.getmtime(path))


def build_network(point: Point):
    """The networkx topology of a point (astrasim.network.topology)."""
    from astrasim.network.topology import build_topology, topology_from_dict

    if point.network == "custom":
        return topology_from_dict(json.loads(point.custom_topology or "{}"), point.devices)
    trace = _trace(point.trace_path) if point.trace_path else None
    return build_topology(point.network, point.devices, point.bandwidth_mbps, latency_s=point.latency_s,
                          efficiency=point.efficiency, loss_rate=point.loss_rate, bandwidth_trace=trace,
                          broadcast=point.broadcast)


def run_point(point: Point, *, record_timeline: bool = False):
    """Simulate one point; returns (SimResult, OpGraph)."""
    from astrasim.engine import simulate

    graph = build_point_graph(point)
    result = simulate(graph, build_network(point), speeds=point.device_speeds(), record_timeline=record_timeline)
    return result, graph


@functools.lru_cache(maxsize=256)
def single_latency(point: Point) -> float:
    """Latency of the single-device point of the same model, tokens, hardware (cached per process)."""
    return run_point(point.single())[0].latency_s


def _mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return math.fsum(xs) / len(xs)


def result_row(point: Point, result) -> dict[str, Any]:
    """The tidy row of a point: its knobs, then the breakdown.

    compute_s, exposed_comm_s, idle_s are means over the devices (each device: latency =
    compute + exposed comm + idle); comm_fraction = exposed_comm_s / latency_s."""
    single = result.latency_s if point.strategy == "single" else single_latency(point)
    exposed = _mean(result.exposed_comm_s)
    return {
        **point.knobs(),
        "latency_s": result.latency_s,
        "compute_s": _mean(result.compute_s),
        "exposed_comm_s": exposed,
        "idle_s": _mean(result.idle_s),
        "comm_fraction": exposed / result.latency_s if result.latency_s > 0 else 0.0,
        "comm_bits": float(result.comm_bits),
        "n_messages": int(result.n_messages),
        "single_latency_s": single,
        "speedup_vs_single": single / result.latency_s if result.latency_s > 0 else float("nan"),
    }


def simulate_point(point: Point) -> dict[str, Any]:
    """One result row (see `result_row`)."""
    return result_row(point, run_point(point)[0])


# ---------------------------------------------------------------------------------------------
# Result files


def _line(row: dict[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(format_value(row[c]) for c in COLUMNS)
    return buf.getvalue()


def _read_journal(path: Path) -> dict[tuple[str, ...], str]:
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
        done[tuple(fields[: len(KNOB_COLUMNS)])] = line
    return done


def _lines_of(df: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Rows of a finished result frame as journal lines, key -> line (resume of a .parquet)."""
    out = {}
    for rec in df.to_dict("records"):
        row = {c: (None if isinstance(rec[c], float) and math.isnan(rec[c]) else rec[c]) for c in COLUMNS}
        out[tuple(format_value(row[c]) for c in KNOB_COLUMNS)] = _line(row)
    return out


class _Journal:
    """Append-only CSV of finished rows: one complete line per row, flushed and fsync'ed."""

    def __init__(self, path: Path, fresh: bool, rows: Iterable[str] = ()):
        """fresh: start with the header alone; else keep the file, or start it with `rows`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh or not path.exists() or path.stat().st_size == 0:
            with atomic_path(path) as tmp:
                tmp.write_text(",".join(COLUMNS) + "\n" + ("" if fresh else "".join(rows)))
        self.fh = open(path, "a", encoding="utf-8")

    def append(self, line: str) -> None:
        self.fh.write(line)
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


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
    _PRELOADED_TRACES.update(traces)


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
    traces = {t: _trace(t) for t in sorted({pt.trace_path for pt in points if pt.trace_path})}
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
        done = {k: v for k, v in _read_journal(journal_path).items() if k in grid}
    elif resume and final != journal_path and final.exists():  # a finished parquet: its rows are done
        done = {k: v for k, v in _lines_of(pd.read_parquet(final)).items() if k in grid}
    todo = [p for p, k in zip(points, keys) if k not in done]

    client = _dask_client(dask_address) if dask_address else None
    journal = _Journal(journal_path, fresh=not resume, rows=done.values())
    try:
        if client is not None:
            rows = _dask(todo, client)
        elif workers > 1 and len(todo) > 1:
            rows = _local(todo, workers)
        else:
            rows = _serial(todo)
        with _progress(progress, len(points), len(done)) as advance:
            for row in rows:
                line = _line(row)
                journal.append(line)
                done[tuple(format_value(row[c]) for c in KNOB_COLUMNS)] = line
                if on_row:
                    on_row(row)
                advance()
    finally:
        journal.close()

    text = ",".join(COLUMNS) + "\n" + "".join(done[k] for k in keys)
    if final.suffix == ".csv":
        with atomic_path(final) as tmp:
            tmp.write_text(text)
    df = pd.read_csv(io.StringIO(text), converters={"speeds": str, "trace": str})
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


def best_strategies(df: pd.DataFrame) -> pd.DataFrame:
    """The fastest strategy per (model, tokens, hardware, network, devices, bandwidth)."""
    multi = df[df["strategy"] != "single"].copy()
    if multi.empty:
        return multi
    multi["label"] = [strategy_label(s, g, k, nb) for s, g, k, nb in
                      zip(multi["strategy"], multi["groups"], multi["codebook"], multi["nb"])]
    group = ["model", "tokens", "hardware", "network", "devices", "bandwidth_mbps"]
    idx = multi.groupby(group, sort=False)["latency_s"].idxmin()
    best = multi.loc[idx, group + ["label", "latency_s", "speedup_vs_single", "comm_fraction"]]
    return best.rename(columns={"label": "best"}).reset_index(drop=True)
