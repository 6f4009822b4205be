"""Microbenchmark of a message's CPU cost on a host that is computing.

A message costs its hosts CPU beyond the wire: the communication thread wakes, posts the send or
the receive, gloo's I/O thread and the kernel's TCP stack move it, and the compute thread is
switched out and back (with its caches). On an idle host that is part of the per-message latency
(alpha, `calibrate.py`); on a host that is computing it slows the compute down, which the kernel
microbenchmarks (no communication) never see (ASTRA's many small code messages per pass most of all).

Measured on the testbed of the points (N hosts pinned as theirs), before its points and never on
them: every rank walks a chain of identical matmul ops with the harness (`programs.DeviceRun`), once
alone ("quiet") and once in lockstep with its peer r + N/2 (`lockstep_graph`: after every op the two
send each other a small message, and the next op waits for the peer's), alternately, from common
starts. Lockstep, because every strategy's computes wait on their messages: a message that wakes a
waiting compute on a busy host costs it more than one that goes by on the side (messages that
ping-pong beside chains that never wait, `chain_graph` with job["lockstep"] = False, measure about
half of it; docs/validation.md, History). The simulator charges the cost as a short job on the
host's cores for every message a device sends or receives (`hardware.message_cpu_s`); the value is
the one with which the simulator, run on this microbenchmark's own graphs, placement and calibrated
network, delays the chains as much as measured beyond what the messages' latency alone delays them
(`fit_message_cpu`: bracketing and bisection, as the delay is not quite linear in the cost). On a
busy host a woken compute also waits for its core, which the idle-host alpha (`calibrate.py`) does
not include; the fit counts that wait in the cost too.
"""

from __future__ import annotations

import statistics

from astrasim.opgraph import Comm, Compute, OpGraph
from astrasim.validation.steal import clean, cpu_times, sample_share

CHAIN_OPS = 12  # matmuls per chain (~80 ms at a core each: longer than the messages take)
# each: 64 tokens through a ViT-Base MLP matrix (weights bigger than the caches, as the kernels')
SHAPE = (64, 768, 3072)
MESSAGES = 40  # ping-pong messages while the chain runs
# one small frame: its wire time (and tbf's burst, which lets small messages through unshaped)
# stays negligible next to the CPU cost measured
MESSAGE_BYTES = 64
PAIRS = 30  # quiet/busy pairs per job (median: the lockstep delay varies from pair to pair)


def chain_graph(
    n: int, messages: int, seconds: float = 0.0, ops: int = CHAIN_OPS, message_bytes: int = MESSAGE_BYTES
) -> OpGraph:
    """N devices, each a chain of `ops` computes of `seconds`; plus, for each pair (r, r + N/2), a
    ping-pong chain of `messages` p2p messages between them that depends on no compute."""
    g = OpGraph(n)
    for d in range(n):
        for k in range(ops):
            g.add(Compute(f"d{d}.w{k}", d, seconds, (f"d{d}.w{k - 1}",) if k else (), name="work", layer=0))
    for a in range(n // 2):
        b = a + n // 2
        for k in range(messages):
            src, dst = (a, b) if k % 2 == 0 else (b, a)
            g.add(Comm(f"p{a}.m{k}", "p2p", (src, dst), 8.0 * message_bytes, (f"p{a}.m{k - 1}",) if k else ()))
    return g


def lockstep_graph(
    n: int, exchange: bool, seconds: float = 0.0, ops: int = CHAIN_OPS, message_bytes: int = MESSAGE_BYTES
) -> OpGraph:
    """N devices, each a chain of `ops` computes of `seconds`; with `exchange`, each rank and its
    peer r + N/2 (mod N) send each other one message after every compute but the last, and every
    compute but the first waits for the peer's message of the step before: a collective per op, as
    every strategy's computes wait on their messages. Built step by step (program order: each
    rank's communication thread walks its comms in order)."""
    g = OpGraph(n)
    peer = {d: (d + n // 2) % n for d in range(n)}
    for k in range(ops):
        for d in range(n):
            deps = (f"d{d}.w{k - 1}",) if k else ()
            if k and exchange:
                deps += (f"x{peer[d]}.{d}.m{k - 1}",)
            g.add(Compute(f"d{d}.w{k}", d, seconds, deps, name="work", layer=0))
        for d in range(n) if exchange and k < ops - 1 else ():
            g.add(Comm(f"x{d}.{peer[d]}.m{k}", "p2p", (d, peer[d]), 8.0 * message_bytes, (f"d{d}.w{k}",)))
    return g


def microbenchmark_graph(record: dict, n: int, busy: bool, seconds: float = 0.0) -> OpGraph:
    """The graph a record of `run_interference` ran: lockstep (the default) or ping-pong."""
    if record.get("lockstep"):
        return lockstep_graph(n, busy, seconds)
    return chain_graph(n, record["messages"] if busy else 0, seconds)


def run_interference(job: dict, timed, sync) -> dict:
    """Worker entry for mode 'interference': this rank's quiet and busy chain times, pair by pair."""
    import torch
    import torch.distributed as dist

    from astrasim.validation.programs import DeviceRun, prioritize_communication

    rank, n = dist.get_rank(), dist.get_world_size()
    m, k, n_out = SHAPE
    x, w = torch.randn(m, k), torch.randn(k, n_out)
    calls = {0: {"work": lambda: torch.mm(x, w)}}
    spec = {"messages": int(job.get("messages", MESSAGES)), "lockstep": bool(job.get("lockstep", True))}
    quiet = DeviceRun(microbenchmark_graph(spec, n, False), rank, calls, "direct")
    busy = DeviceRun(microbenchmark_graph(spec, n, True), rank, calls, "direct")
    prioritize_communication()
    out = {"quiet": [], "busy": [], "stolen": [], **spec}
    with torch.inference_mode():
        for k in range(int(job.get("pairs", PAIRS)) + 1):
            before = cpu_times()
            for name, dev in (("quiet", quiet), ("busy", busy)):
                sync()
                dev.run()
                if k:  # the first pair warms up
                    out[name].append(dev.trace[-1][2] - dev.trace[0][1])
            if k:
                out["stolen"].append(sample_share(before))
    return out


def measured_delay_s(per_rank: list[dict]) -> float:
    """How much longer a rank's chain takes while messages go: median over the pairs the hypervisor
    did not visibly take from (steal.clean on each pair's largest share over the ranks), mean over ranks."""
    keep, _ = kept_pairs(per_rank)
    return statistics.mean(statistics.median(r["busy"][k] - r["quiet"][k] for k in keep) for r in per_rank)


def kept_pairs(per_rank: list[dict]) -> tuple[list[int], float]:
    """(the pairs steal.clean keeps, their mean stolen share)."""
    pairs = list(range(min(len(r["quiet"]) for r in per_rank)))
    if not all(len(r.get("stolen", [])) == len(r["quiet"]) for r in per_rank):
        return pairs, 0.0
    shares = [max(r["stolen"][k] for r in per_rank) for k in pairs]
    keep = clean(shares)
    return keep, statistics.mean(shares[k] for k in keep)


def fit_message_cpu(per_rank: list[dict], topology, placement, shares: list[float], probe_s: float = 1e-4) -> float:
    """Seconds of host CPU per message sent or received (>= 0): the cost with which the simulator
    delays the chains (their op cost: each rank's quiet chain per op, times its core share) as much
    as measured, found from `probe_s` by bracketing and bisection (the delay grows with the cost;
    0 when the messages' latency alone delays them as much). `topology`: the testbed's calibrated
    network; `placement`: its hosts."""
    from astrasim.engine import simulate

    n = len(per_rank)
    op_s = statistics.mean(statistics.median(r["quiet"]) * share / CHAIN_OPS for r, share in zip(per_rank, shares))

    def chains_s(busy: bool, cost: float) -> float:  # mean over devices of its chain's end
        res = simulate(
            microbenchmark_graph(per_rank[0], n, busy, op_s),
            topology,
            placement=placement,
            message_cpu_s=cost,
            record_timeline=True,
        )
        return statistics.mean(
            max(e.end for e in res.timeline if e.kind == "compute" and e.device == d) for d in range(n)
        )

    quiet = chains_s(False, 0.0)
    target = measured_delay_s(per_rank)

    def excess(cost: float) -> float:  # simulated minus measured delay
        return chains_s(True, cost) - quiet - target

    if excess(0.0) >= 0:  # the messages' latency alone delays the chains as much
        return 0.0
    lo, hi = 0.0, probe_s
    for _ in range(40):  # bracket (the delay grows with the cost) ...
        if excess(hi) >= 0:
            break
        lo, hi = hi, hi * 4
    for _ in range(40):  # ... then bisect to 0.1 % of the measured delay
        mid = (lo + hi) / 2
        f_mid = excess(mid)
        if abs(f_mid) <= 1e-3 * max(target, 1e-9):
            return mid
        lo, hi = (mid, hi) if f_mid < 0 else (lo, mid)
    return (lo + hi) / 2
