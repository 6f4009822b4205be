"""Pipeline stages for an ordered set of devices: contiguous layer ranges by dynamic programming over
the per-layer cost on each device, its memory and the activation transfer between stages (as
PipeEdge and EdgeShard do).

Stage s (device order[s]) holds L_s >= 1 consecutive layers. Its cost is L_s x c_s + x_s, where c_s
is one layer's time on that device for the workload (prefill at T tokens, plus (n - 1) decode steps
for a generation of n tokens) and x_s the transfer of the stage's output to the next (T x D x b bits,
plus n - 1 tokens of D x b bits, at the network's rate). Its memory is L_s x (a layer's weights and KV)
+ what the stage holds besides (embeddings and head on the first and last stage, one chunk of
activations), both read off the pp strategy's own `memory` formula; it must fit the device.

objective "sum": one request crosses the stages in turn, so its latency is the sum of stage costs;
"max": a stream of requests is limited by its slowest stage (the pipeline's throughput).
DP over (stage, layers placed so far): O(N L^2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

GB = 1e9


@lru_cache(maxsize=256)
def stage_memory(spec, n: int, tokens: int, output_tokens: int, weight_bits: float) -> tuple[float, float, float]:
    """(bytes per layer, fixed bytes of an end stage, fixed bytes of a middle stage) of pp's memory."""
    from astrasim.strategies import BuildOptions, get

    pp = get("pp")
    opts = BuildOptions(weight_bits=weight_bits)
    L = spec.layers

    def first(sizes: list[int]) -> list[float]:
        knobs = pp.knobs(stages=",".join(map(str, sizes)))
        return [m.total for m in pp.memory(spec, len(sizes), tokens, knobs, opts, output_tokens)]

    if L < 3:
        one = first([1, L - 1])[0] if L == 2 else 0.0
        return one, 0.0, 0.0
    a, b = first([1, L - 1])[0], first([2, L - 2])[0]
    per_layer = b - a
    end_fixed = a - per_layer
    mid_fixed = first([1, 1, L - 2])[1] - per_layer if L >= 3 else 0.0
    return per_layer, end_fixed, mid_fixed


def best_stages(
    layer_cost: Sequence[float],
    transfer: Sequence[float],
    capacity: Sequence[float | None],
    per_layer: float,
    end_fixed: float,
    mid_fixed: float,
    layers: int,
    objective: Literal["sum", "max"] = "sum",
) -> list[int] | None:
    """Layer counts per stage minimizing the objective (None: no split fits in memory).
    layer_cost[s]: seconds per layer on stage s; transfer[s]: its outgoing transfer (0 for the last);
    capacity[s]: bytes it may hold (None: unbounded)."""
    n = len(layer_cost)
    if n > layers:
        return None
    INF = math.inf

    def most(s: int) -> int:
        cap = capacity[s]
        if cap is None:
            return layers
        fixed = end_fixed if s in (0, n - 1) else mid_fixed
        return int(math.floor((cap - fixed) / per_layer)) if per_layer > 0 else layers

    limits = [most(s) for s in range(n)]
    # best[s][k]: objective of stages 0..s-1 holding the first k layers
    best = [[INF] * (layers + 1) for _ in range(n + 1)]
    choice = [[0] * (layers + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for s in range(n):
        left_after = n - s - 1  # each later stage needs one layer
        for k in range(s, layers - left_after):
            if best[s][k] == INF:
                continue
            hi = min(limits[s], layers - left_after - k)
            for size in range(1, hi + 1):
                cost = size * layer_cost[s] + transfer[s]
                v = best[s][k] + cost if objective == "sum" else max(best[s][k], cost)
                if v < best[s + 1][k + size] - 1e-15:
                    best[s + 1][k + size] = v
                    choice[s + 1][k + size] = size
    if best[n][layers] == INF:
        return None
    sizes, k = [], layers
    for s in range(n, 0, -1):
        sizes.append(choice[s][k])
        k -= choice[s][k]
    return sizes[::-1]


def pp_stages(point, objective: Literal["sum", "max"] = "sum") -> str | None:
    """The `stages` knob ('14,6,6,6') for a pp point on its devices in order (None: nothing fits).
    Per-layer times are the pp strategy's own (the single device's profile rows scaled to each device)."""
    from astrasim.compute.hardware import device_memory, hardware_of
    from astrasim.compute.profiles import profile_id
    from astrasim.pointrun import point_costs
    from astrasim.strategies import get

    spec, n, T = point.model, point.devices, point.tokens
    if n < 2 or n > spec.layers:
        return None
    pp, one = get("pp"), get("single")
    options = point.options()
    costs = point_costs(point, point.device if options.fleet is None else None)
    attn = costs.seconds(spec.name, one.name, 1, "attn", T)
    mlp = costs.seconds(spec.name, one.name, 1, "mlp", T)
    steps = max(0, point.output_tokens - 1)
    speeds = point.device_speeds()
    dec = one.layer_decode_seconds(costs, spec, options) if steps else None  # (op, cache, device)
    cost = []
    for s in range(n):
        c = attn * pp.device_factor(spec, options, s, "attn", T) + mlp * pp.device_factor(spec, options, s, "mlp", T)
        if steps:
            c += steps * sum(dec(op, T, s) for op in ("attn_decode", "mlp_decode"))
        cost.append(c / speeds[s])
    rate = _rate_bps(point.network, n)
    bits = (T + steps) * spec.hidden * point.element_bits
    transfer = [bits / rate if s < n - 1 else 0.0 for s in range(n)]
    measured = profile_id(point.profile_path)
    capacity = []
    for s in range(n):
        mem = device_memory(hardware_of(point, s), measured)
        capacity.append(None if mem is None else (mem - point.headroom_gb) * GB)
    per_layer, end_fixed, mid_fixed = stage_memory(spec, n, T, point.output_tokens, options.weight_bits)
    sizes = best_stages(cost, transfer, capacity, per_layer, end_fixed, mid_fixed, spec.layers, objective)
    return None if sizes is None else ",".join(map(str, sizes))


@lru_cache(maxsize=256)
def _rate_bps(network, n: int) -> float:
    """The slowest capacity a stage's activation meets (the medium or a port), bit/s."""
    from astrasim.network.topology import Fabric

    caps = [r.capacity_bps for r in Fabric(network.build(n)).resources if r.capacity_bps > 0]
    return min(caps) if caps else math.inf
