"""Time the per-device ops of every strategy and return the tidy profile table.

For every (model, tokens, strategy, devices, profiled knobs) the per-device block of device 0 (the largest
shard under the split rule) is built from one randomly initialised ReferenceBlock, its ops are run
once in order to produce realistic inputs, and then the ops are timed on those fixed inputs in
program order, each once per round, after a cache eviction standing for the previous layer
(:func:`astrasim.profiling.timing.time_sequence`), under ``torch.inference_mode``, batch size 1.
A configuration with a noisy op (spread or drift above ``max_noise``) is re-measured up to
``remeasure`` times (:func:`~astrasim.profiling.timing.time_until_stable`); rows that stay noisy are
marked ``unstable`` (columns spread, drift, unstable: docs/kernels.md "Noise").

ASTRA's vq_encode includes bit-packing the codes for the wire and remote_kv unpacking them
(`astrasim.kernels.codes`). Its remote ops (remote_kv, remote_attn) are timed with the tokens of *all* other devices as
remote tokens: every device's work without causal skipping, and the last device's (the busiest)
with it. A device that decodes fewer remote tokens scales these two ops by its remote token count
(their flops are linear in it). Single-device rows are measured once per (model, tokens), with
devices = 1, whatever ``devices`` lists.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from astrasim.compute.analytic import DTYPE_BYTES
from astrasim.compute.profiles import PROFILE_NOISE_COLUMNS, profile_columns
from astrasim.errors import UserError
from astrasim.executors import Progress
from astrasim.kernels.block import ReferenceBlock
from astrasim.models import ModelSpec
from astrasim.profiling.timing import CLOCKS, time_until_stable
from astrasim.strategies import STRATEGIES, Knobs, get, registry
from astrasim.strategies.base import KnobError


def columns() -> list[str]:
    """A written profile's columns: the key columns of every profiled knob the registry declares."""
    return [*profile_columns(registry.PROFILED_KNOBS), *PROFILE_NOISE_COLUMNS]


COLUMNS = columns()
MAX_NOISE = 0.5  # a row whose (p90 - p10) / median or drift exceeds this is re-measured, then flagged
REMEASURE = 2  # at most this many re-measurements of a configuration with a noisy op
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}


def hardware_description() -> str:
    """A human description of this CPU, e.g. 'AMD EPYC, 2 logical CPUs (x86_64)'."""
    name = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    name = name or platform.processor() or "unknown CPU"
    return f"{name}, {os.cpu_count()} logical CPUs ({platform.machine()})"


def normalize_dtype(dtype: str) -> str:
    name = DTYPE_ALIASES.get(dtype, dtype)
    if name not in DTYPES:
        raise UserError(f"unknown dtype '{dtype}'; use one of {', '.join(DTYPES)}", field="dtype")
    return name


@dataclass(frozen=True)
class Config:
    """One measured configuration: all ops of one strategy variant's per-device block."""

    strategy: str
    devices: int
    knobs: Knobs
    tokens: int
    decode: bool = False  # decode-step ops; tokens = the cache length

    def label(self, model: str) -> str:
        s = get(self.strategy)
        return f"{model} {s.label(self.knobs)} N={self.devices} " + (
            f"cache={self.tokens}" if self.decode else f"T={self.tokens}"
        )


def plan_configs(
    spec: ModelSpec,
    strategies: Sequence[str],
    devices: Sequence[int],
    knobs: Mapping[str, Sequence],
    tokens: Sequence[int],
    decode: bool = False,
) -> list[Config]:
    """Every configuration to measure, validated up front (a bad one is a UserError before any timing).

    `knobs` (profiled knob -> values, e.g. {"groups": [1, 16, 32], "codebook": [1024]}) fills the
    profiled knobs of the strategies that have them; one left out: the strategy's profile_values, else
    the knob's default.
    decode: the decode-step ops (decode_ops) with `tokens` as cache lengths, causal models only.
    Strategies with no ops of their own in that phase (pp; sp and astra in decode: they reuse the
    single device's rows) are skipped."""
    unknown_knobs = [k for k in knobs if k not in registry.PROFILED_KNOBS]
    if unknown_knobs:
        raise UserError(
            f"'{unknown_knobs[0]}' is no strategy's profiled knob; use one of "
            f"{', '.join(registry.PROFILED_KNOBS) or '(none)'}",
            field="knob",
        )
    if decode and not spec.causal:
        raise UserError(f"{spec.name} is not causal: it has no decode steps to profile", field="decode")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise UserError(f"unknown strategy {unknown[0]!r}; use any of {', '.join(STRATEGIES)}", field="strategies")
    if not strategies or not devices or not tokens:
        raise UserError("needs at least one strategy, device count and token count", field="profile")
    if any(n < 1 for n in devices):
        raise UserError(f"device counts must be positive, got {list(devices)}", field="devices")
    configs: list[Config] = []
    for t in tokens:
        if not 1 <= t <= spec.max_tokens:
            raise UserError(f"{spec.name} takes 1..{spec.max_tokens} tokens, got {t}", field="tokens")
        for name in strategies:
            strategy = get(name)
            if not (strategy.decode_ops if decode else strategy.ops) or not strategy.applies(spec):
                continue
            lists = strategy.profile_lists(dict(knobs))
            for k, values in lists.items():
                if not values:
                    raise UserError(f"{name} needs at least one value of {k}", field=k)
            try:
                variants = strategy.variants(lists)
            except ValueError as exc:  # pydantic: a value out of the knob's range
                bad = exc.errors()[0] if hasattr(exc, "errors") else {}
                knob = str((bad.get("loc") or ("knob",))[0])
                raise UserError(f"{name}: {bad.get('msg', exc)}", field=knob) from None
            for n in [1] if strategy.single_device else list(devices):
                for variant in variants:
                    try:
                        # decode: t is a cache length, not tokens to split (any prompt of >= n tokens)
                        strategy.check(spec, n, max(t, n) if decode else t, variant)
                    except KnobError as exc:
                        raise UserError(str(exc), field=exc.knob) from None
                    configs.append(Config(name, n, variant, t, decode))
    return configs


EVICT_MAX_BYTES = 256 * 2**20


def _evictor(block: torch.nn.Module):
    """A call that overwrites as many bytes as the block's weights (at least 8 MB, at most
    EVICT_MAX_BYTES): what the previous layer of a real pass leaves in the caches."""
    size = sum(p.numel() * p.element_size() for p in block.parameters())
    buf = torch.zeros(max(8 * 2**20, min(size, EVICT_MAX_BYTES)) // 4, dtype=torch.float32)
    return lambda: buf.add_(1.0)


@contextlib.contextmanager
def _threads(threads: int | None):
    before = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise UserError(f"must be a positive integer, got {threads}", field="threads")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def profile_ops(
    spec: ModelSpec,
    strategies: Iterable[str] = tuple(STRATEGIES),
    devices: Iterable[int] = (1, 2, 4, 8),
    groups: Iterable[int] | None = None,
    tokens: int | Iterable[int] | None = None,
    *,
    codebook: int | None = None,
    knobs: Mapping[str, Sequence] | None = None,
    dtype: str = "float32",
    threads: int | None = None,
    repeats: int = 10,
    warmup: int = 2,
    progress: bool = True,
    seed: int = 0,
    max_noise: float = MAX_NOISE,
    remeasure: int = REMEASURE,
    clock: str = "wall",
    ops: Iterable[str] | None = None,
    decode: bool = False,
    statistic: str = "median",
) -> pd.DataFrame:
    """Measure every op of every requested configuration of one model; returns the profile table
    (columns :func:`columns`). `knobs`: profiled knob -> values (`groups` and `codebook` are
    shorthands for knobs["groups"], knobs["codebook"]; a knob left out: plan_configs). `tokens`
    defaults to the model's own sequence length. A configuration
    with an op noisier than `max_noise` is re-measured up to `remeasure` times; what stays noisier
    is marked unstable. `clock`: "wall" (seconds) or "cpu" (CPU seconds per thread, for a machine
    shared with other processes: timing.time_sequence). `ops`: time only these ops of each
    configuration (still in program order; for re-measuring a few rows into an extension file).
    decode: the decode-step ops instead, `tokens` being cache lengths (column `tokens` holds them).
    statistic: what column median_s holds, "median" of the timed rounds or "p10" (their 10th
    percentile: on a machine shared with other work preemption only ever adds time)."""
    if statistic not in ("median", "p10"):
        raise UserError(f"unknown statistic '{statistic}'; use median or p10", field="statistic")
    spec.check()
    dtype = normalize_dtype(dtype)
    if repeats < 1 or warmup < 0:
        raise UserError("repeats must be >= 1 and warmup >= 0", field="repeats" if repeats < 1 else "warmup")
    if clock not in CLOCKS:
        raise UserError(f"unknown clock '{clock}'; use one of {', '.join(CLOCKS)}", field="clock")
    strategies = list(strategies)
    only = None if ops is None else set(ops)
    if only is not None:
        known = {op for name in strategies for op in get(name).ops} | {"cls_pool"}
        if not only or not only <= known:
            raise UserError(
                f"unknown op(s) {sorted(only - known) or '(none given)'}; use ops of the chosen strategies: "
                f"{', '.join(sorted(known))}",
                field="ops",
            )
    if not max_noise > 0 or remeasure < 0:
        raise UserError(
            "max spread must be positive and remeasure >= 0", field="max_spread" if not max_noise > 0 else "remeasure"
        )
    token_list = [spec.tokens] if tokens is None else ([tokens] if isinstance(tokens, int) else list(tokens))
    lists = {
        **({"groups": list(groups)} if groups is not None else {}),
        **({"codebook": [codebook]} if codebook is not None else {}),
        **(knobs or {}),
    }
    configs = plan_configs(spec, list(strategies), list(devices), lists, token_list, decode)
    cols = columns()
    zeros = dict.fromkeys(registry.PROFILED_KNOBS, 0)
    rows = []
    with _threads(threads) as n_threads, torch.inference_mode(), _progress(progress, len(configs)) as advance:
        torch.manual_seed(seed)
        block = ReferenceBlock(spec, dtype=DTYPES[dtype]).eval()
        evict = _evictor(block)
        meta = dict(
            model=spec.name,
            hardware=hardware_description(),
            threads=n_threads,
            dtype=dtype,
            torch_version=torch.__version__,
        )
        for cfg in configs:
            advance(cfg.label(spec.name))
            strategy = get(cfg.strategy)
            if cfg.decode:
                costs = strategy.decode_op_costs(spec, cfg.devices, cfg.tokens, cfg.knobs, dtype=dtype)
                calls = strategy.decode_kernel_calls(block, cfg.devices, cfg.tokens, cfg.knobs)
            else:
                costs = strategy.op_costs(spec, cfg.devices, cfg.tokens, cfg.knobs, dtype=dtype)
                calls = strategy.kernel_calls(block, cfg.devices, cfg.tokens, cfg.knobs, spec.cls_token)
            if only is not None:
                calls = {op: call for op, call in calls.items() if op in only}
                if not calls:
                    continue
            timings, _ = time_until_stable(
                calls,
                repeats=repeats,
                warmup=warmup,
                evict=evict,
                max_noise=max_noise,
                remeasure=remeasure,
                clock=clock,
                threads=n_threads,
            )
            key = zeros | dict(strategy.profile_key(cfg.knobs))
            for op, timing in timings.items():
                rows.append(
                    dict(
                        meta,
                        **key,
                        strategy=cfg.strategy,
                        devices=cfg.devices,
                        tokens=cfg.tokens,
                        op=op,
                        median_s=timing.p10_s if statistic == "p10" else timing.median_s,
                        p10_s=timing.p10_s,
                        p90_s=timing.p90_s,
                        repeats=timing.repeats,
                        flops=costs[op].flops,
                        bytes=costs[op].bytes,
                        spread=timing.spread,
                        drift=timing.drift,
                        cpu_share=timing.cpu_ratio / n_threads,
                        unstable=timing.noise > max_noise,
                        clock=clock,
                    )
                )
        advance(None)
    return pd.DataFrame(rows, columns=cols)


@contextlib.contextmanager
def _progress(enabled: bool, total: int):
    """Yield advance(label), called as each configuration starts (astrasim.executors.Progress):
    the previous one is then done; label None = finished."""
    with Progress(enabled, total, "profiling") as bar:
        started = [False]

        def advance(label):
            if started[0]:
                bar.advance()
            started[0] = True
            bar.describe(label or "done")

        yield advance


def read_profile(path: str | Path) -> pd.DataFrame:
    """Read and validate a profile CSV (the one reader: astrasim.compute.profiles.read_profile_table)."""
    from astrasim.compute.profiles import read_profile_table

    return read_profile_table(path, field="profile", knobs=registry.PROFILED_KNOBS)


def unstable_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows flagged unstable (none for a profile written before the noise columns existed)."""
    if "unstable" not in df.columns:
        return df.iloc[0:0]
    return df[df["unstable"].astype(str).str.lower().isin(["true", "1"])]


def unstable_warning(row) -> str:
    """One warning line for an unstable profile row."""
    s = STRATEGIES.get(str(row["strategy"]))
    knobs = "".join(f" {k}={row[k]}" for k in (s.profiled_knobs if s else ()) if k in row.index)
    return (
        f"warning: unstable profile row {row['model']} {row['strategy']} N={row['devices']}{knobs} "
        f"T={row['tokens']} op={row['op']}: median {row['median_s']:.4g} s, p10 {row['p10_s']:.4g} s, "
        f"p90 {row['p90_s']:.4g} s (spread {row['spread']:.2f}, drift {row['drift']:.2f}, "
        f"CPU share {row['cpu_share']:.2f})"
    )


def write_profile(df: pd.DataFrame, path: str | Path) -> None:
    """Write a profile table atomically (whole or not at all), readable like any new file."""
    from astrasim.fileio import write_csv_atomic

    write_csv_atomic(path, df)


__all__ = [
    "COLUMNS",
    "DTYPE_BYTES",
    "columns",
    "MAX_NOISE",
    "REMEASURE",
    "STRATEGIES",
    "hardware_description",
    "plan_configs",
    "profile_ops",
    "read_profile",
    "unstable_rows",
    "unstable_warning",
    "write_profile",
]
