"""In-situ kernel costs: every device's kernels at once, run by the point's own workers right before
and right after its passes, and one round right before each of its passes. They feed the in-situ
prediction only (never the one from profiles: docs/validation.md, "Two predictions").

Why: the validation hosts are N processes on this machine's cores. Timed alone
(`astrasim.profiling.profile_ops`) a kernel has the machine to itself; inside a pass the other
hosts' kernels run at the same time and take memory bandwidth and shared cache, and when N exceeds
the cores, time slices (with their context switches). And a VM's speed drifts within a minute, so
costs taken per testbed, minutes before a point, miss it.

So each worker, once its point's kernels are built, runs a window in which every rank walks its
own Compute ops of the point's graph in program order, ROUNDS times, each round from a common start
exactly as a pass starts (barrier, then a short sleep until a shared instant), with no
communication inside a round (`kernel_rounds`), once before the point's passes and once after
them, and one round (`kernel_round`) right before each timed pass. A point's costs come from the
rounds paired with its passes when it has enough of them (`cost_rounds`): this VM's speed
drifts within seconds, without the hypervisor's steal counter showing it, and a round seconds from
each pass sees the machine the passes saw. Otherwise (long, communication-bound passes: few of them) the
paired rounds are pooled with the windows (drift within the point cancels to first order). A
round starts as a pass does because a core that has just slept runs the next 100 ms of kernels
slower than one that has not. No message is timed and no pass's own timings are used, but the
rounds run on the point's workers seconds from its passes: what they measure is in-situ.

An op's cost (`one_core_op_seconds`) is the rank's median round wall time (median, as the
measured latency is the median pass: one disturbed round does not move it) spread over the round's
ops in proportion to their median samples (each weighed by how often it recurs in a round: once
per layer), averaged over the ranks that run it, times min(1, cores / N): one core's worth of
work, which the simulator's processor sharing divides among the devices again when more of them
than cores compute at once. The round's wall time, not the ops' medians, because an op shorter
than a time slice mostly runs uninterrupted (its median is its time alone) and now and then waits
out another process's slice, inside it or between two ops, which only the round's wall time sees.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from astrasim.validation.steal import clean, cpu_times, sample_share

ROUNDS = 6  # rounds per window (one window before, one after a point's passes); the first is dropped


def kernel_rounds(sequence: list[tuple[str, Callable[[], object]]], rounds: int, sync: Callable[[], object]) -> dict:
    """Run `sequence` ((op name, zero-argument kernel call), in program order) `rounds` times, each
    round from a common start as a pass starts (`sync()`: barrier, then sleep until an instant
    shared by all ranks), so that the kernels meet what they meet in a pass: the other ranks'
    kernels at once, and a core that has just been idle. Returns per-op wall samples and per-round
    wall and CPU time and the share the hypervisor stole during it; the first round (caches and
    allocator still warming) is not kept."""
    record = empty_record()
    for k in range(rounds):
        one = kernel_round(sequence, sync)
        if k:
            add_round(record, one)
    return {**record, "rounds": rounds}


def empty_record() -> dict:
    return {"ops": {}, "cpu": [], "wall": [], "stolen": []}


def kernel_round(sequence: list[tuple[str, Callable[[], object]]], sync: Callable[[], object]) -> dict:
    """One round of `kernel_rounds`: {"ops": [(op, wall s)], "cpu", "wall", "stolen"}."""
    sync()
    round_ops = []
    before = cpu_times()
    c0, w0 = time.process_time(), time.perf_counter()
    for op, fn in sequence:
        t0 = time.perf_counter()
        fn()
        round_ops.append((op, time.perf_counter() - t0))
    return {
        "ops": round_ops,
        "cpu": time.process_time() - c0,
        "wall": time.perf_counter() - w0,
        "stolen": sample_share(before),
    }


def add_round(record: dict, one: dict) -> None:
    """Append one `kernel_round` to a record of the `kernel_rounds` form."""
    for op, t in one["ops"]:
        record["ops"].setdefault(op, []).append(t)
    for key in ("cpu", "wall", "stolen"):
        record[key].append(one[key])


def pooled(windows: list[dict]) -> dict:
    """One rank's windows (before and after the passes) as one record."""
    out = empty_record()
    for w in windows:
        for op, v in w["ops"].items():
            out["ops"].setdefault(op, []).extend(v)
        out["cpu"] += w["cpu"]
        out["wall"] += w["wall"]
        out["stolen"] += w.get("stolen", [0.0] * len(w["wall"]))
    return out


def drop_stolen_rounds(per_rank: list[dict]) -> list[dict]:
    """The ranks' pooled records without the rounds the hypervisor visibly took from (steal.clean
    on each round's largest share over the ranks: the ranks run a round at the same time), so that
    a burst of steal during a window does not set the point's costs. Records without "stolen"
    are returned as they are."""
    if not per_rank or any("stolen" not in r or len(r["stolen"]) != len(r["wall"]) for r in per_rank):
        return per_rank
    rounds = min(len(r["wall"]) for r in per_rank)
    keep = clean([max(r["stolen"][k] for r in per_rank) for k in range(rounds)])
    out = []
    for r in per_rank:
        per_round = {op: len(v) // len(r["wall"]) for op, v in r["ops"].items()}  # occurrences per round
        out.append(
            {
                **r,
                "wall": [r["wall"][k] for k in keep],
                "cpu": [r["cpu"][k] for k in keep],
                "stolen": [r["stolen"][k] for k in keep],
                "ops": {
                    op: [x for k in keep for x in v[k * per_round[op] : (k + 1) * per_round[op]]]
                    for op, v in r["ops"].items()
                },
            }
        )
    return out


PAIRED_MIN = 5  # co-run rounds paired with passes that suffice alone for a point's costs


def cost_rounds(per_rank: list[dict]) -> list[dict]:
    """The co-run rounds a point's costs come from, per rank (each rank's result of the point):
    the rounds run right before each pass when there are at least PAIRED_MIN of them (they saw the
    machine as the passes did: its speed drifts within seconds), otherwise those pooled with the
    windows before and after the passes."""
    paired = [r.get("paired") for r in per_rank]
    if all(p and len(p["wall"]) >= PAIRED_MIN for p in paired):
        return paired
    return [pooled([r["kernels"], p]) if p else r["kernels"] for r, p in zip(per_rank, paired)]


def one_core_op_seconds(per_rank: list[dict], expected: float | list[float]) -> dict[str, float]:
    """{op: one core's worth of seconds} from per-rank records ("ops": op -> wall-time samples, one
    per occurrence in each kept round; "wall": each kept round's wall time) and each rank's core
    share when all compute (`expected`, one for all or one per rank); see the module docstring.
    Ranks without kept rounds or without the op are left out of its mean."""
    shares: dict[str, list[float]] = {}
    factors = expected if isinstance(expected, list) else [expected] * len(per_rank)
    for r, factor in zip(per_rank, factors):
        if not r["wall"] or not all(r["ops"].values()):
            continue
        # an op name recurs once per layer in a round: weigh its median by its count per round
        round_s = sum(statistics.median(v) * len(v) / len(r["wall"]) for v in r["ops"].values())
        for op, v in r["ops"].items():
            shares.setdefault(op, []).append(factor * statistics.median(r["wall"]) * statistics.median(v) / round_s)
    return {op: statistics.mean(v) for op, v in shares.items()}


def round_spread(per_rank: list[dict]) -> float:
    """The point's speed jitter (`hardware.speed_jitter`): the robust coefficient of variation of a
    rank's round wall times, averaged over the ranks. Each round starts as a pass starts, so this is how
    much one device's compute varies from one pass to the next; the engine draws the devices'
    speeds with it, and a synchronized pass waits for its slowest device."""
    cvs = [robust_cv(r["wall"]) for r in per_rank if len(r["wall"]) > 2]
    return statistics.mean(cvs) if cvs else 0.0


def robust_cv(samples: list[float]) -> float:
    """Spread over median, from the median absolute deviation (x 1.4826: the standard deviation
    of a normal sample), so that one round another process disturbed does not set the jitter."""
    med = statistics.median(samples)
    return 1.4826 * statistics.median(abs(x - med) for x in samples) / med if med > 0 else 0.0
