"""Running a scenario's grid: serially, in local worker processes, or on a Dask cluster.

Result files are tidy (one row per point; columns `COLUMNS`) and written as points finish: each
row is one complete line, appended, flushed and fsync'ed, so an interrupted sweep (Ctrl-C,
kill -9) loses at most the line being written; the fingerprint of each row's inputs (results.py
InputDigests) goes to `<out>.inputs`. `resume=True` drops a torn last line, keeps the finished
rows whose values are valid and whose inputs are unchanged, and runs only the other points. When every point is done the file is rewritten
(atomically) in grid order, so serial, local-worker and Dask runs give byte-identical files.
A .parquet output is journaled the same way in `<out>.partial.csv` and converted at the end.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import socket
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pandas as pd

from astrasim.errors import UserError
from astrasim.fileio import atomic_path, check_output_path, probe_output
from astrasim.models import CUSTOM_MODEL_FILES
from astrasim.compute.sources import Inputs, costs_for, load_trace
from astrasim.pointrun import build_network, build_point_graph, check_generation, simulate_point
from astrasim.results import (
    COLUMNS, IDENTITY_COLUMNS, KNOB_COLUMNS, RESULT_COLUMNS, InputDigests, Journal, fingerprint_path, header_line,
    key_digest, lines_of, read_fingerprints, read_journal, read_results_text, row_key, row_line,
)
from astrasim.scenario import Point, Scenario, iter_points, load_scenario, point_key
from astrasim.scenario.grid import VARIANT_COLUMNS, count_points
from astrasim.compute.sources import costs_for
from astrasim.streams import check_stream_size, stream_ops_per_request
from astrasim.strategies.registry import label_of, single_device_strategy

__all__ = ["COLUMNS", "IDENTITY_COLUMNS", "KNOB_COLUMNS", "RESULT_COLUMNS", "run_sweep", "best_strategies",
           "simulate_point", "build_point_graph"]


MAX_POINTS = 100_000  # larger grids need max_points (--max-points): docs/scenarios.md
WORKERS_PER_CPU = 4  # --workers above this many per CPU is refused (processes cost memory, not speed)
DASK_TIMEOUT_S = 10.0  # connecting to a Dask scheduler: refused after this long


def _output_paths(out: Path) -> tuple[Path, Path]:
    if out.suffix == ".csv":
        return out, out
    if out.suffix == ".parquet":
        return out, out.with_name(out.name + ".partial.csv")
    raise UserError(f"unknown result format '{out.suffix}'; use a .csv or .parquet path", field="--out")


def check_workers(workers: int, field: str = "--workers") -> int:
    """Local worker processes: 1 .. WORKERS_PER_CPU x the CPU count."""
    limit = WORKERS_PER_CPU * (os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= limit:
        raise UserError(f"{workers} must be between 1 and {limit} ({WORKERS_PER_CPU} per CPU of this machine); "
                        f"use --dask for more", field=field)
    return workers


# ---------------------------------------------------------------------------------------------
# Executors: each yields rows as points finish (any order)


def _serial(points: Iterable[Point]) -> Iterator[dict[str, Any]]:
    for p in points:
        yield simulate_point(p)


def _simulate_many(points: list[Point]) -> list[dict[str, Any]]:
    return [simulate_point(p) for p in points]


def _local(points: Iterable[Point], workers: int, n_points: int) -> Iterator[dict[str, Any]]:
    """Points go to the workers in small batches (a point takes milliseconds: one task per point
    would spend more on inter-process traffic than on simulating), a few batches per worker in
    flight (the grid is never held whole); rows are yielded per batch."""
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    size = max(1, min(16, n_points // (workers * 8)))
    batches = iter(lambda it=iter(points): list(itertools.islice(it, size)), [])
    processes = max(1, min(workers, -(-n_points // size)))
    with ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
        pending = {pool.submit(_simulate_many, b) for b in itertools.islice(batches, 4 * processes)}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                pending |= {pool.submit(_simulate_many, b) for b in itertools.islice(batches, len(finished))}
                for fut in finished:
                    yield from fut.result()
        finally:
            for fut in pending:
                fut.cancel()


def _probe_scheduler(address: str, timeout: float) -> None:
    """A tcp:// scheduler greets first: refuse an address where nothing listens, or where
    something accepts but never answers (Client would hang there)."""
    rest = address.removeprefix("tcp://")
    if "://" in rest:
        return  # other protocols: the connection deadline below still applies
    host, _, port = rest.rpartition(":")
    fix = "start one with `dask scheduler` and give its tcp://host:port"
    if not port.isdigit():
        raise UserError(f"'{address}' is not tcp://host:port; {fix}", field="--dask")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if not sock.recv(1):
                raise UserError(f"'{address}' closed the connection without a Dask greeting; {fix}", field="--dask")
    except socket.timeout:
        raise UserError(f"'{address}' did not answer as a Dask scheduler within {timeout:g} s; {fix}",
                        field="--dask") from None
    except OSError as exc:
        raise UserError(f"cannot reach a Dask scheduler at '{address}' ({exc.strerror or exc}); {fix}",
                        field="--dask") from None


def _dask_client(address: str, timeout: float | None = None):
    """Connect to a Dask scheduler (before any file is touched), within `timeout` seconds
    (default DASK_TIMEOUT_S)."""
    timeout = DASK_TIMEOUT_S if timeout is None else timeout
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise UserError("dask.distributed is not installed; pip install 'dask[distributed]'", field="--dask") from None
    _probe_scheduler(address, timeout)
    result: dict[str, Any] = {}

    class _Held(Client):  # the instance is kept before it connects, so a failed one can be closed
        def __init__(self, *args, **kwargs):
            result["made"] = self
            super().__init__(*args, **kwargs)

    def connect() -> None:
        try:
            result["client"] = _Held(address, timeout=f"{timeout}s", set_as_default=False)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=connect, daemon=True, name="dask-connect")
    thread.start()
    thread.join(timeout + 5.0)
    if "client" in result:
        return result["client"]
    if "made" in result:
        close_client(result["made"], at_once=True)
    exc = result.get("error")
    why = "no answer" if exc is None else " ".join(str(exc).split()) or type(exc).__name__
    raise UserError(f"cannot reach the Dask scheduler at '{address}' within {timeout:g} s ({why}); start one "
                    f"with `dask scheduler` and give its tcp://host:port", field="--dask")


def close_client(client, *, at_once: bool = False) -> None:
    """Close a Dask client now. `at_once` (a client that never reached a scheduler): mark it closed
    and stop its event loop; its own close (also run by its destructor, at exit) would wait 20 s
    for an answer that never comes and then print a traceback."""
    import contextlib

    if not at_once:
        try:
            client.close(timeout=DASK_TIMEOUT_S)
            return
        except Exception:  # noqa: BLE001 - a scheduler that stopped answering: as below
            pass
    with contextlib.suppress(Exception):
        client.status = "closed"  # Client.close and Client.__del__: nothing left to do
        client._loop_runner.stop()


def _dask(points: Iterable[Point], client) -> Iterator[dict[str, Any]]:
    from distributed import as_completed

    points = list(points)
    # the client's costs and traces travel with the work, so workers need not see the client's files
    keys = {(pt.profile_path, d) for pt in points if pt.costs is None for d in (pt.device, None)}
    costs = {(p, d): costs_for(p, d) for p, d in keys}
    traces = {t: load_trace(t) for t in sorted({pt.network.trace_path for pt in points if pt.network.trace_path})}
    try:
        shared = client.scatter([Inputs(costs, traces)], broadcast=True)[0]
        futures = client.map(simulate_point, points, inputs=shared, pure=False)
        for fut in as_completed(futures, loop=client.loop):
            yield fut.result()
    finally:
        close_client(client)


def simulate_points(points: list[Point], *, workers: int = 1, dask_address: str | None = None,
                    client=None) -> Iterator[dict[str, Any]]:
    """Rows of `points` (any order) on the sweep's executors: serial, local processes or Dask (a
    given `client` is used and closed). For callers that choose their own points (placement search)."""
    if client is None and dask_address:
        client = _dask_client(dask_address)
    if client is not None:
        return _dask(points, client)
    if workers > 1 and len(points) > 1:
        return _local(points, workers, len(points))
    return _serial(points)


# ---------------------------------------------------------------------------------------------
# The sweep


def _check_points(sc: Scenario, digests: InputDigests, advance: Callable[[], None]) -> set[Path]:
    """Everything that can fail before any simulation, for every point: profile keys (the op
    graph), the network (topology parameters, trace) and the files read. Graphs and networks
    shared by many points are built once. Returns the input files."""
    graphs: dict[tuple, int] = {}  # -> ops one request adds to a stream
    networks: set[tuple] = set()
    files: set[Path] = set()
    for p in iter_points(sc):
        graph_key = (p.profile_path, p.device, p.model, p.strategy, p.knobs, p.devices, p.tokens,
                     p.element_bits, p.causal_skip, p.algorithm)
        if graph_key not in graphs:
            graphs[graph_key] = stream_ops_per_request(build_point_graph(p))
            check_generation(p)
            files.update(digests.files_of(p))
        if p.workload.is_stream:
            check_stream_size(graphs[graph_key], p.workload.requests)
        if (p.network, p.devices) not in networks:
            networks.add((p.network, p.devices))
            build_network(p)
        advance()
    return files


def run_sweep(scenario_or_path: Scenario | str | Path, *, out: str | Path | None = None, workers: int = 1,
              dask_address: str | None = None, resume: bool = False, progress: bool = True,
              overrides: list[str] | None = None, max_points: int = MAX_POINTS,
              inputs: Iterable[str | Path] = (),
              on_row: Callable[[dict[str, Any]], None] | None = None) -> pd.DataFrame:
    """Run every point of a scenario and write the result file; returns the rows in grid order.

    out: .csv or .parquet path (default results/<scenario name>.csv); workers: local processes
    (1 = serial); dask_address: run on that Dask scheduler instead; resume: keep the finished
    rows of an interrupted run whose inputs are unchanged (the others are recomputed);
    max_points: refuse larger grids; inputs: more files the output must not overwrite (the
    scenario file). Bad input raises UserError before any file is touched."""
    given_path = not isinstance(scenario_or_path, Scenario)
    sc = load_scenario(scenario_or_path, overrides) if given_path else scenario_or_path
    check_workers(workers)
    total = count_points(sc)
    if total > max_points:
        raise UserError(f"the grid has {total:,} points, more than the {max_points:,} allowed; narrow an axis, or "
                        f"pass --max-points {total} to run them all", field="--max-points")
    out_path = Path(out) if out is not None else Path("results") / f"{sc.name}.csv"
    final, journal_path = _output_paths(out_path)
    prints_path = fingerprint_path(final)
    for path in (final, journal_path, prints_path):  # a folder that refuses files: before any work
        probe_output(path, "--out")
    digests = InputDigests()
    with _progress(progress, total) as bar:
        files = _check_points(sc, digests, bar.advance)
        models = [CUSTOM_MODEL_FILES[s.name] for s in sc._specs if s.name in CUSTOM_MODEL_FILES]
        protected = [*inputs, *([scenario_or_path] if given_path else []), *files, *models]
        for path in dict.fromkeys((final, journal_path, prints_path)):
            check_output_path(path, "--out", protected)
        client = _dask_client(dask_address) if dask_address else None
        try:
            done = _simulate_grid(sc, total, workers, client, resume, final, journal_path, prints_path, digests,
                                  bar, on_row)
        finally:
            if client is not None:  # every path, a failure before the first point included
                close_client(client)

    order = [point_key(p) for p in iter_points(sc)]
    text = header_line() + "".join(done[k] for k in order)
    if final.suffix == ".csv":
        with atomic_path(final) as tmp:
            tmp.write_text(text)
    df = read_results_text(text)
    if final.suffix == ".parquet":
        with atomic_path(final) as tmp:
            df.to_parquet(tmp, index=False)
        journal_path.unlink(missing_ok=True)
    return df


def _simulate_grid(sc: Scenario, total: int, workers: int, client, resume: bool, final: Path, journal_path: Path,
                   prints_path: Path, digests: InputDigests, bar: "_progress",
                   on_row: Callable[[dict[str, Any]], None] | None) -> dict[tuple[str, ...], str]:
    """Journal every point's row (kept rows of a resume first); returns key -> line."""
    done: dict[tuple[str, ...], str] = {}
    expected: dict[str, str] = {}
    if resume:
        done, expected = _resumable(sc, final, journal_path, prints_path, digests)
    bar.restart("simulating", len(done))
    journal = Journal(journal_path, prints_path, done, expected)
    in_flight: dict[tuple[str, ...], str] = {}

    def todo() -> Iterator[Point]:
        for p in iter_points(sc):
            key = point_key(p)
            if key not in done:
                in_flight[key] = expected.get(key_digest(key)) or digests.point(p)
                yield p
    try:
        if client is not None:
            rows = _dask(todo(), client)
        elif workers > 1 and total - len(done) > 1:
            rows = _local(todo(), workers, total - len(done))
        else:
            rows = _serial(todo())
        for row in rows:
            line, key = row_line(row), row_key(row)
            journal.append(line, key, in_flight.pop(key))
            done[key] = line
            if on_row:
                on_row(row)
            bar.advance()
    finally:
        journal.close()
    return done


def _resumable(sc: Scenario, final: Path, journal_path: Path, prints_path: Path, digests: InputDigests
               ) -> tuple[dict[tuple[str, ...], str], dict[str, str]]:
    """The finished rows worth keeping (valid values, computed from the very same inputs) and the
    expected fingerprint of every grid point; says on stderr how many rows are recomputed."""
    rejected: list[str] = []
    if journal_path.exists():
        rows = read_journal(journal_path, rejected)
    elif final != journal_path and final.exists():  # a finished parquet: its rows are done
        try:
            rows = lines_of(pd.read_parquet(final))
        except Exception as exc:  # noqa: BLE001 - any unreadable file: one line
            raise UserError(f"cannot resume from '{final}' ({type(exc).__name__}); delete it or choose another --out",
                            field="--out") from None
    else:
        rows = {}
    recorded = read_fingerprints(prints_path)
    kept: dict[tuple[str, ...], str] = {}
    expected: dict[str, str] = {}
    changed = 0
    for p in iter_points(sc):
        key = point_key(p)
        if key in rows:
            digest, fingerprint = key_digest(key), digests.point(p)
            expected[digest] = fingerprint
            if recorded.get(digest) == fingerprint:
                kept[key] = rows[key]
            else:
                changed += 1
    if rejected or changed:
        why = [f"{len(rejected)} invalid ({rejected[0]})"] if rejected else []
        why += [f"{changed} computed from other inputs or without a fingerprint"] if changed else []
        print(f"resume: recomputing {len(rejected) + changed} finished row(s): {'; '.join(why)}", file=sys.stderr)
    return kept, expected


class _progress:
    """A rich progress bar (or nothing), shown at once: first while the points are checked,
    then while they are simulated (`restart`)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total
        self.bar = None
        self.task = None

    def __enter__(self) -> "_progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from rich.console import Console

            self.bar = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), transient=False, console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task("checking", total=self.total)
        return self

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def restart(self, description: str, completed: int) -> None:
        if self.bar is not None:
            self.bar.reset(self.task, total=self.total, completed=completed, description=description)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


NOTHING_FITS = "nothing fits"


def best_strategies(df: pd.DataFrame) -> pd.DataFrame:
    """The fastest strategy per setting: every identity column but the strategy variant
    (scenario/grid.py IDENTITY, so two points that differ in any input are never merged), among
    the points that fit in memory (a stream: the lowest mean request latency). A split that is not
    faster than one device is never recommended: then the answer is the single-device strategy
    (if it fits), else NOTHING_FITS."""
    multi = df[df["devices"] > 1].copy()
    if multi.empty:
        return multi
    multi["label"] = [label_of(r) for r in multi.to_dict("records")]
    group = [c for c in IDENTITY_COLUMNS if c not in VARIANT_COLUMNS and c in multi.columns]
    cols = ["latency_s", "speedup_vs_single", "comm_fraction", "memory_gb"]
    single = single_device_strategy().name
    fits = multi["fits"].astype(str).str.lower().isin(["true", "1"]) if "fits" in multi.columns else True
    rows = []
    for _, grp in multi.groupby(group, sort=False, dropna=False):
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
