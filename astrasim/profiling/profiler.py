"""Time the per-device ops of every strategy and return the tidy profile table.

For every (model, tokens, strategy, devices, groups) the per-device block of device 0 (the largest
shard under the split rule) is built from one randomly initialised ReferenceBlock, its ops are run
once in order to produce realistic inputs, and then the ops are timed on those fixed inputs in
program order, each once per round, after a cache eviction standing for the previous layer
(:func:`astrasim.profiling.timing.time_sequence`), under ``torch.inference_mode``, batch size 1.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from astrasim.errors import UserError
from astrasim.kernels.block import ReferenceBlock
from astrasim.layer_costs import DTYPE_BYTES
from astrasim.models import ModelSpec
from astrasim.profiling.timing import time_sequence
from astrasim.strategies import STRATEGIES, Knobs, get
from astrasim.strategies.base import KnobError

COLUMNS = ["model", "strategy", "devices", "groups", "codebook", "tokens", "op", "median_s", "p10_s", "p90_s",
           "repeats", "flops", "bytes", "hardware", "threads", "dtype", "torch_version"]
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

    @property
    def groups(self) -> int:
        return get(self.strategy).profile_key(self.knobs)[0]

    def label(self, model: str) -> str:
        s = get(self.strategy)
        return f"{model} {s.label(self.knobs)} N={self.devices} T={self.tokens}"


def plan_configs(spec: ModelSpec, strategies: Sequence[str], devices: Sequence[int], groups: Sequence[int],
                 tokens: Sequence[int], codebook: int | None = None) -> list[Config]:
    """Every configuration to measure, validated up front (a bad one is a UserError before any timing).

    `groups` and `codebook` fill the profiled knobs of the strategies that have them (ASTRA's G, K)."""
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
            lists: dict[str, list] = {}
            if "groups" in strategy.profiled_knobs:
                if not groups:
                    raise UserError(f"{name} needs at least one group count", field="groups")
                lists["groups"] = list(groups)
            if "codebook" in strategy.profiled_knobs and codebook is not None:
                lists["codebook"] = [codebook]
            variants = strategy.variants(lists)
            for n in ([1] if strategy.single_device else list(devices)):
                for knobs in variants:
                    try:
                        strategy.check(spec, n, t, knobs)
                    except KnobError as exc:
                        raise UserError(str(exc), field=exc.knob) from None
                    configs.append(Config(name, n, knobs, t))
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


def profile_ops(spec: ModelSpec, strategies: Iterable[str] = tuple(STRATEGIES), devices: Iterable[int] = (1, 2, 4, 8),
                groups: Iterable[int] = (1, 16, 32), tokens: int | Iterable[int] | None = None, *,
                codebook: int = 1024, dtype: str = "float32", threads: int | None = None, repeats: int = 10,
                warmup: int = 2, progress: bool = True, seed: int = 0) -> pd.DataFrame:
    """Measure every op of every requested configuration of one model; returns the profile table
    (columns :data:`COLUMNS`). `tokens` defaults to the model's own sequence length."""
    spec.check()
    dtype = normalize_dtype(dtype)
    if repeats < 1 or warmup < 0:
        raise UserError("repeats must be >= 1 and warmup >= 0", field="repeats" if repeats < 1 else "warmup")
    if codebook < 2:
        raise UserError(f"codebook size must be at least 2, got {codebook}", field="codebook")
    token_list = [spec.tokens] if tokens is None else ([tokens] if isinstance(tokens, int) else list(tokens))
    configs = plan_configs(spec, list(strategies), list(devices), list(groups), token_list, codebook)
    rows = []
    with _threads(threads) as n_threads, torch.inference_mode(), _progress(progress, len(configs)) as advance:
        torch.manual_seed(seed)
        block = ReferenceBlock(spec, dtype=DTYPES[dtype]).eval()
        evict = _evictor(block)
        meta = dict(model=spec.name, hardware=hardware_description(), threads=n_threads, dtype=dtype,
                    torch_version=torch.__version__)
        for cfg in configs:
            advance(cfg.label(spec.name))
            strategy = get(cfg.strategy)
            costs = strategy.op_costs(spec, cfg.devices, cfg.tokens, cfg.knobs, dtype=dtype)
            calls = strategy.kernel_calls(block, cfg.devices, cfg.tokens, cfg.knobs, spec.cls_token)
            timings = time_sequence(calls, repeats=repeats, warmup=warmup, evict=evict)
            groups_col, codebook_col = strategy.profile_key(cfg.knobs)
            for op, timing in timings.items():
                rows.append(dict(meta, strategy=cfg.strategy, devices=cfg.devices, groups=groups_col,
                                 codebook=codebook_col, tokens=cfg.tokens, op=op,
                                 median_s=timing.median_s, p10_s=timing.p10_s, p90_s=timing.p90_s,
                                 repeats=timing.repeats, flops=costs[op].flops, bytes=costs[op].bytes))
        advance(None)
    return pd.DataFrame(rows, columns=COLUMNS)


@contextlib.contextmanager
def _progress(enabled: bool, total: int):
    """Yield advance(label): a rich progress bar on stderr when enabled; label None = finished."""
    if not enabled:
        yield lambda label: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("profiling", total=total)
        started = [False]

        def advance(label):
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=label or "done")

        yield advance


def read_profile(path: str | Path) -> pd.DataFrame:
    """Read and validate a profile CSV (the one reader: astrasim.strategies.costs.read_profile_table)."""
    from astrasim.strategies.costs import read_profile_table

    return read_profile_table(path, field="profile")


def write_profile(df: pd.DataFrame, path: str | Path) -> None:
    """Write a profile table atomically (whole or not at all), readable like any new file."""
    from astrasim.fileio import atomic_path

    umask = os.umask(0)
    os.umask(umask)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600


__all__ = ["COLUMNS", "DTYPE_BYTES", "STRATEGIES", "hardware_description", "plan_configs", "profile_ops",
           "read_profile", "write_profile"]
