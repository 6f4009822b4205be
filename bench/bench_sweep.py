"""Sweep speed: points per second of the full scenarios/wifi.yaml sweep, serial and with 2 local
workers (prints figures; not a test). Target: the whole sweep under 60 s on 2 cores.

    python bench/bench_sweep.py                          # scenarios/wifi.yaml, profiles/cpu.csv
    python bench/bench_sweep.py scenarios/ethernet.yaml --workers 1 2 4

Each mode runs in a fresh process (a warm per-process cache would flatter later modes), writes
to a temporary file, and the files are compared byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
t0 = time.perf_counter()
from astrasim.sweep import run_sweep
t1 = time.perf_counter()
df = run_sweep(sys.argv[1], out=sys.argv[2], workers=int(sys.argv[3]), progress=False)
t2 = time.perf_counter()
print(json.dumps({"points": len(df), "import_s": t1 - t0, "sweep_s": t2 - t1}))
"""


def run(scenario: str, workers: int, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, scenario, str(out), str(workers)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="scenarios/wifi.yaml")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    print(f"{args.scenario} on {os.cpu_count()} CPUs")
    print(f"{'workers':>8} {'points':>7} {'sweep s':>8} {'points/s':>9} {'+import s':>10}  sha256")
    digests = set()
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            out = Path(tmp) / f"w{w}.csv"
            r = run(args.scenario, w, out)
            digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
            digests.add(digest)
            print(
                f"{w:>8} {r['points']:>7} {r['sweep_s']:>8.2f} {r['points'] / r['sweep_s']:>9.1f} "
                f"{r['import_s']:>10.2f}  {digest}"
            )
    print("result files byte-identical across modes:", len(digests) == 1)


if __name__ == "__main__":
    main()
