"""ASTRA: sequence parallelism with mixed-precision attention over vector-quantized codes.

Tokens are split as torch.tensor_split does (for a model with a CLS token, the T-1 patch tokens
are split and every device holds its own CLS copy, which is never quantized nor sent). Per layer
and device, in program order:

    vq_encode   encode the local block inputs to G codes of log2 K bits each
    (exchange)  codes leave as soon as vq_encode is done:
                - default / non-causal models: one all-gather, each device contributing
                  T_i x G x log2 K bits (T/N on average);
                - causal model with the knob causal_skip (default true): device i multicasts its codes only
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

Decode (output_tokens > 1; causal models only), as the paper: the last device decodes alone
(astrasim.strategies.lastdevice.decode_on_last_device). Its cache (knob decode_kv): "local" (default)
is what it built in the prefill: exact K/V of its own tokens and K_hat/V_hat rebuilt from the
codes of every earlier device (remote_kv), so no extra traffic and an approximate cache; "sent":
the other devices send their exact full-precision K/V per layer (an exact cache; the traffic of sp's
"sent").
"""

from __future__ import annotations

import math

from pydantic import Field

from astrasim.compute.analytic import (
    DTYPE_BYTES,
    INDEX_BYTES,
    Cost,
    LayerShape,
    attention_core,
    linear,
    mlp_block,
    norm,
    qkv,
    residual,
)
from astrasim.compute.memory import Memory, activation_bytes, kv_bytes, model_weights
from astrasim.compute.partition import bounded_split, proportional_split
from astrasim.kernels.split import astra_token_bounds
from astrasim.strategies.base import KnobError, Knobs, Strategy
from astrasim.strategies.lastdevice import DECODE_KV_HELP, DecodeKV, decode_on_last_device


class AstraKnobs(Knobs):
    groups: int = Field(32, ge=1, description="VQ groups G (must divide the hidden size D)")
    codebook: int = Field(1024, ge=2, description="codebook entries K per group (log2 K bits per code)")
    decode_kv: DecodeKV = Field("local", description=DECODE_KV_HELP)
    causal_skip: bool = Field(
        True,
        description="causal models: device i sends its codes only to the later devices "
        "that need them (true) instead of all-gathering them (false); the "
        "scenario-level `causal_skip` sets it too",
    )


def code_bits(groups: int, codebook: int) -> float:
    """Bits per token of ASTRA's grouped VQ codes: G * log2 K."""
    return groups * math.log2(codebook)


def sent_tokens(spec, n: int, tokens: int, shares: tuple[float, ...] | None = None) -> list[int]:
    """Tokens whose codes each device sends: its share of the sequence (patches only with CLS), even
    or in proportion to `shares`."""
    return proportional_split(tokens - 1 if spec.cls_token else tokens, list(shares) if shares else [1] * n)


def remote_tokens(spec, n: int, tokens: int, causal_skip: bool, own: list[int] | None = None) -> list[int]:
    """Remote tokens each device decodes and attends to."""
    own = own or sent_tokens(spec, n, tokens)
    total = sum(own)
    if spec.causal and causal_skip:
        return [sum(own[:d]) for d in range(n)]
    return [total - own[d] for d in range(n)]


class Astra(Strategy):
    name = "astra"
    summary = "sequence parallel, remote tokens as grouped-VQ codes (mixed-precision attention)"
    Knobs = AstraKnobs
    ops = ("vq_encode", "local_attn", "remote_kv", "remote_attn", "merge", "mlp")
    rank = 50
    paper_role = "method"
    color, marker = "#D55E00", "*"
    exact = False
    profiled_knobs = ("groups", "codebook")
    profile_values = {"groups": (1, 16, 32)}  # the paper's G
    label_knobs = {"groups": "G", "codebook": "K", "decode_kv": "kv", "causal_skip": "skip"}
    label_always = ("groups",)

    def check(self, spec, n, tokens, knobs):
        if spec.hidden % knobs.groups:
            raise KnobError(
                "groups",
                f"G={knobs.groups} does not divide {spec.name}'s hidden size D={spec.hidden}; use a "
                f"divisor such as 1, 16 or 32",
            )
        astra_token_bounds(tokens, n, spec.cls_token)

    def build(self, spec, costs, n, tokens, knobs, options):
        g, k = knobs.groups, knobs.codebook
        t = self.device_seconds(costs, spec, n, tokens, knobs, options)
        pool = t(0, "cls_pool") if spec.cls_token else 0.0
        per_token = code_bits(g, k)
        own = self.parts(spec, n, tokens, knobs, options)
        causal = spec.causal and knobs.causal_skip
        remote = remote_tokens(spec, n, tokens, knobs.causal_skip, own)
        even = sent_tokens(spec, n, tokens)
        profiled_remote = sum(even) - even[0]
        # uniform options: remote ops scale with the remote tokens a device uses (device_seconds
        # otherwise prices each device's own remote work analytically)
        scale = [(r / profiled_remote if profiled_remote else 0.0) if options.uniform else float(r > 0) for r in remote]
        enc, loc, rkv, ratt, mrg, mlp = ([t(d, op) for d in range(n)] for op in self.ops)
        devs = tuple(range(n))
        b = self.graph_builder(spec, n, tokens, knobs, causal_skip=causal)
        prev = [""] * n
        for layer in range(spec.layers):
            e = [b.compute(d, "vq_encode", layer, enc[d], [prev[d]]) for d in devs]
            if causal:
                # codes from device s are needed by s+1..n-1; device d waits for every s < d
                sends = [
                    b.comm(f"codes_from{s}", layer, "broadcast", range(s, n), own[s] * per_token, [e[s]], root=s)
                    for s in range(n - 1)
                ]
                needs = [sends[:d] for d in devs]
            else:
                ex = b.comm(
                    "codes", layer, "all_gather", devs, sum(own) / n * per_token, e, algorithm=options.algorithm
                )
                needs = [[ex]] * n
            for d in devs:
                la = b.compute(d, "local_attn", layer, loc[d], [prev[d]])
                merge_deps = [la]
                if scale[d] > 0:
                    rk = b.compute(d, "remote_kv", layer, rkv[d] * scale[d], needs[d])
                    merge_deps.append(b.compute(d, "remote_attn", layer, ratt[d] * scale[d], [rk, la]))
                mg = b.compute(d, "merge", layer, mrg[d], merge_deps)
                prev[d] = b.compute(d, "mlp", layer, mlp[d], [mg])
        if spec.cls_token and n > 1:
            gat = b.comm("cls_gather", -1, "gather", devs, spec.hidden * options.element_bits, prev, root=0)
            b.compute(0, "cls_pool", -1, pool, [gat, prev[0]])
        elif spec.cls_token:
            b.compute(0, "cls_pool", -1, pool, [prev[0]])
        return b.graph

    def op_costs(self, spec, n, tokens, knobs, dtype="float32"):
        bounds = astra_token_bounds(tokens, n, spec.cls_token)
        # own shared (quantized) tokens; every other device's shared tokens
        return self._costs(spec, n, knobs, bounds[0][1] - bounds[0][0], sum(b - a for a, b in bounds[1:]), dtype)

    # -- memory and uneven token splits ----------------------------------------------------------
    def parts(self, spec, n, tokens, knobs, options):
        """Shared tokens per device (CLS copies not counted), even or in proportion to the partition weights,
        bounded by each device's memory (counting every other token as remote: an upper bound)."""
        shared = tokens - 1 if spec.cls_token else tokens
        return bounded_split(
            shared, n, options, lambda d, p: self._device_memory(spec, knobs, options, p, shared - p, 0).total
        )

    def device_op_costs(self, spec, n, tokens, knobs, parts, device, options):
        remote = remote_tokens(spec, n, tokens, knobs.causal_skip, parts)[device]
        return self._costs(spec, n, knobs, parts[device], remote, "float32")

    def memory(self, spec, n, tokens, knobs, options, output_tokens=0):
        """Full weights and every layer's codebooks (K x D values at weight_bits) on every device; the
        KV cache of its own tokens (the last device also of the generated ones) plus the codes of the
        remote tokens it uses; one layer's activations include the decoded remote K_hat, V_hat."""
        own = self.parts(spec, n, tokens, knobs, options)
        remote = remote_tokens(spec, n, tokens, knobs.causal_skip, own)
        return [
            self._device_memory(spec, knobs, options, own[d], remote[d], output_tokens if d == n - 1 else 0)
            for d in range(n)
        ]

    def _device_memory(self, spec, knobs, options, own: int, remote: int, generated: int) -> Memory:
        sh = LayerShape.of(spec)
        local = own + (1 if spec.cls_token else 0)
        codes = spec.layers * remote * code_bits(knobs.groups, knobs.codebook) / 8
        return Memory(
            weights=model_weights(spec, sh) * options.weight_bits / 8,
            codebooks=spec.layers * knobs.codebook * spec.hidden * options.weight_bits / 8,
            kv_cache=kv_bytes(spec.layers, local + generated, sh.kv_heads, sh.head_dim, sh) + codes,
            activations=activation_bytes(sh, local, local, local + remote, local),
        )

    def _costs(self, spec, n, knobs, m: int, remote: int, dtype: str):
        """One layer's ops of a device with m own shared tokens that uses `remote` remote tokens."""
        s, sh = DTYPE_BYTES[dtype], LayerShape.of(spec)
        groups, codebook, d = knobs.groups, knobs.codebook, spec.hidden
        local = m + (1 if spec.cls_token else 0)  # own tokens incl. the CLS copy
        gd = d // groups
        hd, heads = sh.head_dim, sh.heads
        ops = {
            "vq_encode": Cost(
                2.0 * m * groups * gd * codebook + 2.0 * m * groups * codebook,
                s * (m * d + groups * codebook * (gd + 1)) + INDEX_BYTES * m * groups,
            ),
            "local_attn": (
                norm(local, d, sh.norm, s)
                + qkv(local, sh, s)
                + attention_core(
                    heads,
                    sh.kv_heads,
                    hd,
                    local,
                    local,
                    local * (local + 1) / 2 if sh.causal else float(local * local),
                    s,
                )
            ),
            "remote_kv": (
                Cost(0.0, INDEX_BYTES * remote * groups + 2.0 * s * remote * d)
                + norm(remote, d, sh.norm, s)
                + qkv(remote, sh, s, q=False)
            ),
            "remote_attn": attention_core(heads, sh.kv_heads, hd, local, remote, float(local * remote), s),
            "merge": (
                Cost(heads * local * (3.0 * hd + 6), s * (3.0 * heads * local * hd) + 8.0 * heads * local)
                + linear(local, heads * hd, d, s, sh.bias)
                + residual(local, d, s)
            ),
            "mlp": mlp_block(sh, local, s),
        }
        if remote == 0:  # one device: nothing to decode or attend to
            ops["remote_kv"] = ops["remote_attn"] = Cost()
        if spec.cls_token:
            ops["cls_pool"] = Cost(float(n * d), s * (n * d + d))
        return ops

    def kernel_calls(self, block, n, tokens, knobs, cls_token, device=0):
        """Every op of `device`; remote ops see the tokens of all other devices (device 0's tokens
        are the most; with causal skipping the graph scales remote_kv/remote_attn, the calls do not).
        Codes leave packed to G log2 K bits (what the simulator sends) and arrive packed."""
        import torch

        from astrasim.kernels.codes import pack_codes, unpack_codes
        from astrasim.kernels.parallel import AstraBlock
        from astrasim.kernels.vq import GroupedVQ

        d, groups = block.hidden, knobs.groups
        x = torch.randn(1, tokens, d, dtype=block.dtype)
        torch.manual_seed(1)
        with torch.inference_mode(False):  # an ordinary module, as in a real run
            vq = GroupedVQ(d, groups, knobs.codebook, dtype=block.dtype).eval()
        dev = AstraBlock(block, vq, n, device, cls_token=cls_token)
        bounds = dev.shared_bounds(tokens)
        local = bounds[device][1] - bounds[device][0] + (1 if cls_token else 0)
        remote = sum(b - a for j, (a, b) in enumerate(bounds) if j != device)
        x_local = x[:, :local].contiguous()
        codes = torch.randint(0, knobs.codebook, (1, remote, groups))
        bits = vq.index_bits
        wire = pack_codes(codes, bits)  # what arrives from the other devices
        st = dev.local_attn(x_local)
        k_hat, v_hat = dev.remote_kv(codes)
        r = dev.remote_attn(st.q, k_hat, v_hat)
        h = dev.merge(x_local, st, r)
        calls = {
            "vq_encode": lambda: pack_codes(dev.vq_encode(x_local), bits),
            "local_attn": lambda: dev.local_attn(x_local),
            "remote_kv": lambda: dev.remote_kv(unpack_codes(wire, remote * groups, bits).reshape(1, remote, groups)),
            "remote_attn": lambda: dev.remote_attn(st.q, k_hat, v_hat),
            "merge": lambda: dev.merge(x_local, st, r),
            "mlp": lambda: dev.mlp(h),
        }
        if cls_token:
            cls_outs = [torch.randn(1, 1, d, dtype=block.dtype) for _ in range(n)]
            calls["cls_pool"] = lambda: AstraBlock.cls_pool(cls_outs)
        return calls

    def build_decode(self, b, spec, costs, n, prompt, steps, knobs, options):
        decode_on_last_device(
            b,
            spec,
            costs,
            n,
            prompt,
            steps,
            options.element_bits,
            "local_attn" if knobs.decode_kv == "sent" else None,
            options=options,
        )


STRATEGY = Astra()
