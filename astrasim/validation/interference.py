"""Microbenchmark of a message's CPU cost on a host that is computing.

A message costs its hosts CPU beyond the wire: the communication thread wakes, posts the send or
the receive, gloo's I/O thread and the kernel's TCP stack move it, and the compute thread is
switched out and back (with its caches). On an idle host that is part of the per-message latency
(alpha, `calibrate.py`); on a host that is computing it slows the compute down, which the kernel
microbenchmarks (no communication) never see: at N = 4 on 2 cores ASTRA's 48 code messages per
pass took about 3.5 ms of each rank's CPU (validation trace of 2026-12-02).

Measured on the testbed of the points (N hosts pinned as theirs), never on the validation points:
every rank walks a chain of identical matmul ops with the harness (`programs.DeviceRun`), once
alone ("quiet") and once while its communication thread exchanges a chain of small messages with
rank r + N/2 (ping-pong: each message leaves when the previous one has arrived, as a collective's
steps do), alternately, from common starts. At N = 4 on 2 cores a message also switches between
the two processes of a core, which costs about twice as much per message as at N = 2.
The simulator charges the cost as a short job on the host's cores for every message a device
sends or receives (`hardware.message_cpu_s`); the value is the one with which the simulator, run
on this microbenchmark's own graphs and placement, slows the chains down as much as measured
(`fit_message_cpu`: it is linear in the cost, so one probe run gives it).
"""

from __future__ import annotations

import statistics

from astrasim.opgraph import Comm, Compute, OpGraph
from astrasim.validation.steal import clean, cpu_times, sample_share

CHAIN_OPS = 12  # matmuls per chain (~80 ms at a core each: longer than the messages take)
SHAPE = (64, 768, 3072)  # each: 64 tokens through a ViT-Base MLP matrix (weights bigger than the caches, as the kernels')
MESSAGES = 40  # ping-pong messages while the chain runs
MESSAGE_BYTES = 1024  # an ASTRA code message's size (the sizes the CPU cost matters for)
PAIRS = 20


def chain_graph(n: int, messages: int, seconds: float = 0.0, ops: int = CHAIN_OPS,
                message_bytes: int = MESSAGE_BYTES) -> OpGraph:
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


def run_interference(job: dict, timed, sync) -> dict:
    """Worker entry for mode 'interference': this rank's quiet and busy chain times, pair by pair."""
    import torch
    import torch.distributed as dist

    from astrasim.validation.programs import DeviceRun, prioritize_communication

    rank, n = dist.get_rank(), dist.get_world_size()
    m, k, n_out = SHAPE
    x, w = torch.randn(m, k), torch.randn(k, n_out)
    calls = {0: {"work": lambda: torch.mm(x, w)}}
    messages = int(job.get("messages", MESSAGES))
    quiet = DeviceRun(chain_graph(n, 0), rank, calls, "direct")
    busy = DeviceRun(chain_graph(n, messages), rank, calls, "direct")
    prioritize_communication()
    out = {"quiet": [], "busy": [], "stolen": [], "messages": messages}
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
    """Seconds of host CPU per message sent or received (>= 0): the simulator's delay of the chains
    (their op cost: each rank's quiet chain per op, times its core share) at `probe_s`, scaled to
    the measured delay. `topology`: the testbed's calibrated network; `placement`: its hosts."""
    from astrasim.engine import simulate

    n, messages = len(per_rank), per_rank[0]["messages"]
    op_s = statistics.mean(statistics.median(r["quiet"]) * share / CHAIN_OPS for r, share in zip(per_rank, shares))

    def chains_s(msgs: int, cost: float) -> float:  # mean over devices of its chain's end
        res = simulate(chain_graph(n, msgs, op_s), topology, placement=placement, message_cpu_s=cost,
                       record_timeline=True)
        return statistics.mean(max(e.end for e in res.timeline if e.kind == "compute" and e.device == d)
                               for d in range(n))

    predicted = chains_s(messages, probe_s) - chains_s(0, 0.0)
    return max(0.0, probe_s * measured_delay_s(per_rank) / predicted) if predicted > 0 else 0.0
