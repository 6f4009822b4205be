"""One scenario point -> engine inputs -> one result row: the single path used by simulate,
sweep, plan and validate, so they cannot disagree on how a point is built."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from astrasim.compute.sources import FILES, Inputs
from astrasim.opgraph import OpGraph
from astrasim.scenario.grid import Point
from astrasim.strategies import build_graph
from astrasim.streams import arrival_times, run_stream, single_columns


@dataclass
class EngineInputs:
    """What astrasim.engine.simulate takes for one point, every hardware option included; `run`
    is the only call of the engine for a point (prefill, generation, streams: every command).
    The graph and topology are built once and may be reused across runs."""

    graph: OpGraph
    topology: Any  # networkx graph (or an engine Fabric compiled from one)
    speeds: list[float]
    placement: Any = None  # astrasim.engine.cores.Placement, or None: every device its own processor
    op_overhead_s: float = 0.0
    message_cpu_s: float = 0.0
    speed_jitter: float = 0.0
    clock_devices: int = 0  # trailing devices that are not hardware (a stream's arrival clock): exact, free

    _program: Any = field(default=None, init=False, repr=False, compare=False)  # compiled on first run

    def run(self, *, record_timeline: bool = False, record_op_ends: bool = False):
        """The SimResult of the point. With speed_jitter, the run of median latency among
        JITTER_DRAWS seeded draws of the devices' speeds: a synchronized pass waits for its slowest
        device, which the mean speeds hide (stragglers); only that run is kept (and recorded).
        The graph and topology are compiled once (astrasim.engine.compile) for all the runs."""
        if self.speed_jitter <= 0:
            return self._once(self.speeds, record_timeline, record_op_ends)
        latency = sorted((self._once(self._draw(k), False, False).latency_s, k) for k in range(JITTER_DRAWS))
        return self._once(self._draw(latency[len(latency) // 2][1]), record_timeline, record_op_ends)

    def _draw(self, k: int) -> list[float]:
        real = len(self.speeds) - self.clock_devices
        host_of = self.placement.host_of[:real] if self.placement is not None else None
        return [*jittered_speeds(self.speeds[:real], self.speed_jitter, k, host_of), *self.speeds[real:]]

    def _once(self, speeds: list[float], record_timeline: bool, record_op_ends: bool):
        from astrasim.engine import compile

        if self._program is None:
            self._program = compile(self.graph, self.topology)
        real = len(speeds) - self.clock_devices
        overhead = (
            self.op_overhead_s if not self.clock_devices else [self.op_overhead_s] * real + [0.0] * self.clock_devices
        )
        return self._program.run(
            speeds=speeds,
            record_timeline=record_timeline,
            record_op_ends=record_op_ends,
            placement=self.placement,
            op_overhead_s=overhead,
            message_cpu_s=self.message_cpu_s,
        )

    def with_clock(self, graph: OpGraph, topology) -> EngineInputs:
        """The same hardware running `graph`, which adds one clock device after the real ones (a
        request stream, astrasim/streams.py): speed 1, no dispatch cost, no jitter, a host of its own."""
        from astrasim.engine.cores import Placement

        placement = self.placement
        if placement is not None:
            placement = Placement((*placement.host_of, len(placement.cores)), (*placement.cores, 1))
        return replace(
            self,
            graph=graph,
            topology=topology,
            speeds=[*self.speeds, 1.0],
            placement=placement,
            clock_devices=self.clock_devices + 1,
        )


def point_costs(point: Point, device: str | None, inputs: Inputs = FILES):
    """The per-op costs of a point: the table it carries; its profile's rows (from `inputs`, roofline-
    scaled to `device`) on the measured path; else the calibrated device model (compute.hardware)."""
    from astrasim.compute.hardware import calibrated_costs, compute_mode

    if point.costs is not None:
        return point.costs
    if compute_mode(point) == "measured":
        return inputs.costs_for(point.profile_path, device)
    return calibrated_costs(point)


def message_seconds(point: Point) -> float:
    """Host CPU per message: the scenario's, else (calibrated model) the largest catalog message_us of the
    point's devices, else 0."""
    from astrasim.compute.hardware import compute_mode, point_models

    if point.message_cpu_s is not None:
        return point.message_cpu_s
    if point.costs is not None or compute_mode(point) == "measured" or point.devices == 1:
        return 0.0
    from astrasim.compute.catalog import load_catalog

    catalog = load_catalog()
    return max(catalog[m.name].message_us for m in point_models(point)) * 1e-6


def build_point_graph(point: Point, inputs: Inputs = FILES) -> OpGraph:
    """The op graph of a point (profile lookups happen here: a missing key is a UserError)."""
    return _build(point, 0, inputs)


def _build(point: Point, output_tokens: int, inputs: Inputs = FILES) -> OpGraph:
    options = point.options()
    # a Fleet scales every device's ops itself, from the profile's own (unscaled) times
    costs = point_costs(point, point.device if options.fleet is None else None, inputs)
    return build_graph(
        point.strategy,
        point.model,
        costs,
        point.devices,
        point.tokens,
        point.knobs,
        options,
        output_tokens=output_tokens,
    )


def build_network(point: Point, inputs: Inputs = FILES):
    """The networkx topology of a point (astrasim.network.topology)."""
    net = point.network
    return net.build(point.devices, inputs.trace(net.trace_path) if net.trace_path else None)


def engine_inputs(point: Point, inputs: Inputs = FILES, *, generation: bool = False) -> EngineInputs:
    """The engine inputs of a point: its prefill graph, or with `generation` the prefill followed by
    its output_tokens - 1 decode steps (build_generation_graph); the same hardware either way."""
    from astrasim.engine.cores import Placement

    graph = build_generation_graph(point, inputs) if generation else build_point_graph(point, inputs)
    return EngineInputs(
        graph,
        build_network(point, inputs),
        point.device_speeds(),
        Placement.of(graph.n_devices, point.hosts, point.cores_per_host),
        point.op_overhead_s,
        message_seconds(point),
        point.speed_jitter,
    )


JITTER_DRAWS = 31  # seeded draws of the devices' speeds per point when hardware.speed_jitter > 0


def jittered_speeds(
    speeds: list[float], jitter: float, draw: int, host_of: tuple[int, ...] | None = None
) -> list[float]:
    """Draw `draw` (seeded) of the devices' speeds: each divided by a lognormal time factor of mean 1
    and coefficient of variation `jitter` (a device's compute in one pass). With a placement
    (`host_of[d]`: device d's host) the factor is the host's, shared by its devices: the speed that
    varies is a processor's, and devices time-sharing one are slow together (a validation trace at
    N = 4 on 2 cores: in one pass the two ranks of one core took 76 and 82 ms of CPU, those of the
    other 60 and 61 ms for the same kernels)."""
    import numpy as np

    sigma = math.sqrt(math.log1p(jitter * jitter))
    groups = list(host_of) if host_of is not None else list(range(len(speeds)))
    index = {g: k for k, g in enumerate(dict.fromkeys(groups))}
    factors = np.random.default_rng(draw).lognormal(-sigma * sigma / 2, sigma, len(index))
    return [s / float(factors[index[g]]) for s, g in zip(speeds, groups)]


def run_point(point: Point, *, record_timeline: bool = False, inputs: Inputs = FILES):
    """Simulate one point's prefill; returns (SimResult, OpGraph) (EngineInputs.run)."""
    ei = engine_inputs(point, inputs)
    return ei.run(record_timeline=record_timeline), ei.graph


@functools.lru_cache(maxsize=256)
def single_latency(point: Point, inputs: Inputs = FILES) -> float:
    """Latency of the single-device point of the same model, tokens, hardware (cached per process)."""
    return run_point(point.single(), inputs=inputs)[0].latency_s


def _mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return math.fsum(xs) / len(xs)


def result_row(point: Point, result, inputs: Inputs = FILES, graph: OpGraph | None = None) -> dict[str, Any]:
    """The tidy row of a point: its identity, then the breakdown.

    compute_s, exposed_comm_s, idle_s are means over the devices (each device: latency =
    compute + exposed comm + idle); comm_fraction = exposed_comm_s / latency_s. Energy
    (astrasim.placement.energy) is of the whole request: the prefill run (`graph`), or the
    generation's run when output_tokens > 1."""
    single = result.latency_s if point.single_device else single_latency(point, inputs)
    exposed = _mean(result.exposed_comm_s)
    row = {
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
        "compute_source": compute_source_of(point),
    }
    run: list = []  # the generation's (SimResult, graph) when it simulates one
    row.update(generation_columns(point, result.latency_s, inputs, run))  # generation (output_tokens > 0)
    row.update(energy_of(point, *(run[0] if run else (result, graph))))
    return row


def energy_of(point: Point, result, graph: OpGraph | None) -> dict[str, Any]:
    """ENERGY_COLUMNS of a run (empty without its graph or without power figures in the catalog)."""
    from astrasim.placement.energy import energy_columns
    from astrasim.results import ENERGY_COLUMNS

    if graph is None or point.workload.is_stream:
        return dict.fromkeys(ENERGY_COLUMNS)
    return energy_columns(point, result, graph)


def compute_source_of(point: Point) -> str:
    """measured | calibrated | datasheet (astrasim.compute.hardware.compute_source; a point carrying its
    own costs table: measured)."""
    from astrasim.compute.hardware import compute_source

    return "measured" if point.costs is not None else compute_source(point)


def memory_columns(point: Point) -> dict[str, Any]:
    """MEMORY_COLUMNS: the largest per-device footprint (GB), the memory of the tightest device, whether
    every device fits, and whether the single-device point of the same setup fits."""
    from astrasim.scenario.fleet import memory_check

    check = memory_check(point)
    single = check if point.single_device else memory_check(point.single())
    return {
        "memory_gb": check.largest_gb,
        "memory_limit_gb": check.have_gb[check.worst],
        "fits": check.fits,
        "single_fits": single.fits,
    }


def simulate_point(point: Point, inputs: Inputs = FILES) -> dict[str, Any]:
    """One result row (see `result_row`; a request stream: `stream_row`). `inputs`: where its
    costs and traces come from (default: their files)."""
    if point.workload.is_stream:
        return stream_row(point, inputs)
    result, graph = run_point(point, inputs=inputs)
    return {**result_row(point, result, inputs, graph), **single_columns(result.latency_s, result.compute_s)}


# ---------------------------------------------------------------------------------------------
# Generation (output_tokens > 0): the prefill, then the decode steps, in one graph


def build_generation_graph(point: Point, inputs: Inputs = FILES) -> OpGraph:
    """The prefill followed by the output_tokens - 1 decode steps of a point."""
    return _build(point, point.output_tokens, inputs)


def check_generation(point: Point, inputs: Inputs = FILES) -> None:
    """What a generation point can lack before it runs (decode profile rows): one decode step built."""
    if point.output_tokens > 1:
        _build(point, 2, inputs)


def generation_columns(
    point: Point, prefill_s: float, inputs: Inputs = FILES, run: list | None = None
) -> dict[str, Any]:
    """ttft_s: the prefill's latency plus the first token's LM head (the prompt's last position yields
    the first token); e2e_s: the whole request (prefill + decode steps, each with its head, one engine run
    with the point's placement, dispatch and message costs); tpot_s: the mean time per output token after
    the first, (e2e - ttft) / (output_tokens - 1). All empty when output_tokens = 0; tpot_s empty when it
    is 1. `run` (a list) receives the generation's (SimResult, graph) when one is simulated."""
    from astrasim.results import GENERATION_COLUMNS

    n = point.output_tokens
    if n <= 0:
        return dict.fromkeys(GENERATION_COLUMNS)
    ttft = prefill_s + max(point.options().head_s, default=0.0) / min(point.device_speeds())
    e2e = ttft
    if n > 1:
        ei = engine_inputs(point, inputs, generation=True)
        res = ei.run()
        e2e = res.latency_s
        if run is not None:
            run.append((res, ei.graph))
    return {"ttft_s": ttft, "tpot_s": (e2e - ttft) / (n - 1) if n > 1 else None, "e2e_s": e2e}


# ---------------------------------------------------------------- request streams (astrasim/streams.py)
def run_stream_point(point: Point, inputs: Inputs = FILES):
    """Simulate the point's request stream; (SimResult without the clock device, StreamStats)."""
    return run_stream(engine_inputs(point, inputs), arrival_times(point.workload), point.workload.rate_per_s)


def stream_row(point: Point, inputs: Inputs = FILES) -> dict[str, Any]:
    """A stream's row: latency_s = the mean request latency (arrival to completion); compute_s,
    exposed_comm_s, idle_s, comm_bits, n_messages = the run's totals per request; comm_fraction =
    exposed / (compute + exposed + idle); then STREAM_COLUMNS."""
    result, stats = run_stream_point(point, inputs)
    n = len(stats.latencies)
    row = {**result_row(point, result, inputs), "single_latency_s": single_latency(point, inputs)}
    mean = math.fsum(stats.latencies) / n
    per = {k: row[k] / n for k in ("compute_s", "exposed_comm_s", "idle_s", "comm_bits")}
    total = per["compute_s"] + per["exposed_comm_s"] + per["idle_s"]
    row.update(
        per,
        latency_s=mean,
        n_messages=row["n_messages"] // n,
        comm_fraction=per["exposed_comm_s"] / total if total > 0 else 0.0,
        speedup_vs_single=row["single_latency_s"] / mean if mean > 0 else float("nan"),
    )
    return {**row, **stats.columns()}
