"""Run one job on every host of a Testbed: one Python process per host, joined by torch.distributed
(gloo over the hosts' shaped eth0), and collect each rank's JSON result.

A job is a JSON-serialisable dict with a "mode" that `astrasim.validation.worker` understands.
The launcher writes it to a private temporary folder, starts
``python -m astrasim.validation.worker --job J --rank i --world N --master 10.77.0.1:PORT --out R_i``
inside each host namespace, waits (with a timeout), and returns the parsed results, rank order.
Any rank failing (or the timeout) kills the others and raises `WorkerError` with the stderr tails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from astrasim.validation.netns import Testbed

_PORT = [29600]


class WorkerError(RuntimeError):
    """A worker process failed or timed out."""


def _next_port() -> int:
    # Each host namespace has its own port space; a fresh port per job avoids TIME_WAIT clashes.
    _PORT[0] = 29600 + (_PORT[0] - 29600 + 1) % 20000
    return _PORT[0]


def worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "GLOO_SOCKET_IFNAME": "eth0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # Make the checkout importable even when the package is not installed.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_job(
    bed: Testbed, job: dict, *, hosts: int | None = None, timeout_s: float = 300.0, threads: int = 1
) -> list[dict]:
    """Run `job` on hosts 0..hosts-1 (default: all) of `bed`; return each rank's result dict."""
    n = hosts or bed.n_hosts
    port = _next_port()
    with tempfile.TemporaryDirectory(prefix="asv-job-") as tmp:
        tmpd = Path(tmp)
        (tmpd / "job.json").write_text(json.dumps(job))
        procs, errs = [], []
        env = worker_env(threads)
        for r in range(n):
            err = open(tmpd / f"err{r}.txt", "w+")
            errs.append(err)
            argv = [
                sys.executable,
                "-m",
                "astrasim.validation.worker",
                "--job",
                str(tmpd / "job.json"),
                "--rank",
                str(r),
                "--world",
                str(n),
                "--master",
                f"{bed.host_ip(0)}:{port}",
                "--out",
                str(tmpd / f"out{r}.json"),
            ]
            procs.append(bed.popen(r, argv, stdout=err, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + timeout_s
        failed: int | None = None
        try:
            while any(p.poll() is None for p in procs):
                bad = [r for r, p in enumerate(procs) if p.poll() not in (None, 0)]
                if bad:
                    failed = bad[0]
                    break
                if time.monotonic() > deadline:
                    failed = -1
                    break
                time.sleep(0.05)
            else:
                bad = [r for r, p in enumerate(procs) if p.returncode != 0]
                failed = bad[0] if bad else None
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                p.wait()
        if failed is not None:
            tails = []
            for r, e in enumerate(errs):
                e.seek(0)
                text = e.read().strip().splitlines()
                if text:
                    tails.append(f"--- rank {r} (rc={procs[r].returncode}) ---\n" + "\n".join(text[-25:]))
            what = "timed out" if failed == -1 else f"rank {failed} failed"
            raise WorkerError(
                f"job {job.get('mode')} on {n} hosts ({bed.topology}, {bed.bandwidth_mbps} Mbps) "
                f"{what}\n" + "\n".join(tails)
            )
        for e in errs:
            e.close()
        return [json.loads((tmpd / f"out{r}.json").read_text()) for r in range(n)]
