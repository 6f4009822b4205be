"""Careful wall-clock timing of one kernel call: warm-up, calibrated inner loop, repeats, quantiles."""

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
