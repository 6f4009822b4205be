"""Grouped VQ encode speed (prints figures; not a timed test).

1. encode of 256 tokens, D = 768, K = 1024, G in {1, 16, 32} (d = D/G) against a torch.matmul of
   the same FLOPs ([256, 768] x [768, 1024]); target: ratio <= 2. A naive encode (one cdist per
   group) is shown for reference. Rounds interleave the three kernels so that a noisy machine
   affects them alike; the ratio is the median of the per-round ratios.
2. vq_encode's share of the ASTRA per-device block (sum of its ops) for gpt2-s, 1024 tokens, N = 4,
   from the profiler; target < 10 %.

Run: python bench/bench_vq.py [--threads N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from astrasim.kernels.vq import GroupedVQ
from astrasim.models import get_model
from astrasim.profiling import hardware_description, profile_ops
from astrasim.profiling.timing import time_call


def naive_encode(vq: GroupedVQ, x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(-1, vq.groups, vq.group_dim)
    return torch.stack([torch.cdist(flat[:, g], vq.codebook[g]).argmin(-1) for g in range(vq.groups)], -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--skip-share", action="store_true", help="only the matmul comparison")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"hardware: {hardware_description()}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    from astrasim.kernels import fused

    print(
        "encode path: "
        + (
            "fused C kernel (astrasim/kernels/vq_nearest.c)"
            if fused.available()
            else "torch batched matmul + two-stage argmin (no C compiler, or ASTRASIM_FUSED_VQ=0)"
        )
    )
    d_model, k, tokens = 768, 1024, 256
    torch.manual_seed(0)
    x = torch.randn(tokens, d_model)
    w = torch.randn(d_model, k)
    print(
        f"\n1. grouped VQ encode, {tokens} tokens, D={d_model}, K={k} "
        f"vs same-FLOP matmul [{tokens},{d_model}]x[{d_model},{k}]"
    )
    print(f"{'G':>3} {'d':>4} {'encode ms':>10} {'matmul ms':>10} {'ratio':>6} {'naive ms':>9} {'naive ratio':>11}")
    with torch.inference_mode():
        for g in (1, 16, 32):
            vq = GroupedVQ(d_model, g, k).eval()
            enc, mm, nv = [], [], []
            for _ in range(args.rounds):
                mm.append(time_call(lambda: torch.matmul(x, w), repeats=5).median_s)
                enc.append(time_call(lambda vq=vq: vq.encode(x), repeats=5).median_s)
                nv.append(time_call(lambda vq=vq: naive_encode(vq, x), repeats=3).median_s)
            ratio = statistics.median(e / m for e, m in zip(enc, mm))
            naive_ratio = statistics.median(n / m for n, m in zip(nv, mm))
            print(
                f"{g:>3} {d_model // g:>4} {statistics.median(enc) * 1e3:>10.2f} {statistics.median(mm) * 1e3:>10.2f} "
                f"{ratio:>6.2f} {statistics.median(nv) * 1e3:>9.2f} {naive_ratio:>11.2f}"
            )
    if args.skip_share:
        return
    print("\n2. vq_encode share of the astra per-device block, gpt2-s, 1024 tokens, N=4 (device 0)")
    df = profile_ops(get_model("gpt2-s"), ["astra"], [4], [1, 16, 32], 1024, repeats=10, warmup=2, progress=False)
    for g, rows in df.groupby("groups"):
        ops = rows.set_index("op").median_s
        print(
            f"G={g:>2}: vq_encode {ops['vq_encode'] * 1e3:7.2f} ms of {ops.sum() * 1e3:7.2f} ms "
            f"= {100 * ops['vq_encode'] / ops.sum():4.1f} %"
        )


if __name__ == "__main__":
    main()
