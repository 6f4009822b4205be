"""Point-to-point microbenchmark that calibrates the simulator's network parameters.

On every testbed of the campaign (topology, N hosts) at each bandwidth, right before that
bandwidth's points, hosts 0 and 1 exchange messages of a size ladder with torch.distributed gloo
(the transport the validation uses): both send one message of the size to the other at the same
time, receives posted first, timed from a common start to the last delivery (median of repeats).
Seconds before the points, not once at the start, because this VM's speed drifts within minutes
and at 100 Mbps the emulated links' per-packet CPU work shows in the transfer times (one campaign
calibrated at a slow moment fitted the shared medium's efficiency 0.904 instead of 0.942, and every
shared point at 100 Mbps came out 4 % slow). An exchange, not a one-way send, because that is what the
strategies' collectives do: every link then carries data one way and the TCP ACKs of the other
flow, which a one-way test leaves on an idle reverse link (about 2 % of a link; on the shared
medium both flows share the one channel).

The model fitted is the simulator's, t = alpha + k * s / (efficiency * B), where k is what the
simulator itself says the exchange costs in units of s / B (1 on the switch: each direction has
its own link; 2 on the shared medium: both messages cross the one channel), computed by running
the engine on the calibration pattern (`transfer_factor`). Per testbed and bandwidth (see `fit`):
alpha from the small messages (<= 4 KB, timed 4x as often), efficiency by least squares on the
relative error of the large ones. alpha absorbs the per-message software cost
(gloo, Python, TCP, waking the receiver), efficiency the framing overhead (1448 TCP payload bytes
per 1514-byte frame = 0.956 on the wire) and the ACKs.

Calibration never looks at the validation points: only these two-message transfers.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from astrasim.validation.launch import run_job
from astrasim.validation.steal import clean

# Message sizes (bytes): from a tiny message (alpha) through the sizes the validation sends
# (ASTRA codes: tens of bytes to 2 KB; sp / tp / bp-ag tensors: 32 to 128 KB, each power of two
# in between: TCP over tbf is not exactly linear in size) to 1 MB.
LADDER_BYTES = (64, 4096, 16384, 32768, 65536, 131072, 262144, 1048576)
FIT_MIN_BYTES = 65536
# alpha comes from the messages up to this size, each timed SMALL_REPEATS x `repeats` times: they
# cost a millisecond each, and one scheduler hiccup in five repeats of one size moved alpha 3x
ALPHA_MAX_BYTES = 4096
SMALL_REPEATS = 4


# testbed topology -> simulator topology kind (docs/validation.md)
SIM_KIND = {"switch": "switch", "shared": "wifi-adhoc"}


def transfer_factor(topology: str) -> float:
    """Seconds the simulator needs for the calibration exchange (2 hosts, s bits each way at once),
    in units of s / B, with alpha = 0 and efficiency = 1."""
    from astrasim.engine import simulate
    from astrasim.network.topology import build_topology
    from astrasim.opgraph import Comm, OpGraph

    bits, bw = 8e6, 10.0
    graph = OpGraph(2, [Comm("a", "p2p", (0, 1), bits), Comm("b", "p2p", (1, 0), bits)])
    res = simulate(graph, build_topology(SIM_KIND[topology], 2, bw, latency_s=0.0, efficiency=1.0))
    return res.latency_s / (bits / (bw * 1e6))


@dataclass(frozen=True)
class Calibration:
    """Fitted network parameters of one testbed (topology, hosts) at one bandwidth (NaN: fitted
    over the bandwidths of the table given)."""

    topology: str
    alpha_s: float
    efficiency: float
    max_rel_residual: float
    points: int
    hosts: int = 2
    bandwidth_mbps: float = float("nan")

    def label(self) -> str:
        bw = "" if self.bandwidth_mbps != self.bandwidth_mbps else f" {self.bandwidth_mbps:g} Mbps"
        return f"{self.topology} N={self.hosts}{bw}"

    def to_dict(self) -> dict:
        return asdict(self)


def ladder(bandwidth_mbps: float, factor: float = 1.0) -> list[int]:
    """Message sizes in bytes for one bandwidth (the largest cut to about 1 s of transfer)."""
    cap = bandwidth_mbps * 1e6 / 8 * 1.0 / factor
    return [s for s in LADDER_BYTES if s <= cap] or [LADDER_BYTES[0]]


def measure(bed, *, repeats: int = 5, warmup: int = 1, log=print) -> pd.DataFrame:
    """One row per message size of the ladder, exchanged by hosts 0 and 1 of testbed `bed` at its
    present bandwidth: median and spread of the delivery time."""
    bw = bed.bandwidth_mbps
    sizes = ladder(bw, transfer_factor(bed.topology))
    times = {s: repeats * (SMALL_REPEATS if s <= ALPHA_MAX_BYTES else 1) for s in sizes}
    res = run_job(
        bed,
        {
            "mode": "p2p",
            "sizes": sizes,
            "warmup": warmup,
            "repeats": repeats,
            "repeats_of": {str(s): k for s, k in times.items()},
            "exchange": True,
        },
        hosts=2,
    )
    rows = []
    for s in sizes:
        recs = [r["result"][str(s)] for r in res]
        shares = [max(r[k].get("stolen", 0.0) for r in recs) for k in range(times[s])]
        keep = clean(shares)  # transfers the hypervisor visibly took from are left out (steal.py)
        lat = [max(r[k]["end"] for r in recs) - recs[0][k]["start"] for k in keep]
        rows.append(
            {
                "topology": bed.topology,
                "hosts": bed.n_hosts,
                "bandwidth_mbps": bw,
                "bytes": s,
                "median_s": statistics.median(lat),
                "min_s": min(lat),
                "max_s": max(lat),
                "repeats": len(lat),
                "dropped": times[s] - len(lat),
                "stolen": statistics.mean(shares[k] for k in keep),
            }
        )
    log(
        f"  calibrate {bed.topology:6s} N={bed.n_hosts} {bw:g} Mbps: "
        + ", ".join(f"{r['bytes']}B {r['median_s'] * 1e3:.1f}ms" for r in rows)
    )
    return pd.DataFrame(rows)


def fit(table: pd.DataFrame, topology: str) -> Calibration:
    """alpha = the median, over the messages of at most ALPHA_MAX_BYTES, of the delivery time less
    the transfer time (a per-message cost); efficiency = least squares on the relative error of
    the messages of at least FIT_MIN_BYTES, given alpha.
    Mid-size messages are left out of the fit because tbf lets the first `burst` bytes after an
    idle period through at once (see netns.py); their residuals are reported, not hidden."""
    t = table[table["topology"] == topology]
    x = transfer_factor(topology) * (t["bytes"] * 8 / (t["bandwidth_mbps"] * 1e6)).to_numpy()
    y = t["median_s"].to_numpy()
    small = t["bytes"].to_numpy() <= max(ALPHA_MAX_BYTES, t["bytes"].min())
    big = t["bytes"].to_numpy() >= FIT_MIN_BYTES
    xb, yb = x[big], y[big]
    eff = 1.0
    for _ in range(20):  # alternate: alpha given eff, eff given alpha (converges in a few rounds)
        alpha = float(np.median(y[small] - x[small] / eff))
        # minimise sum(((alpha + k x) - y) / y)^2 over k = 1/eff: k = sum(x(y-alpha)/y^2) / sum(x^2/y^2)
        k = float(np.sum(xb * (yb - alpha) / yb**2) / np.sum(xb**2 / yb**2))
        eff = min(1.0 / k, 1.0)
    pred = alpha + x / eff
    hosts = t["hosts"].unique() if "hosts" in t.columns else [2]
    bws = t["bandwidth_mbps"].unique()
    return Calibration(
        topology,
        alpha,
        eff,
        float(np.max(np.abs(pred - y) / y)),
        len(y),
        int(hosts[0]),
        float(bws[0]) if len(bws) == 1 else float("nan"),
    )


def calibrate(bed, *, repeats: int = 5, log=print) -> tuple[Calibration, pd.DataFrame]:
    """Measure and fit testbed `bed` at its present bandwidth (re-taken if the hypervisor steals
    much); returns (Calibration, raw rows)."""
    from astrasim.validation.steal import least_stolen

    table, _ = least_stolen(
        lambda: measure(bed, repeats=repeats, log=log),
        log,
        f"calibration of {bed.topology} N={bed.n_hosts} {bed.bandwidth_mbps:g} Mbps",
        share_of=lambda t, job_share: float(t["stolen"].max()),
    )
    cal = fit(table, bed.topology)
    log(
        f"  calibrated {cal.label()}: alpha = {cal.alpha_s * 1e3:.2f} ms, efficiency = {cal.efficiency:.4f} "
        f"(max residual {cal.max_rel_residual:.1%} over {cal.points} transfers)"
    )
    return cal, table
