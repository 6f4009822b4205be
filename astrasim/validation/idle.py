"""Whether the machine is left to the campaign: other processes' share of the CPUs.

The hypervisor's steal (`steal.py`) is one neighbour; another is any other process on the same
machine. A kernel profile taken while other jobs keep the CPUs busy times their load, not the
kernels: then the prediction from profiles is off by the load, whatever the simulator does. So
before every job (the kernel profile of each strategy, a calibration, a message CPU
microbenchmark, a bandwidth's points) the campaign waits, up to IDLE_WAIT_S (IDLE_START_S before
the first), until the CPUs are
idle (other processes busy at most IDLE_MAX of them over a second, while the campaign sleeps),
and the kernel profile, which runs in this process, also measures the share the others took while
it ran and is taken again (up to `steal.RETAKES` more times, the least disturbed kept) above
IDLE_MAX.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

IDLE_MAX = 0.10  # share of all CPUs other processes may use before (and during a profile)
IDLE_WAIT_S = 120.0  # the longest a job waits for the CPUs to go idle; then it runs and says so
IDLE_START_S = 600.0  # the longest the campaign waits before its first job

T = TypeVar("T")


def busy_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (busy: user, nice, system, irq, softirq; not
    idle, iowait or steal); (0, 0) where /proc/stat cannot be read."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, IndexError, ValueError):
        return 0, 0
    values += [0] * (8 - len(values))
    return values[0] + values[1] + values[2] + values[5] + values[6], sum(values)


def others_share(before: tuple[int, int], after: tuple[int, int], own_cpu_s: float) -> float:
    """Share of all CPUs' time between two `busy_times()` readings that processes other than this
    one (which used `own_cpu_s` of CPU time meanwhile) kept busy; 0 if unknown."""
    total = after[1] - before[1]
    if total <= 0:
        return 0.0
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return max(0.0, ((after[0] - before[0]) / hz - own_cpu_s) / (total / hz))


def measure_others(fn: Callable[[], T]) -> tuple[T, float]:
    """Run fn in this process; return its result and the share of the CPUs others took meanwhile."""
    before, c0 = busy_times(), time.process_time()
    out = fn()
    return out, others_share(before, busy_times(), time.process_time() - c0)


def wait_idle(log=print, what: str = "", window_s: float = 1.0, limit_s: float | None = None) -> float:
    """Wait until other processes use at most IDLE_MAX of the CPUs over `window_s` (this process
    sleeping), or `limit_s` (default IDLE_WAIT_S) has passed; return the last share seen."""
    limit_s = IDLE_WAIT_S if limit_s is None else limit_s
    t0, said = time.monotonic(), False
    while True:
        share = measure_others(lambda: time.sleep(window_s))[1]
        if share <= IDLE_MAX:
            return share
        if time.monotonic() - t0 > limit_s:
            log(f"  other processes still use {share:.0%} of the CPUs after {limit_s:.0f} s; {what} runs anyway")
            return share
        if not said:
            log(f"  waiting for the CPUs to go idle before {what} (other processes use {share:.0%})")
            said = True
        time.sleep(2.0)
