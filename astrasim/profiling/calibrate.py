"""Calibration of the measured machine: the sustained fp32 matmul rate and the memory bandwidth
that the device catalog's entry for a measured profile must not fall below (roofline scaling
divides by them: a catalog peak below what an op achieves credits every scaled device with more
than 100 % of its own peak).

    astrasim profile --calibrate [--threads N]

Matmul: a square fp32 `torch.mm` of `size` (2 size^3 FLOP), best of `repeats` timed calls after a
warm-up; bandwidth: `copy_` of a `mem_mb` MB fp32 buffer into another (reads + writes = 2x its
bytes), best of `repeats`. Best, not median: other processes only slow a call down, so the fastest
call is the closest to what the hardware sustains. Both are lower bounds of the true peak. On a
machine shared with other processes the matmul rate is also given on the CPU clock (FLOP per CPU
second per thread: what the cores sustain while this process has them; profiler --clock cpu).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Calibration:
    matmul_flops: float  # best sustained FLOP/s of the calibration matmul
    matmul_median_flops: float  # its median over the timed calls
    matmul_cpu_flops: float  # best FLOP per CPU second per thread (the CPU clock)
    mem_bandwidth_gbs: float  # best copy bandwidth, GB/s (10^9 bytes/s)
    threads: int
    size: int
    mem_mb: int

    def lines(self) -> list[str]:
        return [
            f"calibration matmul ({self.size}x{self.size} fp32, {self.threads} threads): "
            f"{self.matmul_flops / 1e9:.1f} GFLOP/s best, {self.matmul_median_flops / 1e9:.1f} median, "
            f"{self.matmul_cpu_flops / 1e9:.1f} best on the CPU clock",
            f"calibration copy ({self.mem_mb} MB fp32): {self.mem_bandwidth_gbs:.1f} GB/s best",
            "a catalog entry's peak_flops / mem_bandwidth_gbs must be at least these figures",
        ]


def _best(fn, repeats: int) -> tuple[float, float, float]:
    """(best wall s, median wall s, best CPU s) of `repeats` calls after one warm-up call."""
    fn()
    times, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    times.sort()
    return times[0], times[len(times) // 2], min(cpus)


def calibrate(*, size: int = 2048, mem_mb: int = 256, repeats: int = 10) -> Calibration:
    """Measure this machine (at torch's current thread count)."""
    with torch.inference_mode():
        a, b = torch.randn(size, size), torch.randn(size, size)
        c = torch.empty(size, size)
        best, median, cpu = _best(lambda: torch.mm(a, b, out=c), repeats)
        flop = 2.0 * size**3
        src = torch.ones(mem_mb * 2**20 // 4)
        dst = torch.empty_like(src)
        copy_best, _, _ = _best(lambda: dst.copy_(src), repeats)
    threads = torch.get_num_threads()
    return Calibration(
        flop / best, flop / median, flop / (cpu / threads), 2 * src.numel() * 4 / copy_best / 1e9, threads, size, mem_mb
    )
