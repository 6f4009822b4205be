"""What each test host runs: the simulator's own OpGraph, op by op, with real kernels and real
messages. The harness has no collective algorithm and no strategy of its own.

* The graph is the one the simulator runs for the point (`astrasim.pointrun.engine_inputs`, sent
  to the workers as JSON: `graph_to_json` / `graph_from_json`).
* Compute ops: the strategy object's `kernel_calls(block, n, tokens, knobs, cls_token, device)`
  give each op of this device as a real torch call (one set per layer, each layer with its own
  weights). Among the ops whose dependencies are done, the first in program order runs (the
  engine's rule, astrasim/engine/sim.py).
* Comm ops: executed message by message from `astrasim.network.collectives.plan` (the engine's
  decomposition; "auto" resolved with the topology's default algorithm by
  `collectives.resolve_algorithm`): every receive is posted (irecv) first, and a message is sent
  as soon as the messages it depends on (data it forwards or reduces, the previous message on the
  same connection) have arrived or left. A message of the plan carries frac x bits / 8 bytes
  (rounded up, at least 1). Reductions cost no device time in the model, so none is computed.
  Communication runs on one background thread per process (the engine's "a NIC moves the bytes":
  sending costs no device compute); a Comm is done at this rank when every message it sends or
  receives there is done (the engine's per-participant completion).

gloo's built-in all_gather / all_to_all were measured at up to 2x the ideal over shaped links
(the two directions of an exchange take turns); the simulator does not model that artefact of
one backend, so the harness does not use them. `message_log` records every message sent, and
tests check it against `plan()`.
"""

from __future__ import annotations

import math
import os
import threading
import time

import torch
import torch.distributed as dist

from astrasim.models import ModelSpec
from astrasim.network.collectives import plan, resolve_algorithm
from astrasim.opgraph import Comm, Compute, OpGraph
from astrasim.validation.corun import add_round, empty_record, kernel_round, pooled
from astrasim.validation.graphs import VALIDATION_MODEL, graph_from_json, graph_to_json  # noqa: F401 (re-exported)

MAX_MESSAGES_PER_COMM = 1 << 16  # tag = comm index * this + message index
COMM_NICE = -10  # the communication thread's priority (root only; see prioritize_communication)


def message_bytes(frac: float, bits: float) -> int:
    """Bytes of one planned message (frac x bits, rounded up to whole bytes, at least one)."""
    return max(1, math.ceil(frac * bits / 8 - 1e-9))


# ---------------------------------------------------------------------------------- one device
class DeviceRun:
    """One rank's part of an OpGraph: its computes on the calling thread, its comms on a
    communication thread. `run()` is one forward pass; `trace` its (op name, start, end)."""

    def __init__(self, graph: OpGraph, rank: int, calls: dict[int, dict], default_algorithm: str, *, log: bool = False):
        self.graph, self.rank = graph, rank
        self.computes = [op for op in graph.ops if isinstance(op, Compute) and op.device == rank]
        for op in self.computes:
            if op.name not in calls.get(op.layer, {}):
                raise ValueError(f"no kernel call for op {op.name!r} of layer {op.layer}")
        self.calls = calls
        index = {op.id: k for k, op in enumerate(graph.ops)}
        self.comms = []  # (comm, my position, plan, tag base, receive buffers, send buffers)
        for op in graph.ops:
            if isinstance(op, Comm) and rank in op.devices:
                pos = op.devices.index(rank)
                algo = resolve_algorithm(op.collective, op.algorithm, default_algorithm)
                root = op.devices.index(op.root) if op.root is not None else 0
                p = plan(op.collective, len(op.devices), algo, root)
                if len(p) >= MAX_MESSAGES_PER_COMM:
                    raise ValueError(f"{op.id}: too many messages for the tag space")
                size = [message_bytes(f, op.bits) for f in p.frac]
                recv = {m: torch.empty(size[m], dtype=torch.uint8) for m in range(len(p)) if pos in p.dsts[m]}
                send = {m: torch.zeros(size[m], dtype=torch.uint8) for m in range(len(p)) if p.src[m] == pos}
                self.comms.append((op, pos, p, index[op.id] * MAX_MESSAGES_PER_COMM, recv, send))
        self.mine = {op.id for op in self.computes} | {c[0].id for c in self.comms}
        self.message_log: list[tuple] | None = [] if log else None
        self.trace: list[tuple[str, float, float]] = []
        self.cpu_s = (0.0, 0.0)  # CPU seconds of the last pass: (compute thread, whole process)
        self.comm_trace: list[tuple[str, float, float]] = []  # (comm id, joined, done) at this rank
        self._done: set[str] = set()
        self._cond = threading.Condition()
        self._error: BaseException | None = None

    # -- shared state -------------------------------------------------------------------------
    def _finish(self, op_id: str) -> None:
        with self._cond:
            self._done.add(op_id)
            self._cond.notify_all()

    def _ready(self, deps) -> bool:
        """Every dep that belongs to this rank is done (others' computes are theirs to wait for)."""
        return all(d in self._done for d in deps if d in self.mine)

    def _wait_for(self, deps) -> None:
        with self._cond:
            while not self._ready(deps):
                if self._error is not None:
                    raise RuntimeError("communication thread failed") from self._error
                self._cond.wait()

    # -- one pass -----------------------------------------------------------------------------
    @torch.inference_mode()
    def run(self) -> None:
        self._done.clear()
        self.trace.clear()
        self.comm_trace.clear()
        self._error = None
        cpu0 = (time.thread_time(), time.process_time())
        comm = threading.Thread(target=self._comm_loop, name="comm", daemon=True)
        comm.start()
        pending = list(self.computes)
        while pending:
            with self._cond:
                while (k := next((i for i, op in enumerate(pending) if self._ready(op.deps)), None)) is None:
                    if self._error is not None:
                        raise RuntimeError("communication thread failed") from self._error
                    self._cond.wait()
            op = pending.pop(k)
            t0 = time.monotonic()
            self.calls[op.layer][op.name]()
            self.trace.append((op.name, t0, time.monotonic()))
            self._finish(op.id)
        comm.join()
        self.cpu_s = (time.thread_time() - cpu0[0], time.process_time() - cpu0[1])
        if self._error is not None:
            raise RuntimeError("communication thread failed") from self._error

    def _comm_loop(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COMM_NICE)
        except OSError:  # not root: same priority as the compute
            pass
        try:
            for entry in self.comms:
                self._wait_for(entry[0].deps)
                t0 = time.monotonic()
                self._exchange(*entry)
                self.comm_trace.append((entry[0].id, t0, time.monotonic()))
                self._finish(entry[0].id)
        except BaseException as exc:  # surfaced on the main thread
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _exchange(self, op: Comm, pos: int, p, base: int, recv: dict, send: dict) -> None:
        """This rank's messages of one collective, in plan order, receives posted first."""
        works: dict[int, list] = {
            m: [dist.irecv(buf, src=op.devices[p.src[m]], tag=base + m)] for m, buf in recv.items()
        }
        waited: set[int] = set()

        def wait(m: int) -> None:  # gloo counts completions: every work is waited exactly once
            if m in works and m not in waited:
                for w in works[m]:
                    w.wait()
                waited.add(m)

        for m, buf in send.items():
            for d in p.deps[m]:
                wait(d)
            works[m] = []
            for dst in p.dsts[m]:
                if self.message_log is not None:
                    self.message_log.append((op.id, self.rank, op.devices[dst], buf.numel(), m, tuple(p.deps[m])))
                works[m].append(dist.isend(buf, dst=op.devices[dst], tag=base + m))
        for m in list(works):
            wait(m)

    # -- reports ------------------------------------------------------------------------------
    def compute_s(self) -> float:
        """Seconds this rank spent in kernels in the last pass."""
        return sum(b - a for _, a, b in self.trace)

    def op_seconds(self) -> dict[str, float]:
        """Mean seconds per op name in the last pass (in-situ op times, for the diagnostic)."""
        total: dict[str, list[float]] = {}
        for name, a, b in self.trace:
            total.setdefault(name, []).append(b - a)
        return {op: sum(v) / len(v) for op, v in total.items()}


def kernel_calls_per_layer(label: str, spec: ModelSpec, n: int, rank: int, seed: int = 0) -> dict[int, dict]:
    """layer -> {op name: zero-argument real kernel call} of device `rank` (the strategy object's
    kernel_calls on that layer's own weights); layer -1 (final ops) uses the last layer's calls."""
    from astrasim.kernels.block import ReferenceBlock
    from astrasim.strategies import parse_label

    strategy, knobs = parse_label(label)
    n_dev = 1 if strategy.single_device else n
    torch.manual_seed(seed)
    out: dict[int, dict] = {}
    with torch.inference_mode():
        for layer in range(spec.layers):
            block = ReferenceBlock(spec).eval()
            if rank < n_dev:
                out[layer] = strategy.kernel_calls(block, n_dev, spec.tokens, knobs, spec.cls_token, device=rank)
    out[-1] = out.get(spec.layers - 1, {})
    return out


def prioritize_communication(nice: int = COMM_NICE) -> int:
    """Give every thread of this process but the main one (the communication thread, gloo's I/O
    threads) a higher CPU priority than the compute, so that forwarding a message does not wait for
    a compute time slice when hosts share cores (the simulator's NIC moves bytes without device
    compute). Returns how many threads were changed; needs root (silently does nothing otherwise)."""
    main = threading.main_thread().native_id
    changed = 0
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return 0
    for tid in tids:
        if tid != main:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                changed += 1
            except OSError:
                pass
    return changed


def run_graphs(job: dict, timed, sync) -> dict:
    """Worker entry for mode 'graphs': job["points"] = [{"label", "graph"}]; for each, time the
    forward passes of this rank's part of the graph (`timed`; `sync` starts a round as a pass
    starts), with job["kernel_rounds"] the co-run windows before and after them and one co-run
    round right before each timed pass. Returns {label: {"passes": [records], "kernels": pooled
    window record, "paired": the rounds before the passes}}."""
    spec = ModelSpec(**job["model"])
    rank, n = dist.get_rank(), dist.get_world_size()
    out = {}
    for point in job["points"]:
        graph = graph_from_json(point["graph"])
        calls = kernel_calls_per_layer(point["label"], spec, n, rank, seed=job.get("seed", 0))
        dev = DeviceRun(graph, rank, calls, job["algorithm"])
        prioritize_communication()
        windows = [kernel_windows(dev, job["kernel_rounds"], sync)] if job.get("kernel_rounds") else []
        paired = empty_record()  # one co-run round right before each timed pass (corun.py)
        sequence = kernel_sequence(dev)

        @torch.inference_mode()
        def paired_round(paired: dict = paired, sequence: list = sequence) -> None:
            add_round(paired, kernel_round(sequence, sync))

        before = paired_round if windows else None

        def extra(dev: DeviceRun = dev) -> dict:
            record = {"compute_s": dev.compute_s(), "ops": dev.op_seconds()}
            if job.get("trace"):  # diagnostics: every op's and comm's interval at this rank
                record["trace"] = list(dev.trace)
                record["comm_trace"] = list(dev.comm_trace)
                record["cpu_s"] = dev.cpu_s
            return record

        passes = timed(
            dev.run,
            job.get("warmup", 1),
            job.get("repeats", 3),
            job.get("budget_s", 0.0),
            job.get("max_repeats", 0),
            extra=extra,
            before=before,
        )
        out[point["label"]] = {"passes": passes}
        if windows:
            windows.append(kernel_windows(dev, job["kernel_rounds"], sync))
            out[point["label"]]["kernels"] = pooled(windows)
            out[point["label"]]["paired"] = paired
    return out


@torch.inference_mode()
def kernel_windows(dev: DeviceRun, rounds: int, sync) -> dict:
    """The co-run microbenchmark of this rank's part of a point (astrasim.validation.corun): its
    Compute ops in program order, `rounds` rounds, each from a common start (`sync`), all ranks
    at once, no communication inside a round."""
    from astrasim.validation.corun import kernel_rounds

    return kernel_rounds(kernel_sequence(dev), rounds, sync)


def kernel_sequence(dev: DeviceRun) -> list[tuple[str, object]]:
    """This rank's Compute ops in program order as (op name, zero-argument kernel call)."""
    return [(op.name, dev.calls[op.layer][op.name]) for op in dev.computes]
