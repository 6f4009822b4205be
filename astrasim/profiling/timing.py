"""Careful wall-clock timing of kernels: one call in a calibrated inner loop (`time_call`), or a
block's ops in program order, each once per round (`time_sequence`, what the profiler uses).

Every Timing carries two noise figures, so a profiler can tell a measurement it can trust from
one that other processes disturbed: `spread` = (p90 - p10) / median of the samples, and `drift` =
|median of the first half of the samples - median of the second half| / median (0 with fewer than
4 samples): a load that came or went during the measurement. `time_sequence` also records
`cpu_ratio`, the median over samples of this process's CPU seconds per wall second (all threads):
below the thread count when other processes took the cores, a slowdown that spread and drift miss
when it lasts the whole measurement."""

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
    drift: float = 0.0
    cpu_ratio: float = 0.0

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how far apart the samples are, relative to the figure kept."""
        return (self.p90_s - self.p10_s) / self.median_s if self.median_s > 0 else 0.0

    @property
    def noise(self) -> float:
        """The larger of spread and drift: what a stability threshold is compared with."""
        return max(self.spread, self.drift)

    @classmethod
    def of(cls, samples, cpu_ratio: float = 0.0) -> Timing:
        arr = np.asarray(samples, dtype=float)
        med = float(np.median(arr))
        drift = 0.0
        if len(arr) >= 4 and med > 0:
            half = len(arr) // 2
            drift = abs(float(np.median(arr[:half])) - float(np.median(arr[-half:]))) / med
        return cls(med, float(np.percentile(arr, 10)), float(np.percentile(arr, 90)), len(arr), drift, cpu_ratio)


def time_call(
    fn: Callable[[], object], *, repeats: int = 10, warmup: int = 2, min_sample_s: float = 2e-3, max_inner: int = 1000
) -> Timing:
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
    return Timing.of(samples)


CLOCKS = ("wall", "cpu")


def time_sequence(
    calls: dict[str, Callable[[], object]],
    *,
    repeats: int = 10,
    warmup: int = 2,
    evict: Callable[[], object] | None = None,
    clock: str = "wall",
    threads: int = 1,
) -> dict[str, Timing]:
    """Time a block's ops as a forward pass runs them: each round calls every op once, in the
    dict's order, and times each call on its own; `evict()` (untimed) runs before each round.

    Why not `time_call` per op: an op repeated back to back finds its weights and inputs in cache,
    which a real pass never does (the previous op, and before it the previous layer, touched other
    data). On small layers that made ops 20 to 50 % faster than inside real multi-process passes
    (docs/validation.md); in program order, after an eviction that stands for the previous layer,
    they match. Returns {op: Timing} over the `repeats` timed rounds.

    clock "wall": a sample is the call's wall-clock seconds. clock "cpu": it is the CPU seconds this
    process spent in the call divided by `threads`: on a machine shared with other processes it
    estimates the wall time the op takes with its cores to itself (exact when the op keeps every
    thread busy; ops with idle threads come out faster than their wall time)."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}")
    samples: dict[str, list[float]] = {op: [] for op in calls}
    ratios: dict[str, list[float]] = {op: [] for op in calls}
    now, cpu = time.perf_counter, time.process_time
    for r in range(max(warmup, 0) + repeats):
        if evict is not None:
            evict()
        for op, fn in calls.items():
            c0, t0 = cpu(), now()
            fn()
            wall, used = now() - t0, cpu() - c0
            if r >= warmup:
                samples[op].append(wall if clock == "wall" else used / threads)
                ratios[op].append(used / wall if wall > 0 else 0.0)
    return {op: Timing.of(s, float(np.median(ratios[op]))) for op, s in samples.items()}


def time_until_stable(
    calls: dict[str, Callable[[], object]],
    *,
    repeats: int = 10,
    warmup: int = 2,
    evict: Callable[[], object] | None = None,
    max_noise: float = 0.5,
    remeasure: int = 2,
    clock: str = "wall",
    threads: int = 1,
) -> tuple[dict[str, Timing], int]:
    """`time_sequence`, repeated (without warm-up: the kernels are warm) up to `remeasure` more times
    while some op's noise (Timing.noise) exceeds `max_noise`. Per op the attempt with the least
    noise is kept: on a shared machine other processes only ever slow an op down, in bursts, and the
    attempt whose samples agree is the one they left alone. Returns (timings, attempts made); an
    op whose kept timing is still above `max_noise` is unstable."""
    best = time_sequence(calls, repeats=repeats, warmup=warmup, evict=evict, clock=clock, threads=threads)
    attempts = 1
    while attempts <= remeasure and any(t.noise > max_noise for t in best.values()):
        again = time_sequence(calls, repeats=repeats, warmup=0, evict=evict, clock=clock, threads=threads)
        attempts += 1
        best = {op: min(best[op], again[op], key=lambda t: t.noise) for op in best}
    return best, attempts
