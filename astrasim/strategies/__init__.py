"""Strategies: each one object in one module, registered once (astrasim.strategies.registry).

`build_graph` turns (strategy, model spec, per-op costs, N, tokens, knobs, options) into a
validated OpGraph. Each strategy module's docstring states its per-layer ops and messages
(docs/strategies.md).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from astrasim.errors import UserError
from astrasim.models import ModelSpec
from astrasim.opgraph import Compute, OpGraph
from astrasim.strategies.base import Builder, BuildOptions, Costs, Knobs, Strategy
from astrasim.strategies.registry import KNOB_FIELDS, STRATEGIES, get, label_of, parse_label

__all__ = [
    "STRATEGIES",
    "KNOB_FIELDS",
    "BuildOptions",
    "Knobs",
    "Strategy",
    "build_graph",
    "get",
    "label_of",
    "parse_label",
]


def build_graph(
    strategy: str | Strategy,
    spec: ModelSpec,
    costs: Costs,
    n_devices: int,
    tokens: int,
    knobs: Knobs | dict[str, Any] | None = None,
    options: BuildOptions | None = None,
    output_tokens: int = 0,
) -> OpGraph:
    """Build and validate the per-device op graph of one strategy point: the prefill of `tokens`
    prompt tokens, then (output_tokens > 1) the output_tokens - 1 decode steps that produce the
    tokens after the first (the prefill yields the first one)."""
    s = strategy if isinstance(strategy, Strategy) else get(strategy)
    if not isinstance(knobs, Knobs):
        knobs = s.knobs(**(knobs or {}))
    opts = options or BuildOptions()
    opts.check()
    s.check(spec, n_devices, tokens, knobs)
    n = 1 if s.single_device else n_devices
    graph = s.build(spec, costs, n, tokens, knobs, opts)
    if output_tokens > 1:
        check_decoding(s, spec)
        s.build_decode(Builder.on(graph), spec, costs, n, tokens, output_tokens - 1, knobs, opts)
        graph.meta["output_tokens"] = output_tokens
    if output_tokens > 0 and any(opts.head_s):
        graph = with_heads(graph, opts.head_s)
    graph.validate()
    return graph


def _step(op_id: str) -> int:
    m = re.match(r"tok(\d+)\.", op_id)
    return int(m.group(1)) if m else 0


def with_heads(graph: OpGraph, head_s: tuple[float, ...]) -> OpGraph:
    """The graph with the LM head of every produced token: after the prefill and after each decode step,
    a `head` compute on each device with head_s[device] > 0, after everything of that step; the next
    step's ops that wait on the previous step also wait on its heads (a token is sampled before the next
    step starts)."""
    steps: dict[int, list] = {}
    for op in graph.ops:
        steps.setdefault(_step(op.id), []).append(op)
    out = []
    heads: tuple[str, ...] = ()
    for k in sorted(steps):
        ops, ids = steps[k], {op.id for op in steps[k]}
        if heads:
            ops = [replace(op, deps=op.deps + heads) if any(d not in ids for d in op.deps) else op for op in ops]
        used = {d for op in ops for d in op.deps}
        sinks = tuple(op.id for op in ops if op.id not in used)
        prefix = f"tok{k}." if k else ""
        heads = tuple(f"{prefix}final.head.d{d}" for d, s in enumerate(head_s) if s > 0)
        out += ops + [
            Compute(f"{prefix}final.head.d{d}", d, float(s), sinks, name="head", layer=-1)
            for d, s in enumerate(head_s)
            if s > 0
        ]
    return replace(graph, ops=out)


def check_decoding(strategy: Strategy, spec: ModelSpec, field: str = "output_tokens") -> None:
    """UserError unless this strategy can decode on this model (a causal model: ViT does not generate)."""
    if not spec.causal:
        raise UserError(
            f"{spec.name} is not a causal (generative) model, so it has no decode steps; set output_tokens: 0 for it",
            field=field,
        )
    if not strategy.decodes():
        raise UserError(
            f"strategy {strategy.name} does not model decode steps; set output_tokens: 0 or drop "
            f"{strategy.name} from strategies",
            field=field,
        )
