"""Running a scenario's grid: serially, in local worker processes, or on a Dask cluster.

Result files are tidy (one row per point; columns `COLUMNS`) and written as points finish: each
row is one complete line, appended, flushed and fsync'ed, so an interrupted sweep (Ctrl-C,
kill -9) loses at most the line being written; the fingerprint of each row's inputs (results.py
InputDigests) goes to `<out>.inputs`. `resume=True` drops a torn last line, keeps the finished
rows whose values are valid and whose inputs are unchanged, and runs only the other points. When
every point is done the file is rewritten (atomically) in grid order, so serial, local-worker and
Dask runs give byte-identical files.
A .parquet output is journaled the same way in `<out>.partial.csv` and converted at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from astrasim.errors import UserError
from astrasim.executors import Progress, check_workers, close_client, dask_client, simulate_points
from astrasim.fileio import atomic_path, check_output_path, probe_output
from astrasim.models import CUSTOM_MODEL_FILES
from astrasim.pointrun import build_network, build_point_graph, check_generation, simulate_point
from astrasim.results import (
    COLUMNS,
    IDENTITY_COLUMNS,
    KNOB_COLUMNS,
    RESULT_COLUMNS,
    InputDigests,
    Journal,
    fingerprint_path,
    header_line,
    key_digest,
    lines_of,
    read_fingerprints,
    read_journal,
    read_results_text,
    row_key,
    row_line,
)
from astrasim.scenario import LoadedScenario, Point, iter_points, load_scenario, point_key
from astrasim.scenario.grid import VARIANT_COLUMNS, count_points
from astrasim.strategies.registry import label_of, single_device_strategy
from astrasim.streams import check_stream_size, stream_ops_per_request

__all__ = [
    "COLUMNS",
    "IDENTITY_COLUMNS",
    "KNOB_COLUMNS",
    "RESULT_COLUMNS",
    "run_sweep",
    "best_strategies",
    "simulate_point",
    "build_point_graph",
    "check_workers",
    "simulate_points",
]


MAX_POINTS = 100_000  # larger grids need max_points (--max-points): docs/scenarios.md


def _output_paths(out: Path) -> tuple[Path, Path]:
    if out.suffix == ".csv":
        return out, out
    if out.suffix == ".parquet":
        return out, out.with_name(out.name + ".partial.csv")
    raise UserError(f"unknown result format '{out.suffix}'; use a .csv or .parquet path", field="--out")


# ---------------------------------------------------------------------------------------------
# The sweep


def _check_points(sc: LoadedScenario, digests: InputDigests, advance: Callable[[], None]) -> set[Path]:
    """Everything that can fail before any simulation, for every point: profile keys (the op
    graph), the network (topology parameters, trace) and the files read. Graphs and networks
    shared by many points are built once. Returns the input files."""
    graphs: dict[tuple, int] = {}  # -> ops one request adds to a stream
    networks: set[tuple] = set()
    files: set[Path] = set()
    for p in iter_points(sc):
        graph_key = (
            p.profile_path,
            p.device,
            p.model,
            p.strategy,
            p.knobs,
            p.devices,
            p.tokens,
            p.element_bits,
            p.algorithm,
        )
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


def run_sweep(
    scenario_or_path: LoadedScenario | str | Path,
    *,
    out: str | Path | None = None,
    workers: int = 1,
    dask_address: str | None = None,
    resume: bool = False,
    progress: bool = True,
    overrides: list[str] | None = None,
    max_points: int = MAX_POINTS,
    inputs: Iterable[str | Path] = (),
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Run every point of a scenario and write the result file; returns the rows in grid order.

    out: .csv or .parquet path (default results/<scenario name>.csv); workers: local processes
    (1 = serial); dask_address: run on that Dask scheduler instead; resume: keep the finished
    rows of an interrupted run whose inputs are unchanged (the others are recomputed);
    max_points: refuse larger grids; inputs: more files the output must not overwrite (the
    scenario file). Bad input raises UserError before any file is touched."""
    given_path = not isinstance(scenario_or_path, LoadedScenario)
    sc = load_scenario(scenario_or_path, overrides) if given_path else scenario_or_path
    check_workers(workers)
    total = count_points(sc)
    if total > max_points:
        raise UserError(
            f"the grid has {total:,} points, more than the {max_points:,} allowed; narrow an axis, or "
            f"pass --max-points {total} to run them all",
            field="--max-points",
        )
    out_path = Path(out) if out is not None else Path("results") / f"{sc.name}.csv"
    final, journal_path = _output_paths(out_path)
    prints_path = fingerprint_path(final)
    for path in (final, journal_path, prints_path):  # a folder that refuses files: before any work
        probe_output(path, "--out")
    digests = InputDigests()
    with Progress(progress, total, "checking") as bar:
        files = _check_points(sc, digests, bar.advance)
        models = [CUSTOM_MODEL_FILES[s.name] for s in sc.specs if s.name in CUSTOM_MODEL_FILES]
        protected = [*inputs, *([scenario_or_path] if given_path else []), *files, *models]
        for path in dict.fromkeys((final, journal_path, prints_path)):
            check_output_path(path, "--out", protected)
        client = dask_client(dask_address) if dask_address else None
        try:
            done = _simulate_grid(
                sc, total, workers, client, resume, final, journal_path, prints_path, digests, bar, on_row
            )
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


def _simulate_grid(
    sc: LoadedScenario,
    total: int,
    workers: int,
    client,
    resume: bool,
    final: Path,
    journal_path: Path,
    prints_path: Path,
    digests: InputDigests,
    bar: Progress,
    on_row: Callable[[dict[str, Any]], None] | None,
) -> dict[tuple[str, ...], str]:
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
        for row in simulate_points(todo(), workers=workers, client=client, n_points=total - len(done)):
            line, key = row_line(row), row_key(row)
            journal.append(line, key, in_flight.pop(key))
            done[key] = line
            if on_row:
                on_row(row)
            bar.advance()
    finally:
        journal.close()
    return done


def _resumable(
    sc: LoadedScenario, final: Path, journal_path: Path, prints_path: Path, digests: InputDigests
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
            raise UserError(
                f"cannot resume from '{final}' ({type(exc).__name__}); delete it or choose another --out", field="--out"
            ) from None
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
            row.update(
                best=single if single_fits else NOTHING_FITS,
                latency_s=first["single_latency_s"],
                speedup_vs_single=1.0,
                comm_fraction=0.0,
                memory_gb=float("nan"),
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=group + ["best"] + cols)
