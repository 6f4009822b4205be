"""How much CPU time the hypervisor took from this VM while something was measured.

On a shared VM another tenant can take the CPUs for seconds at a time (the kernel counts it as
"steal" in /proc/stat); a measurement taken then is of the neighbour, not of the simulator's
subject (one testbed's passes can run a quarter slower than the same points minutes earlier).
The campaign reads the counter around
each job and takes a job again when more than STEAL_MAX of the CPU time was stolen.

It arrives in bursts of seconds, so a job's share says little about one pass of it. So every timed
sample (a pass, a co-run round, a calibration transfer) also records the share stolen while it ran
(`sample_share`, read by each rank around its own interval), and a sample the hypervisor took from
is left out of the medians (`clean`), as long as at least half the samples remain.
"""

from __future__ import annotations

import math
from pathlib import Path

STEAL_MAX = 0.02  # share of CPU time stolen above which a job is taken again
RETAKES = 2  # at most this many more tries; the least stolen is kept


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs since boot; (0, 0) where /proc/stat has no steal field."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0, 0
    values = [int(v) for v in fields]
    return (values[7] if len(values) > 7 else 0), sum(values[:8])


def stolen_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of the CPU time between two readings that the hypervisor took (0 if unknown)."""
    total = after[1] - before[1]
    return max(0.0, (after[0] - before[0]) / total) if total > 0 else 0.0


def sample_share(before: tuple[int, int]) -> float:
    """Share stolen since `before` (a `cpu_times()` reading), for one timed sample's record."""
    return stolen_share(before, cpu_times())


def clean(shares: list[float], keep_at_least: float = 0.5) -> list[int]:
    """Indices of the samples to keep, given each one's stolen share: those at most STEAL_MAX;
    when that leaves fewer than `keep_at_least` of them, the least stolen that many instead (in
    their original order). A counter at 100 Hz cannot see a few milliseconds of steal, so a kept
    sample is "not visibly disturbed", not "undisturbed"."""
    n = len(shares)
    ok = [i for i, s in enumerate(shares) if s <= STEAL_MAX]
    need = max(1, math.ceil(n * keep_at_least)) if n else 0
    if len(ok) >= need:
        return ok
    return sorted(sorted(range(n), key=lambda i: (shares[i], i))[:need])


def kept_share(shares: list[float]) -> float:
    """Mean stolen share of the samples `clean` keeps (0 for none)."""
    kept = [shares[i] for i in clean(shares)]
    return sum(kept) / len(kept) if kept else 0.0


def least_stolen(measure, log=print, what: str = "measurement", share_of=None):
    """Run `measure()` until less than STEAL_MAX of the CPU time was stolen during it, at most
    1 + RETAKES times; returns (the least stolen result, its stolen share). `share_of(result,
    job_share)`, if given, says how stolen a result counts as (e.g. only over the samples its
    medians keep)."""
    best, best_share = None, float("inf")
    for attempt in range(1 + RETAKES):
        before = cpu_times()
        result = measure()
        share = stolen_share(before, cpu_times())
        if share_of is not None:
            share = share_of(result, share)
        if share < best_share:
            best, best_share = result, share
        if share <= STEAL_MAX:
            break
        log(
            f"  {what}: {share:.1%} of the CPU time was stolen by the hypervisor"
            + (", taking it again" if attempt < RETAKES else "; keeping the least disturbed try")
        )
    return best, best_share
