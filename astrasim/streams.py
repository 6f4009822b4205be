"""Serving a stream of requests on the same devices and network, expressed as one op graph.

No engine change: the stream is the per-request graph of a point copied once per request
(ids prefixed `r<i>:`), in request order, plus an *arrival clock*: an extra device N that is not
part of the network and runs a chain of Compute ops whose durations are the inter-arrival gaps.
Request i's ops that have no deps wait for clock op i (a Compute-to-Compute dep across devices
costs nothing); a root Comm gets a zero-second `arrive` Compute on each participant first
(a Comm only honours deps on its own participants).

Scheduling rule (the engine's own, opgraph.py): a device runs one Compute at a time and among
its ready ops starts the first in program order. With requests in order this is non-preemptive
FIFO by arrival, work-conserving: a device takes a later request's ready op while an earlier
request waits on the network, so consecutive requests overlap where the dependencies allow
(pipeline stages hold different requests at once; sp/astra/tp devices take the next request
when free). Messages of requests in flight share the network max-min fairly like any flows:
the network is processor-sharing across requests, not FIFO.

Per-request latency = the last finish of any of its ops (a Compute's end, a Comm's completion
at each participant) - its arrival (the end of its clock op), read from the run's op end times.
"""

from __future__ import annotations

import csv
import gc
import math
from dataclasses import dataclass, replace

import numpy as np

from astrasim.errors import UserError
from astrasim.opgraph import Comm, Compute, OpGraph

ARRIVALS = ("single", "periodic", "poisson", "trace")
WORKLOAD_COLUMNS = ("arrival", "rate_per_s", "requests", "seed", "workload_trace")  # WorkloadPoint.identity
# The whole stream is one op graph held in memory with the engine's state and per-op finish times:
# about 1.5-2.5 kB per op (measured: bench/bench_stream_memory.py). Streams are capped so one
# fits in about 2.5 GB; longer ones are refused before any point runs (`check_stream_size`).
MAX_STREAM_OPS = 1_000_000
STABLE_GROWTH = 1.5  # last-quarter median latency may be at most this x the first quarter's (+ the shortest)


@dataclass(frozen=True)
class WorkloadPoint:
    """The request stream of one point (hashable: part of a Point)."""

    arrival: str = "single"
    rate_per_s: float | None = None
    requests: int = 1
    seed: int = 0
    trace: str | None = None  # as written in the scenario
    trace_path: str | None = None  # resolved file

    @property
    def is_stream(self) -> bool:
        return self.arrival != "single"

    def identity(self) -> dict:
        """WORKLOAD_COLUMNS of a result row."""
        return dict(zip(WORKLOAD_COLUMNS, (self.arrival, self.rate_per_s, self.requests, self.seed, self.trace or "")))

    def at_rate(self, rate_per_s: float) -> WorkloadPoint:
        return replace(self, rate_per_s=float(rate_per_s))


SINGLE = WorkloadPoint()


def read_arrival_trace(path: str) -> list[float]:
    """A CSV with a column `arrival_s` (seconds, non-decreasing)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "arrival_s" not in rows[0]:
        raise UserError(f"'{path}' needs a header with a column arrival_s", field="workload.trace")
    try:
        times = [float(r["arrival_s"]) for r in rows]
    except ValueError:
        raise UserError(f"'{path}': every arrival_s must be a number of seconds", field="workload.trace") from None
    if any(not math.isfinite(t) or t < 0 for t in times) or any(b < a for a, b in zip(times, times[1:])):
        raise UserError(f"'{path}': arrival_s must be finite, >= 0 and non-decreasing", field="workload.trace")
    return times


def arrival_times(w: WorkloadPoint) -> list[float]:
    """Arrival instants (the first at 0 for periodic/poisson; a trace's own times, shifted to start at 0)."""
    if w.arrival == "single":
        return [0.0]
    if w.arrival == "periodic":
        return [i / w.rate_per_s for i in range(w.requests)]
    if w.arrival == "poisson":
        gaps = np.random.default_rng(w.seed).exponential(1.0 / w.rate_per_s, w.requests - 1)
        return [0.0, *np.cumsum(gaps).tolist()]
    times = read_arrival_trace(w.trace_path or w.trace or "")
    if len(times) < w.requests:
        raise UserError(
            f"'{w.trace}' lists {len(times)} arrivals, fewer than requests={w.requests}; lower requests",
            field="workload.requests",
        )
    return [t - times[0] for t in times[: w.requests]]


def check_stream_size(ops_per_request: int, requests: int, field: str = "workload.requests") -> None:
    """Refuse a stream of more than MAX_STREAM_OPS ops in all (it would not fit in memory)."""
    if ops_per_request * requests > MAX_STREAM_OPS:
        most = max(1, MAX_STREAM_OPS // ops_per_request)
        raise UserError(
            f"{requests:,} requests of {ops_per_request} ops each make {ops_per_request * requests:,} ops, "
            f"more than the {MAX_STREAM_OPS:,} one stream may hold in memory (about 2.5 GB); use at most "
            f"{most:,} requests for this point",
            field=field,
        )


def stream_graph(one: OpGraph, arrivals: list[float]) -> tuple[OpGraph, dict[str, int]]:
    """The per-request graph `one` copied per request behind the arrival clock (device one.n_devices).

    Returns the graph and op id -> request index (clock ops map to their request too)."""
    check_stream_size(stream_ops_per_request(one), len(arrivals))
    clock = one.n_devices
    g = OpGraph(clock + 1, meta={**one.meta, "stream_requests": len(arrivals), "clock_device": clock})
    owner: dict[str, int] = {}
    ops = g.ops
    # per op of one request: (is_compute, id, deps, the other constructor arguments, root arrive ops)
    plan = []
    for op in one.ops:
        if isinstance(op, Compute):
            plan.append((True, op.id, op.deps, (op.device, op.seconds), (op.name, op.layer), ()))
        else:
            arrive = () if op.deps else tuple((f"{op.id}@{d}", d) for d in op.devices)
            plan.append(
                (
                    False,
                    op.id,
                    op.deps or tuple(a for a, _ in arrive),
                    (op.collective, op.devices, op.bits),
                    (op.root, op.algorithm, op.name, op.layer),
                    arrive,
                )
            )
    collect = gc.isenabled()
    gc.disable()  # hundreds of thousands of small objects, no cycles
    try:
        prev_t, prev_gate = 0.0, ()
        for r, t in enumerate(arrivals):
            p = f"r{r}:"
            gate = p + "arrive"
            gate_deps = (gate,)
            ops.append(Compute(gate, clock, t - prev_t, prev_gate, "arrive"))
            owner[gate] = r
            prev_t, prev_gate = t, gate_deps
            for is_compute, oid, deps, head, tail, arrive in plan:
                oid = p + oid
                if is_compute:
                    ops.append(Compute(oid, *head, tuple([p + d for d in deps]) if deps else gate_deps, *tail))
                else:
                    for aid, d in arrive:
                        ops.append(Compute(p + aid, d, 0.0, gate_deps, "arrive"))
                        owner[p + aid] = r
                    ops.append(Comm(oid, *head, tuple([p + d for d in deps]), *tail))
                owner[oid] = r
    finally:
        if collect:
            gc.enable()
    return g, owner


def stream_ops_per_request(one: OpGraph) -> int:
    """Ops one request adds to a stream: its own, its clock op, an `arrive` op per participant of a root Comm."""
    return 1 + sum(1 if isinstance(op, Compute) or op.deps else 1 + len(op.devices) for op in one.ops)


@dataclass
class StreamStats:
    arrivals: list[float]
    latencies: list[float]  # per request, arrival to completion
    makespan_s: float
    busy_s: list[float]  # per real device (the clock excluded)
    rate_per_s: float | None = None  # the nominal arrival rate (periodic, poisson); None: measured

    def columns(self) -> dict:
        """The STREAM_COLUMNS of a result row (see docs/analysis.md "Request streams")."""
        lat = np.asarray(self.latencies)
        p50, p90, p99 = (float(v) for v in np.percentile(lat, [50, 90, 99]))
        span = self.makespan_s - self.arrivals[0]
        return {
            "throughput_per_s": len(lat) / span if span > 0 else float("nan"),
            "latency_p50_s": p50,
            "latency_p90_s": p90,
            "latency_p99_s": p99,
            "utilization": max(self.busy_s) / self.makespan_s if self.makespan_s > 0 else 0.0,
            "stable": self.stable(),
        }

    def offered_rate(self) -> float:
        """The nominal rate when known (a short Poisson sample may look lighter), else arrivals / span."""
        if self.rate_per_s is not None:
            return self.rate_per_s
        span = self.arrivals[-1] - self.arrivals[0]
        return (len(self.arrivals) - 1) / span if span > 0 else 0.0

    def load(self) -> float:
        """rho = offered rate x the busiest device's busy seconds per request."""
        return self.offered_rate() * max(self.busy_s) / len(self.arrivals)

    def stable(self) -> bool:
        """The queue does not grow without bound, judged three ways (all must hold):
        (a) rho < 1: offered rate x the busiest device's busy seconds per request;
        (b) fewer than a quarter of the requests are still in the system when the last one arrives
            (the network is shared max-min across requests in flight, so a saturated network
            slows all of them at once: no device's busy time shows it, but the backlog does);
        (c) the median latency of the last quarter of requests is at most STABLE_GROWTH x the first
            quarter's plus the shortest latency (a FIFO queue that grows makes later requests wait longer)."""
        n = len(self.latencies)
        if self.load() >= 1.0:
            return False
        if n < 4:
            return True
        last_arrival = self.arrivals[-1]
        backlog = sum(a + lat > last_arrival for a, lat in zip(self.arrivals[:-1], self.latencies))
        q = n // 4
        first, last = float(np.median(self.latencies[:q])), float(np.median(self.latencies[-q:]))
        return backlog < q and last <= STABLE_GROWTH * first + min(self.latencies)


def run_stream(inputs, arrivals: list[float], rate_per_s: float | None = None):
    """Simulate the stream of one request's engine inputs (astrasim.pointrun.EngineInputs: the
    graph and every hardware option) arriving at `arrivals`; (SimResult, StreamStats).

    The SimResult's per-device lists exclude the clock device."""
    collect = gc.isenabled()
    gc.disable()  # the stream's graph and program (no cycles) die here: never scanned by the collector
    try:
        return _run_stream(inputs, arrivals, rate_per_s)
    finally:
        if collect:
            gc.enable()


def _run_stream(inputs, arrivals: list[float], rate_per_s: float | None):
    g, _ = stream_graph(inputs.graph, arrivals)
    topo = inputs.topology.copy()
    topo.add_node(g.meta["clock_device"])  # isolated: the clock sends nothing
    res = inputs.with_clock(g, topo).run(record_op_ends=True)
    n = len(arrivals)
    per = len(g.ops) // n  # request r's ops: its clock op (the arrival), then its own, contiguous
    ends = res.op_end_s
    arrived = [ends[r * per] for r in range(n)]
    done = [max(ends[r * per + 1 : (r + 1) * per], default=0.0) for r in range(n)]
    for field in ("compute_s", "exposed_comm_s", "idle_s"):
        setattr(res, field, getattr(res, field)[:-1])
    res.op_end_s = None
    latencies = [max(d - a, 0.0) for a, d in zip(arrived, done)]
    return res, StreamStats(arrived, latencies, res.latency_s, list(res.compute_s), rate_per_s)


def single_columns(latency_s: float, busy_s: list[float]) -> dict:
    """The STREAM_COLUMNS of one request on an idle cluster."""
    return StreamStats([0.0], [latency_s], latency_s, busy_s).columns()
