"""One test host's process: joins torch.distributed (gloo) and runs a validation job.

Started by `astrasim.validation.launch.run_job` inside a host namespace:

    python -m astrasim.validation.worker --job job.json --rank R --world N --master ADDR:PORT --out out.json

Timing: all hosts live on one machine and share CLOCK_MONOTONIC, so every repeat starts at one
common instant. Rank 0 picks ``start = now + lead`` after a barrier and broadcasts it; every rank
sleeps until `start`, runs the pass, and records `end`. The pass latency is max over ranks of
end - start (the slowest rank), computed by the launcher from the per-rank records. A rank that
received `start` too late records how late it was (`late_s`), so a bad repeat can be seen.

Modes
-----
``p2p``         calibration: rank 0 sends a message of each size to rank 1 (dist.send / dist.recv).
``graphs``      the validation passes: each point's OpGraph (the simulator's own) walked op by
                op with the strategy's real kernels and the collectives' planned messages
                (see `astrasim.validation.programs`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta

import torch
import torch.distributed as dist

from astrasim.validation.steal import cpu_times, sample_share

LEAD_S = 0.05


def sync_start() -> tuple[float, float]:
    """Barrier, then a common start instant; returns (start, late_s)."""
    dist.barrier()
    t = torch.zeros(1, dtype=torch.float64)
    if dist.get_rank() == 0:
        t[0] = time.monotonic() + LEAD_S
    dist.broadcast(t, src=0)
    start = float(t[0])
    now = time.monotonic()
    late = max(0.0, now - start)
    if start > now:
        time.sleep(start - now)
    return start, late


def timed(
    fn, warmup: int, repeats: int, budget_s: float = 0.0, max_repeats: int = 0, extra=None, before=None
) -> list[dict]:
    """Run `fn` warmup + repeats times from common starts; records of the timed repeats.

    With a budget, short passes get more repeats: after the warm-up, rank 0 sets the count to
    budget_s / (its last warm-up pass), clamped to [repeats, max_repeats], and tells the others
    (noise on a shared machine hurts short, compute-bound passes most). `extra()`, if given, adds
    its dict to each record; "stolen" is the CPU share the hypervisor took during it (steal.py).
    `before()`, if given, runs before each timed repeat (outside its timing)."""
    records = []
    for _ in range(warmup):
        start, _late = sync_start()
        fn()
        last = time.monotonic() - start
    if budget_s > 0 and max_repeats > repeats:
        n = torch.zeros(1, dtype=torch.int64)
        if dist.get_rank() == 0:
            guess = budget_s / max(last, 1e-3) if warmup else repeats
            n[0] = int(min(max_repeats, max(repeats, guess)))
        dist.broadcast(n, src=0)
        repeats = int(n[0])
    for _ in range(repeats):
        if before is not None:
            before()
        start, late = sync_start()
        steal0 = cpu_times()
        fn()
        end = time.monotonic()
        records.append(
            {"start": start, "end": end, "late_s": late, "stolen": sample_share(steal0), **(extra() if extra else {})}
        )
    return records


def set_priorities(job: dict) -> None:
    """As root, run this worker's compute at nice `job['nice']` (default -5), so that unrelated
    processes on the machine disturb the measurement less; communication threads get -10
    (programs.prioritize_communication). Without the right to do so, nothing changes."""
    import contextlib

    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, int(job.get("nice", -5)))


def pin(job: dict, rank: int, world: int) -> None:
    """With job["pin"], run this host (and the threads it starts later: gloo's, the communication
    thread) on CPU rank x cores // world: hosts then share cores in fixed, even groups (ranks 0-1
    on CPU 0, 2-3 on CPU 1 at N = 4 on 2 cores), the placement the simulator is given
    (`points.machine_hosts`), instead of wherever the load balancer moves them."""
    if job.get("pin") and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[rank * len(cpus) // world]})


def run_p2p(job: dict) -> dict:
    """Rank 0 sends each size to rank 1; with job["exchange"], ranks 0 and 1 send to each other at
    the same time (receives posted first). job["repeats_of"]: {size: repeats} where not job["repeats"]."""
    rank = dist.get_rank()
    exchange = bool(job.get("exchange"))
    out = {}
    for size in job["sizes"]:
        buf = torch.zeros(int(size), dtype=torch.uint8)
        inbox = torch.zeros(int(size), dtype=torch.uint8)

        def once(buf: torch.Tensor = buf, inbox: torch.Tensor = inbox) -> None:
            if exchange and rank in (0, 1):
                r = dist.irecv(inbox, src=1 - rank)
                s = dist.isend(buf, dst=1 - rank)
                r.wait()
                s.wait()
            elif rank == 0:
                dist.send(buf, dst=1)
            elif rank == 1:
                dist.recv(buf, src=0)

        repeats = job.get("repeats_of", {}).get(str(int(size)), job.get("repeats", 5))
        out[str(int(size))] = timed(once, job.get("warmup", 1), repeats)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--job", required=True)
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--world", type=int, required=True)
    ap.add_argument("--master", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    with open(args.job) as f:
        job = json.load(f)
    torch.set_num_threads(int(job.get("threads", 1)))
    set_priorities(job)
    pin(job, args.rank, args.world)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://{args.master}",
        rank=args.rank,
        world_size=args.world,
        timeout=timedelta(seconds=float(job.get("timeout_s", 120))),
    )
    try:
        if job["mode"] == "p2p":
            result = run_p2p(job)
        elif job["mode"] == "graphs":
            from astrasim.validation.programs import run_graphs

            result = run_graphs(job, timed, sync_start)
        elif job["mode"] == "interference":
            from astrasim.validation.interference import run_interference

            result = run_interference(job, timed, sync_start)
        else:
            raise SystemExit(f"unknown mode {job['mode']!r}")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"rank": args.rank, "pid": os.getpid(), "result": result}, f)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
