"""`astrasim profile`: time the per-device ops of every strategy and write the profile table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
import typer

from astrasim.commands import user_errors
from astrasim.errors import UserError

DEFAULT_MODELS = "vit-base,gpt2-s,gpt2-m"


def _ints(text: str, field: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"expected comma-separated integers, got '{text}'", field=field) from None
    if not values:
        raise UserError("expected at least one integer", field=field)
    return values


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _model(name: str):
    from astrasim.models import get_model, load_model_yaml

    if name.endswith((".yaml", ".yml")):
        return load_model_yaml(name)
    return get_model(name)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("profile")
    @user_errors
    def profile(
        models: str = typer.Option(DEFAULT_MODELS, help="Comma-separated model names or custom model YAML paths. "
                                   "llama3-8b is left out of the default (one layer is ~0.9 GB and ~0.45 TFLOP at 1024 "
                                   "tokens: tens of minutes on a small CPU); add it explicitly."),
        strategies: str = typer.Option("single,tp,sp,bp-ag,bp-sp,astra", help="Comma-separated strategies."),
        devices: str = typer.Option("1,2,4,8", help="Comma-separated device counts N."),
        groups: str = typer.Option("1,16,32", help="Comma-separated ASTRA group counts G."),
        codebook: int = typer.Option(1024, help="ASTRA codebook size K per group."),
        tokens: str = typer.Option("", help="Comma-separated sequence lengths T (default: each model's own: "
                                   "197 for vit-base, 1024 for gpt2 / llama)."),
        threads: int = typer.Option(None, help="torch intra-op threads (default: torch's, usually all cores)."),
        dtype: str = typer.Option("float32", help="float32, float16 or bfloat16."),
        out: Path = typer.Option(Path("profiles/cpu.csv"), help="Output CSV; its file name is the hardware id."),
        repeats: int = typer.Option(10, help="Timed samples per op (median, p10, p90 over them)."),
        warmup: int = typer.Option(2, help="Untimed calls per op before timing."),
        quiet: bool = typer.Option(False, help="No progress bar."),
    ) -> None:
        """Time every op of every (model, strategy, devices, G, tokens) and write the tidy profile CSV."""
        from astrasim.extras import require_kernels
        from astrasim.fileio import check_output_path

        check_output_path(out, "--out", [m for m in _names(models) if m.endswith((".yaml", ".yml"))])
        require_kernels("profile")
        from astrasim.profiling import plan_configs, profile_ops, write_profile
        from astrasim.profiling.profiler import normalize_dtype

        dtype = normalize_dtype(dtype)
        specs = [_model(m) for m in _names(models)]
        if not specs:
            raise UserError("expected at least one model", field="models")
        strategy_list, device_list = _names(strategies), _ints(devices, "devices")
        group_list = _ints(groups, "groups")
        token_list = _ints(tokens, "tokens") if tokens.strip() else None
        for spec in specs:  # validate everything before the first (slow) measurement
            plan_configs(spec, strategy_list, device_list, group_list, token_list or [spec.tokens])
        started = time.perf_counter()
        frames = [profile_ops(spec, strategy_list, device_list, group_list, token_list, codebook=codebook,
                              dtype=dtype, threads=threads, repeats=repeats, warmup=warmup, progress=not quiet)
                  for spec in specs]
        table = pd.concat(frames, ignore_index=True)
        write_profile(table, out)
        print(f"wrote {len(table)} rows to {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
