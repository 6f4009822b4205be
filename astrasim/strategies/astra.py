"""ASTRA: sequence parallelism with mixed-precision attention over vector-quantized codes.

Tokens are split as torch.tensor_split does (for a model with a CLS token, the T-1 patch tokens
are split and every device holds its own CLS copy, which is never quantized nor sent). Per layer
and device, in program order:

    vq_encode   encode the local block inputs to G codes of log2 K bits each
    (exchange)  codes leave as soon as vq_encode is done:
                - default / non-causal models: one all-gather, each device contributing
                  T_i x G x log2 K bits (T/N on average);
                - causal model with causal_skip (default true): device i multicasts its codes only
                  to the later devices i+1..N-1 (a `broadcast` Comm rooted at i); the last device
                  sends nothing, device 0 receives nothing
    local_attn  full-precision attention over local tokens, runs while the codes are in flight
    remote_kv   decode received codes -> K_hat, V_hat (waits for the codes it needs)
    remote_attn local Q over K_hat, V_hat
    merge       log-sum-exp combine + out-proj + residual
    mlp

With causal_skip a device decodes and attends to fewer remote tokens: remote_kv and
remote_attn are scaled by (remote tokens this device uses) / (remote tokens of the profiled
device, T - T_0), and skipped where that is zero (device 0).
For a model with a CLS token, after the last layer each device sends its CLS output (D x b
bits) to device 0 (`gather`), which mean-pools them (op cls_pool).
"""

from __future__ import annotations

from astrasim.models import ModelSpec
from astrasim.opgraph import OpGraph
from astrasim.strategies.base import Builder, Costs, StrategyOptions, code_bits, split_tokens


def sent_tokens(spec: ModelSpec, n: int, tokens: int) -> list[int]:
    """Tokens whose codes each device sends: its share of the sequence (patches only with CLS)."""
    return split_tokens(tokens - 1, n) if spec.cls_token else split_tokens(tokens, n)


def remote_tokens(spec: ModelSpec, n: int, tokens: int, causal_skip: bool) -> list[int]:
    """Remote tokens each device decodes and attends to."""
    own = sent_tokens(spec, n, tokens)
    total = sum(own)
    if spec.causal and causal_skip:
        return [sum(own[:d]) for d in range(n)]
    return [total - own[d] for d in range(n)]


def build(spec: ModelSpec, costs: Costs, n_devices: int, tokens: int, options: StrategyOptions) -> OpGraph:
    n, g, k = n_devices, options.groups, options.codebook
    t = lambda op: costs.seconds(spec.name, "astra", n, op, tokens, g, k)  # noqa: E731
    enc, loc, rkv, ratt, mrg, mlp = (t(op) for op in
                                     ("vq_encode", "local_attn", "remote_kv", "remote_attn", "merge", "mlp"))
    pool = t("cls_pool") if spec.cls_token else 0.0
    per_token = code_bits(g, k)
    own = sent_tokens(spec, n, tokens)
    causal = spec.causal and options.causal_skip
    remote = remote_tokens(spec, n, tokens, options.causal_skip)
    profiled_remote = sum(own) - own[0]
    scale = [r / profiled_remote if profiled_remote else 0.0 for r in remote]
    devs = tuple(range(n))
    b = Builder(n, {"strategy": "astra", "model": spec.name, "devices": n, "tokens": tokens,
                    "groups": g, "codebook": k, "causal_skip": causal})
    prev = [""] * n
    for layer in range(spec.layers):
        e = [b.compute(d, "vq_encode", layer, enc, [prev[d]]) for d in devs]
        if causal:
            # codes from device s are needed by s+1..n-1; device d waits for every s < d
            sends = [b.comm(f"codes_from{s}", layer, "broadcast", range(s, n), own[s] * per_token, [e[s]], root=s)
                     for s in range(n - 1)]
            needs = [sends[:d] for d in devs]
        else:
            ex = b.comm("codes", layer, "all_gather", devs, sum(own) / n * per_token, e, algorithm=options.algorithm)
            needs = [[ex]] * n
        for d in devs:
            la = b.compute(d, "local_attn", layer, loc, [prev[d]])
            merge_deps = [la]
            if scale[d] > 0:
                rk = b.compute(d, "remote_kv", layer, rkv * scale[d], needs[d])
                merge_deps.append(b.compute(d, "remote_attn", layer, ratt * scale[d], [rk, la]))
            mg = b.compute(d, "merge", layer, mrg, merge_deps)
            prev[d] = b.compute(d, "mlp", layer, mlp, [mg])
    if spec.cls_token and n > 1:
        gat = b.comm("cls_gather", -1, "gather", devs, spec.hidden * options.element_bits, prev, root=0)
        b.compute(0, "cls_pool", -1, pool, [gat, prev[0]])
    elif spec.cls_token:
        b.compute(0, "cls_pool", -1, pool, [prev[0]])
    return b.graph
