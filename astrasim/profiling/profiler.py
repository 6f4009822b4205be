"""Time the per-device ops of every strategy and return the tidy profile table (docs/kernels.md).

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from astrasim.errors import UserError
from astrasim.kernels.block import ReferenceBlock
from astrasim.kernels.codes import pack_codes, unpack_codes
from astrasim.kernels.parallel import STRATEGY_BLOCKS, STRATEGY_OPS, AstraBlock
from astrasim.kernels.split import astra_token_bounds, head_bounds, token_bounds
from astrasim.kernels.vq import GroupedVQ
from astrasim.models import ModelSpec
from astrasim.profiling.costs import DTYPE_BYTES, op_costs
from astrasim.profiling.timing import time_sequence

COLUMNS = ["model", "strategy", "devices", "groups", "codebook", "tokens", "op", "median_s", "p10_s", "p90_s",
           "repeats", "flops", "bytes", "hardware", "threads", "dtype", "torch_version"]
STRATEGIES = tuple(STRATEGY_OPS)
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
    """One measured configuration: all ops of one strategy's per-device block."""

    strategy: str
    devices: int
    groups: int
    tokens: int

    def label(self, model: str) -> str:
        g = f" G={self.groups}" if self.strategy == "astra" else ""
        return f"{model} {self.strategy} N={self.devices}{g} T={self.tokens}"


def plan_configs(spec: ModelSpec, strategies: Sequence[str], devices: Sequence[int], groups: Sequence[int],
                 tokens: Sequence[int]) -> list[Config]:
    """Every configuration to measure, validated up front (a bad one is a UserError before any timing)."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise UserError(f"unknown strategy {unknown[0]!r}; use any of {', '.join(STRATEGIES)}", field="strategies")
    if not strategies or not devices or not tokens:
        raise UserError("needs at least one strategy, device count and token count", field="profile")
    configs: list[Config] = []
    for t in tokens:
        if not 1 <= t <= spec.max_tokens:
            raise UserError(f"{spec.name} takes 1..{spec.max_tokens} tokens, got {t}", field="tokens")
        for strategy in strategies:
            counts = [1] if strategy == "single" else devices
            for n in counts:
                if n < 1:
                    raise UserError(f"device counts must be positive, got {n}", field="devices")
                if strategy in ("tp", "bp-ag", "bp-sp"):
                    head_bounds(spec.heads, spec.kv_heads, n)
                if strategy in ("sp", "bp-sp"):
                    token_bounds(t, n)
                if strategy == "astra":
                    astra_token_bounds(t, n, spec.cls_token)
                    if not groups:
                        raise UserError("astra needs at least one group count", field="groups")
                    for g in groups:
                        if g < 1 or spec.hidden % g:
                            raise UserError(f"G={g} must divide {spec.name}'s hidden size {spec.hidden}", field="groups")
                        configs.append(Config(strategy, n, g, t))
                else:
                    configs.append(Config(strategy, n, 0, t))
    return configs


def _op_calls(block: ReferenceBlock, cfg: Config, codebook: int, cls_token: bool) -> dict[str, Callable[[], object]]:
    """Zero-argument calls of every op of device 0, on inputs produced by running the ops once."""
    d, t, n = block.hidden, cfg.tokens, cfg.devices
    dev_kw = {"dtype": block.dtype}
    x = torch.randn(1, t, d, **dev_kw)
    if cfg.strategy == "single":
        dev = STRATEGY_BLOCKS["single"](block)
        h = dev.attn(x)
        return {"attn": lambda: dev.attn(x), "mlp": lambda: dev.mlp(h)}
    if cfg.strategy == "tp":
        dev = STRATEGY_BLOCKS["tp"](block, n, 0)
        return {"attn": lambda: dev.attn(x), "mlp": lambda: dev.mlp(x)}
    calls: dict[str, Callable[[], object]] = {}
    if cfg.strategy in ("bp-ag", "bp-sp"):
        dev = STRATEGY_BLOCKS[cfg.strategy](block, n, 0)
        a, b = dev.d_slice
        x_slice = x[..., a:b].contiguous()
        calls["decoupled_layer"] = lambda: dev.decoupled_layer(x_slice)
        if cfg.strategy == "bp-ag":
            calls["full_layer"] = lambda: dev.full_layer(x)
            return calls
    if cfg.strategy in ("sp", "bp-sp"):
        dev = dev if cfg.strategy == "bp-sp" else STRATEGY_BLOCKS["sp"](block, n, 0)
        h = dev.attn(x)
        calls.update(attn=lambda: dev.attn(x), mlp=lambda: dev.mlp(h))
        return calls
    # astra
    torch.manual_seed(1)
    with torch.inference_mode(False):  # an ordinary module, as in a real run
        vq = GroupedVQ(d, cfg.groups, codebook, dtype=block.dtype).eval()
    dev = AstraBlock(block, vq, n, 0, cls_token=cls_token)
    bounds = dev.shared_bounds(t)
    local = bounds[0][1] - bounds[0][0] + (1 if cls_token else 0)
    remote = sum(b - a for a, b in bounds[1:])
    x_local = x[:, :local].contiguous()
    codes = torch.randint(0, codebook, (1, remote, cfg.groups))
    bits = vq.index_bits
    wire = pack_codes(codes, bits)  # what arrives from the other devices
    st = dev.local_attn(x_local)
    k_hat, v_hat = dev.remote_kv(codes)
    r = dev.remote_attn(st.q, k_hat, v_hat)
    h = dev.merge(x_local, st, r)
    calls = {
        # codes leave packed to G log2 K bits (what the simulator sends) and arrive packed
        "vq_encode": lambda: pack_codes(dev.vq_encode(x_local), bits),
        "local_attn": lambda: dev.local_attn(x_local),
        "remote_kv": lambda: dev.remote_kv(unpack_codes(wire, remote * cfg.groups, bits).reshape(1, remote, cfg.groups)),
        "remote_attn": lambda: dev.remote_attn(st.q, k_hat, v_hat),
        "merge": lambda: dev.merge(x_local, st, r),
        "mlp": lambda: dev.mlp(h),
    }
    if cls_token:
        cls_outs = [torch.randn(1, 1, d, **dev_kw) for _ in range(n)]
        calls["cls_pool"] = lambda: AstraBlock.cls_pool(cls_outs)
    return calls


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


def profile_ops(spec: ModelSpec, strategies: Iterable[str] = STRATEGIES, devices: Iterable[int] = (1, 2, 4, 8),
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
    configs = plan_configs(spec, list(strategies), list(devices), list(groups), token_list)
    rows = []
    with _threads(threads) as n_threads, torch.inference_mode(), _progress(progress, len(configs)) as advance:
        torch.manual_seed(seed)
        block = ReferenceBlock(spec, dtype=DTYPES[dtype]).eval()
        evict = _evictor(block)
        meta = dict(model=spec.name, hardware=hardware_description(), threads=n_threads, dtype=dtype,
                    torch_version=torch.__version__)
        for cfg in configs:
            advance(cfg.label(spec.name))
            costs = op_costs(spec, cfg.strategy, cfg.devices, cfg.tokens, groups=cfg.groups, codebook=codebook,
                             dtype=dtype)
            timings = time_sequence(_op_calls(block, cfg, codebook, spec.cls_token), repeats=repeats,
                                    warmup=warmup, evict=evict)
            for op, timing in timings.items():
                rows.append(dict(meta, strategy=cfg.strategy, devices=cfg.devices, groups=cfg.groups,
                                 codebook=codebook if cfg.strategy == "astra" else 0, tokens=cfg.tokens, op=op,
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
    """Read a profile CSV and check it has every column of the profile table."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"profile file '{p}' not found; create it with `astrasim profile --out {p}`", field="profile")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"'{p}' is not a readable CSV: {str(exc).splitlines()[0] if str(exc) else exc}",
                        field="profile") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"'{p}' lacks column(s) {', '.join(missing)} of the profile table", field="profile")
    return df


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
