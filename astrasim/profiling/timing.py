"""Careful wall-clock timing of kernels: one call in a calibrated inner loop (`time_call`), or a
block's ops in program order, each once per round (`time_sequence`, what the profiler uses)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    median_s: float
    p10_s: float
    p90_s: float
    repeats: int


def time_call(fn: Callable[[], object], *, repeats: int = 10, warmup: int = 2, min_sample_s: float = 2e-3,
              max_inner: int = 1000) -> Timing:
    """Time `fn()`: `warmup` untimed calls, then `repeats` samples; each sample runs the call
    `inner` times back to back (inner calibrated so that a sample lasts >= min_sample_s, which keeps
    sub-millisecond kernels above the clock's noise) and records the mean per call. Returns the
    median and the 10th / 90th percentiles of the samples."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    for _ in range(max(warmup, 0)):
        fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    inner = max(1, min(max_inner, math.ceil(min_sample_s / max(once, 1e-9))))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    arr = np.asarray(samples)
    return Timing(float(np.median(arr)), float(np.percentile(arr, 10)), float(np.percentile(arr, 90)), repeats)


def time_sequence(calls: dict[str, Callable[[], object]], *, repeats: int = 10, warmup: int = 2,
                  evict: Callable[[], object] | None = None) -> dict[str, Timing]:
    """Time a block's ops as a forward pass runs them: each round calls every op once, in the
    dict's order, and times each call on its own; `evict()` (untimed) runs before each round.

    Why not `time_call` per op: an op repeated back to back finds its weights and inputs in cache,
    which a real pass never does (the previous op, and before it the previous layer, touched other
    data). On small layers that made ops 20 to 50 % faster than inside real multi-process passes
    (docs/validation.md); in program order, after an eviction that stands for the previous layer,
    they match. Returns {op: Timing} over the `repeats` timed rounds."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    samples: dict[str, list[float]] = {op: [] for op in calls}
    clock = time.perf_counter
    for r in range(max(warmup, 0) + repeats):
        if evict is not None:
            evict()
        for op, fn in calls.items():
            t0 = clock()
            fn()
            if r >= warmup:
                samples[op].append(clock() - t0)
    out = {}
    for op, s in samples.items():
        arr = np.asarray(s)
        out[op] = Timing(float(np.median(arr)), float(np.percentile(arr, 10)), float(np.percentile(arr, 90)), repeats)
    return out
