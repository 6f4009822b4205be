"""Microbenchmark of the per-op dispatch cost: what running one op costs beyond its kernel.

The harness (programs.DeviceRun) picks each op, checks its dependencies, calls it and records it;
a real deployment's framework does the same. The profiler times kernels back to back, so this
cost is in no profile row. Measured here on a chain of ops whose kernels do nothing, walked by
the harness itself, one thread, never on the validation points; the simulator adds it to every
Compute (scenario `hardware.op_overhead_s`, default 0).
"""

from __future__ import annotations

import statistics
import time

from astrasim.opgraph import Compute, OpGraph

CHAIN_OPS = 400


def dispatch_overhead_s(repeats: int = 7, ops: int = CHAIN_OPS) -> float:
    """Median over repeats of (walk time of a chain of `ops` no-op computes) / ops."""
    from astrasim.validation.programs import DeviceRun

    graph = OpGraph(
        1, [Compute(f"op{k}", 0, 0.0, (f"op{k - 1}",) if k else (), name="noop", layer=0) for k in range(ops)]
    )
    run = DeviceRun(graph, 0, {0: {"noop": lambda: None}}, "direct")
    run.run()  # warm-up
    per_op = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run.run()
        per_op.append((time.perf_counter() - t0) / ops)
    return statistics.median(per_op)
