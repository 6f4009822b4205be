"""How much can making one device slower speed a point up? (prints figures; not a test)

Max-min fair sharing of a shared resource is not critical-path aware: when every device sends at
once, all messages share the channel and all finish late together (processor sharing); a device
that is late staggers the traffic, and the others' messages finish sooner (docs/network.md,
"Limits of the model"). This scans strategies x N x topology x bandwidth x which device is slow,
and prints the largest speed-ups found.

    python bench/bench_slow_device.py                 # gpt2-s and vit-base, slow factor 0.5
    python bench/bench_slow_device.py --factor 0.8 --models gpt2-s
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrasim.pointrun import run_point  # noqa: E402
from astrasim.scenario import from_dict, iter_points  # noqa: E402

STRATEGIES = ["tp", "sp", "bp-ag", "bp-sp", "pp", {"name": "astra", "groups": [1, 16, 32]}]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="gpt2-s,vit-base")
    ap.add_argument("--devices", default="4,8")
    ap.add_argument("--topologies", default="wifi,wifi-adhoc,switch")
    ap.add_argument("--mbps", default="20,100")
    ap.add_argument("--factor", type=float, default=0.5)
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    found = []
    for model in args.models.split(","):
        for n in map(int, args.devices.split(",")):
            for topo in args.topologies.split(","):
                for mbps in map(float, args.mbps.split(",")):
                    base = {
                        "name": "slow",
                        "models": [model],
                        "devices": [n],
                        "strategies": STRATEGIES,
                        "hardware": {"profile": "cpu", "partition": "even"},
                        "network": {"topology": topo, "bandwidth_mbps": [mbps]},
                    }
                    points = [p for p in iter_points(from_dict(base)) if not p.single_device]
                    for p in points:
                        ref = run_point(p)[0].latency_s
                        for d in range(n):
                            speeds = [1.0] * n
                            speeds[d] = args.factor
                            slow = run_point(
                                next(
                                    q
                                    for q in iter_points(
                                        from_dict({**base, "hardware": {**base["hardware"], "speeds": speeds}})
                                    )
                                    if q.strategy == p.strategy and q.knobs == p.knobs
                                )
                            )[0].latency_s
                            found.append((ref / slow - 1, model, p.label(), n, topo, mbps, d, ref, slow))
    found.sort(reverse=True)
    print(f"{len(found)} (point, slow device) pairs; device speed x{args.factor:g}; partition even")
    print(
        f"{'faster %':>9}  {'model':<9}{'strategy':<12}{'N':>3} {'network':<11}{'Mbps':>6}{'slow':>5}"
        f"{'homogeneous s':>15}{'one slow s':>12}"
    )
    for gain, model, label, n, topo, mbps, d, ref, slow in found[: args.top]:
        print(f"{100 * gain:>9.3f}  {model:<9}{label:<12}{n:>3} {topo:<11}{mbps:>6g}{d:>5}{ref:>15.4f}{slow:>12.4f}")
    faster = [f for f in found if f[0] > 0]
    print(f"faster in {len(faster)} of {len(found)} pairs; largest {100 * found[0][0]:.3f} %")


if __name__ == "__main__":
    main()
