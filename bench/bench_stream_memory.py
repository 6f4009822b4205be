"""Stream memory: peak RSS of one stream at the size cap (streams.MAX_STREAM_OPS ops in all), per
strategy, each in a fresh process (prints figures; not a test).

    python bench/bench_stream_memory.py            # vit-base on 4 devices over Wi-Fi 100 Mbps: sp, tp
    python bench/bench_stream_memory.py astra bp-ag

Each point: the shipped CPU profile, periodic arrivals at 1 request/s, as many requests as the cap
allows (MAX_STREAM_OPS // ops of one request)."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(strategy: str) -> None:
    from astrasim.pointrun import engine_inputs, simulate_point
    from astrasim.scenario import from_dict, iter_points
    from astrasim.streams import MAX_STREAM_OPS, stream_ops_per_request

    data = {
        "models": ["vit-base"],
        "devices": [4],
        "strategies": [strategy],
        "hardware": {"profile": "cpu"},
        "network": {"topology": "wifi", "bandwidth_mbps": 100},
    }
    p = next(iter_points(from_dict(data, base_dir=ROOT)))
    per = stream_ops_per_request(engine_inputs(p).graph)
    n = MAX_STREAM_OPS // per
    data["workload"] = {"arrival": "periodic", "rate_per_s": 1.0, "requests": n}
    p = next(iter_points(from_dict(data, base_dir=ROOT)))
    t0 = time.perf_counter()
    simulate_point(p)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{strategy:<8}{per:>8}{n:>10}{per * n:>11,}{rss:>10.0f}{time.perf_counter() - t0:>8.0f}", flush=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        one(sys.argv[2])
        return
    print(f"{'strategy':<8}{'ops/req':>8}{'requests':>10}{'ops':>11}{'RSS MB':>10}{'s':>8}", flush=True)
    for s in sys.argv[1:] or ["sp", "tp"]:
        subprocess.run([sys.executable, __file__, "--one", s], check=True)


if __name__ == "__main__":
    main()
