"""Where points are simulated, and the progress bar every long command shows (sweep, plan,
profile, accuracy).

Executors yield result rows as points finish, in any order: `serial`, `local` (worker processes,
points sent in small batches) or `dask` (a Dask cluster; the client's costs and traces travel
with the work); `simulate_points` picks one. A Ctrl-C stops them where they are: the pool's
pending batches are cancelled, and the caller's atomic writers leave no half-written file.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from astrasim.compute.sources import Inputs, costs_for, load_trace
from astrasim.errors import UserError
from astrasim.pointrun import simulate_point
from astrasim.scenario.grid import Point

WORKERS_PER_CPU = 4  # --workers above this many per CPU is refused (processes cost memory, not speed)
DASK_TIMEOUT_S = 10.0  # connecting to a Dask scheduler: refused after this long


def check_workers(workers: int, field: str = "--workers") -> int:
    """Local worker processes: 1 .. WORKERS_PER_CPU x the CPU count."""
    limit = WORKERS_PER_CPU * (os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= limit:
        raise UserError(
            f"{workers} must be between 1 and {limit} ({WORKERS_PER_CPU} per CPU of this machine); use --dask for more",
            field=field,
        )
    return workers


# ---------------------------------------------------------------------------------------------
# Executors: each yields rows as points finish (any order)


def serial(points: Iterable[Point]) -> Iterator[dict[str, Any]]:
    for p in points:
        yield simulate_point(p)


def _simulate_many(points: list[Point]) -> list[dict[str, Any]]:
    return [simulate_point(p) for p in points]


def local(
    points: Iterable[Any], workers: int, n_points: int, run: Callable[[list], list] = _simulate_many
) -> Iterator[Any]:
    """Points go to the workers in small batches (a point takes milliseconds: one task per point
    would spend more on inter-process traffic than on simulating), a few batches per worker in
    flight (the grid is never held whole); rows are yielded per batch. `run` maps a batch to its
    results (a picklable function; default: simulate every point)."""
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    size = max(1, min(16, n_points // (workers * 8)))
    batches = iter(lambda it=iter(points): list(itertools.islice(it, size)), [])
    processes = max(1, min(workers, -(-n_points // size)))
    with ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
        pending = {pool.submit(run, b) for b in itertools.islice(batches, 4 * processes)}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                pending |= {pool.submit(run, b) for b in itertools.islice(batches, len(finished))}
                for fut in finished:
                    yield from fut.result()
        finally:
            for fut in pending:
                fut.cancel()


def probe_scheduler(address: str, timeout: float) -> None:
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
    except TimeoutError:
        raise UserError(
            f"'{address}' did not answer as a Dask scheduler within {timeout:g} s; {fix}", field="--dask"
        ) from None
    except OSError as exc:
        raise UserError(
            f"cannot reach a Dask scheduler at '{address}' ({exc.strerror or exc}); {fix}", field="--dask"
        ) from None


def dask_client(address: str, timeout: float | None = None):
    """Connect to a Dask scheduler (before any file is touched), within `timeout` seconds
    (default DASK_TIMEOUT_S)."""
    timeout = DASK_TIMEOUT_S if timeout is None else timeout
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise UserError("dask.distributed is not installed; pip install 'dask[distributed]'", field="--dask") from None
    probe_scheduler(address, timeout)
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
    raise UserError(
        f"cannot reach the Dask scheduler at '{address}' within {timeout:g} s ({why}); start one "
        f"with `dask scheduler` and give its tcp://host:port",
        field="--dask",
    )


def close_client(client, *, at_once: bool = False) -> None:
    """Close a Dask client now. `at_once` (a client that never reached a scheduler): mark it closed
    and stop its event loop; its own close (also run by its destructor, at exit) would wait 20 s
    for an answer that never comes and then print a traceback."""
    if not at_once:
        try:
            client.close(timeout=DASK_TIMEOUT_S)
            return
        except Exception:  # noqa: BLE001 - a scheduler that stopped answering: as below
            pass
    with contextlib.suppress(Exception):
        client.status = "closed"  # Client.close and Client.__del__: nothing left to do
        client._loop_runner.stop()


def dask(points: Iterable[Point], client) -> Iterator[dict[str, Any]]:
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


def simulate_points(
    points: Iterable[Point],
    *,
    workers: int = 1,
    client=None,
    dask_address: str | None = None,
    n_points: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows of `points` (any order): on the Dask `client` (or one connected to `dask_address`;
    closed at the end) when given, else in `workers` local processes when there is more than one
    point, else serially. n_points: how many `points` holds, when it is an iterator."""
    if client is None and dask_address:
        client = dask_client(dask_address)
    if client is not None:
        return dask(points, client)
    if n_points is None:
        points = list(points)
        n_points = len(points)
    if workers > 1 and n_points > 1:
        return local(points, workers, n_points)
    return serial(points)


# ---------------------------------------------------------------------------------------------
# Progress


class Progress:
    """A rich progress bar on stderr (or nothing, when not `enabled`), shown at once and stopped
    on any exit (a Ctrl-C included). `advance` moves it (optionally renaming the step), `restart`
    starts a second phase over the same total (the sweep: checking, then simulating)."""

    def __init__(self, enabled: bool, total: int, description: str = "", *, transient: bool = False):
        self.enabled, self.total, self.description, self.transient = enabled, total, description, transient
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console  # rich only when a bar is shown (startup time)
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn("{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=self.transient,
                console=Console(stderr=True),
            )
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=self.total)
        return self

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=steps, **({"description": description} if description else {}))

    def describe(self, description: str) -> None:
        """Name the step under way without counting it done."""
        if self.bar is not None:
            self.bar.update(self.task, description=description)

    def restart(self, description: str, completed: int = 0, total: int | None = None) -> None:
        """A new phase from `completed` steps, over `total` (default: the same total)."""
        if total is not None:
            self.total = total
        if self.bar is not None:
            self.bar.reset(self.task, total=self.total, completed=completed, description=description)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
