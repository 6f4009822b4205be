"""Run one collective (the messages of astrasim.network.collectives.plan) in the ns-3 reference.

`run_point(net, collective, algorithm, size_bytes, seed)` writes the plan as a schedule file, runs
the built program (build.py) on it and returns the measured completion time: from the release of
the collective's first messages (all hosts at once, connections already open, ARP caches filled)
to the delivery of its last byte.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from astrasim.network.collectives import plan
from astrasim.network.wifi80211 import WifiPhy


@dataclass(frozen=True)
class ReferenceNetwork:
    """The network the ns-3 program builds. mode: wifi (a BSS: AP + stations), adhoc, switch; `phy`
    (astrasim's own 802.11 settings, the same the simulator's preset is built from) for the Wi-Fi
    modes, the link rate and delay for the switch."""

    mode: str
    hosts: int
    phy: WifiPhy = WifiPhy()
    link_mbps: float = 100.0
    link_delay_us: float = 25.0

    def args(self) -> list[str]:
        p = self.phy
        return [
            f"--mode={self.mode}",
            f"--hosts={self.hosts}",
            f"--standard={p.standard}",
            f"--width={p.width_mhz}",
            f"--mcs={p.mcs}",
            f"--nss={p.streams}",
            f"--guardNs={p.guard_ns}",
            f"--maxAmpdu={p.max_ampdu_bytes}",
            f"--linkMbps={self.link_mbps:g}",
            f"--linkDelayUs={self.link_delay_us:g}",
        ]


def schedule_text(collective: str, algorithm: str, n: int, size_bytes: int) -> str:
    """The plan as the program reads it: 'M' then 'src dst bytes ndeps deps...' per message."""
    p = plan(collective, n, algorithm)
    lines = [str(len(p))]
    for m in range(len(p)):
        (dst,) = p.dsts[m]
        nbytes = max(1, round(p.frac[m] * size_bytes))
        lines.append(" ".join(map(str, (p.src[m], dst, nbytes, len(p.deps[m]), *p.deps[m]))))
    return "\n".join(lines) + "\n"


def run_point(
    exe: Path,
    net: ReferenceNetwork,
    collective: str,
    algorithm: str,
    size_bytes: int,
    seed: int,
    *,
    max_seconds: float = 120.0,
    trace: bool = False,
    timeout_s: float = 900.0,
) -> dict:
    """One ns-3 run. Returns {elapsed_s, complete, messages: [(release_s, delivered_s)], trace lines}."""
    with tempfile.TemporaryDirectory(prefix="astrasim-ns3-") as tmp:
        sched = Path(tmp) / "schedule.txt"
        sched.write_text(schedule_text(collective, algorithm, net.hosts, size_bytes))
        cmd = [
            str(exe),
            *net.args(),
            f"--seed={seed}",
            f"--schedule={sched}",
            f"--maxSeconds={max_seconds:g}",
            f"--trace={int(trace)}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    out: dict = {"elapsed_s": float("nan"), "complete": False, "messages": [], "trace": []}
    for line in done.stdout.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "elapsed_s":
            out["elapsed_s"] = float(parts[1])
        elif parts[0] == "delivered":
            out["complete"] = parts[1] == parts[2]
        elif parts[0] == "msg":
            out["messages"].append((float(parts[2]), float(parts[3])))
        elif parts[0] == "tx":
            out["trace"].append(parts[1:])
        elif parts[0] == "error":
            raise RuntimeError(f"ns-3 program: {line}")
    if done.returncode not in (0, 1):
        raise RuntimeError(f"ns-3 program failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return out
