"""One scenario point -> engine inputs -> one result row: the single path used by simulate,
sweep, plan and validate, so they cannot disagree on how a point is built."""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any, Iterable

from astrasim.opgraph import OpGraph
from astrasim.scenario.grid import Point
from astrasim.strategies import build_graph
from astrasim.strategies.costs import costs_for


@dataclass
class EngineInputs:
    """What astrasim.engine.simulate takes for one point."""

    graph: OpGraph
    topology: Any  # networkx graph
    speeds: list[float]
    placement: Any = None  # astrasim.engine.cores.Placement, or None: every device its own processor
    op_overhead_s: float = 0.0


def build_point_graph(point: Point) -> OpGraph:
    """The op graph of a point (profile lookups happen here: a missing key is a UserError)."""
    options = point.options()
    # a Fleet scales every device's ops itself, from the profile's own (unscaled) times
    costs = costs_for(point.profile_path, point.device if options.fleet is None else None)
    return build_graph(point.strategy, point.model, costs, point.devices, point.tokens, point.knobs, options)


PRELOADED_TRACES: dict[str, list] = {}


@functools.lru_cache(maxsize=16)
def _trace_cached(path: str, mtime: float) -> list[tuple[float, float]]:
    from astrasim.network.topology import load_bandwidth_trace

    return load_bandwidth_trace(path)


def load_trace(path: str) -> list[tuple[float, float]]:
    if path in PRELOADED_TRACES:
        return PRELOADED_TRACES[path]
    return _trace_cached(path, os.path.getmtime(path))


def build_network(point: Point):
    """The networkx topology of a point (astrasim.network.topology)."""
    net = point.network
    return net.build(point.devices, load_trace(net.trace_path) if net.trace_path else None)


def engine_inputs(point: Point) -> EngineInputs:
    from astrasim.engine.cores import Placement

    graph = build_point_graph(point)
    return EngineInputs(graph, build_network(point), point.device_speeds(),
                        Placement.of(graph.n_devices, point.hosts, point.cores_per_host), point.op_overhead_s)


def run_point(point: Point, *, record_timeline: bool = False):
    """Simulate one point; returns (SimResult, OpGraph)."""
    from astrasim.engine import simulate

    inputs = engine_inputs(point)
    result = simulate(inputs.graph, inputs.topology, speeds=inputs.speeds, record_timeline=record_timeline,
                      placement=inputs.placement, op_overhead_s=inputs.op_overhead_s)
    return result, inputs.graph


@functools.lru_cache(maxsize=256)
def single_latency(point: Point) -> float:
    """Latency of the single-device point of the same model, tokens, hardware (cached per process)."""
    return run_point(point.single())[0].latency_s


def _mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return math.fsum(xs) / len(xs)


def result_row(point: Point, result) -> dict[str, Any]:
    """The tidy row of a point: its identity, then the breakdown.

    compute_s, exposed_comm_s, idle_s are means over the devices (each device: latency =
    compute + exposed comm + idle); comm_fraction = exposed_comm_s / latency_s."""
    single = result.latency_s if point.single_device else single_latency(point)
    exposed = _mean(result.exposed_comm_s)
    return {
        **point.identity(),
        "latency_s": result.latency_s,
        "compute_s": _mean(result.compute_s),
        "exposed_comm_s": exposed,
        "idle_s": _mean(result.idle_s),
        "comm_fraction": exposed / result.latency_s if result.latency_s > 0 else 0.0,
        "comm_bits": float(result.comm_bits),
        "n_messages": int(result.n_messages),
        "single_latency_s": single,
        "speedup_vs_single": single / result.latency_s if result.latency_s > 0 else float("nan"),
        **memory_columns(point),
    }


def memory_columns(point: Point) -> dict[str, Any]:
    """MEMORY_COLUMNS: the largest per-device footprint (GB), the memory of the tightest device, whether
    every device fits, and whether the single-device point of the same setup fits."""
    from astrasim.scenario.fleet import memory_check

    check = memory_check(point)
    single = check if point.single_device else memory_check(point.single())
    return {"memory_gb": check.largest_gb, "memory_limit_gb": check.have_gb[check.worst], "fits": check.fits,
            "single_fits": single.fits}


def simulate_point(point: Point) -> dict[str, Any]:
    """One result row (see `result_row`)."""
    return result_row(point, run_point(point)[0])
