"""Stream speed: CPU seconds to simulate 1000 requests of a 12-layer model on 4 devices over Wi-Fi
(prints figures; not a test).

    python bench/bench_streams.py            # vit-base, every multi-device strategy, 1000 requests
    python bench/bench_streams.py --requests 200 --repeats 1

Each point: the shipped CPU profile, Wi-Fi at 100 Mbps, Poisson arrivals at half the strategy's
single-request service rate (a stable load), seed 0. Time = building the stream graph, compiling
it and the run: the least CPU time of `--repeats` runs (other jobs on the machine only add).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrasim.pointrun import engine_inputs, run_point, run_stream_point  # noqa: E402
from astrasim.scenario import from_dict  # noqa: E402
from astrasim.streams import WorkloadPoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--model", default="vit-base")
    ap.add_argument("--mbps", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sc = from_dict(
        {
            "models": [args.model],
            "devices": [4],
            "hardware": {"profile": "cpu"},
            "network": {"topology": "wifi", "bandwidth_mbps": args.mbps},
        },
        base_dir=Path(__file__).parents[1],
    )
    print(
        f"{args.model}, 4 devices, Wi-Fi {args.mbps:g} Mbps, {args.requests} Poisson requests at half the "
        f"single-request rate"
    )
    print(f"{'strategy':<14}{'ops':>9}{'cpu s':>8}{'req/s':>9}{'p99 s':>9}  stable")
    for p in sc.points():
        if p.single_device:
            continue
        single = run_point(p)[0].latency_s
        point = replace(p, workload=WorkloadPoint("poisson", 0.5 / single, args.requests, 0))
        ops = len(engine_inputs(p).graph.ops) * args.requests
        cpu = float("inf")
        for _ in range(args.repeats):
            t0 = time.process_time()
            _, stats = run_stream_point(point)
            cpu = min(cpu, time.process_time() - t0)
        cols = stats.columns()
        print(
            f"{point.label():<14}{ops:>9}{cpu:>8.2f}{cols['throughput_per_s']:>9.2f}{cols['latency_p99_s']:>9.3f}"
            f"  {cols['stable']}"
        )


if __name__ == "__main__":
    main()
