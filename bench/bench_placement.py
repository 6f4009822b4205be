"""How fast is the placement search? An inventory of 8 devices of 3 kinds (1 Jetson Orin Nano,
3 of this VM's CPU, 4 Raspberry Pi 5), every strategy with its default knobs, gpt2-s generating
8 tokens after a 1000-token prompt on gigabit Ethernet, ranked by e2e. Prints the candidates,
how many were simulated and pruned, the wall time, and (--exhaustive) the time of simulating
every candidate. Goal: the pruned search under 60 s on the 2-core VM.

Compute: an analytic profile (astrasim.strategies.synthetic, the `cpu` catalog roofline) written
to a temporary folder, so that every device count 2..8 has rows (the shipped profile has 1/2/4/8).

    PYTHONPATH=. python bench/bench_placement.py [--workers 2] [--exhaustive] [--no-progress]
                                                 [--prompt 256 --network wifi5-1x1-80mhz]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

INVENTORY = {"jetson-orin-nano": 1, "cpu": 3, "raspberry-pi-5": 4}


PROMPT, NETWORK = 1000, "ethernet-1g"


def plan_data(profile: Path) -> dict:
    return {
        "name": "bench-8-devices",
        "model": "gpt2-s",
        "tokens": PROMPT,
        "output_tokens": 8,
        "objective": "e2e",
        "inventory": INVENTORY,
        "networks": [NETWORK],
        "sweep": {"hardware": {"profile": str(profile)}},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--exhaustive", action="store_true", help="also simulate every candidate (slow)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--prompt", type=int, default=PROMPT)
    ap.add_argument("--network", default=NETWORK)
    args = ap.parse_args()
    globals().update(PROMPT=args.prompt, NETWORK=args.network)

    from astrasim.models import get_model
    from astrasim.placement.inventory import parse_plan
    from astrasim.placement.search import format_search, run_search
    from astrasim.strategies.synthetic import synthetic_profile

    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "cpu.csv"  # id `cpu`: scaled from the catalog's cpu entry
        synthetic_profile(
            [get_model("gpt2-s")], devices=tuple(range(2, 9)), tokens=[PROMPT], groups=(32,), decode_cache=(1, 256, 512)
        ).to_csv(profile, index=False)
        plan = parse_plan(plan_data(profile), Path(tmp))
        t0 = time.perf_counter()
        res = run_search(plan, workers=args.workers, progress=not args.no_progress, exhaustive=False)
        pruned_s = time.perf_counter() - t0
        print(format_search(res, top=5))
        c = res.counts
        print(
            f"\npruned search: {c['candidates']} candidates, {c['simulated']} simulated, {c['pruned']} pruned by "
            f"the bound, {c['cannot run']} cannot run, {c['does not fit']} do not fit; {pruned_s:.1f} s wall "
            f"({args.workers} worker(s))"
        )
        if args.exhaustive:
            t0 = time.perf_counter()
            full = run_search(plan, workers=args.workers, progress=not args.no_progress, exhaustive=True)
            full_s = time.perf_counter() - t0
            same = full.best["placement"] == res.best["placement"] and full.best["e2e_s"] == res.best["e2e_s"]
            viol = full.table[
                (full.table["status"] == "simulated") & (full.table["bound_s"] > full.table["e2e_s"] * (1 + 1e-9))
            ]
            print(
                f"exhaustive: {full.counts['simulated']} simulated in {full_s:.1f} s; same optimum: {same}; "
                f"bounds above the simulated e2e: {len(viol)}"
            )


if __name__ == "__main__":
    main()
