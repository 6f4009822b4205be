"""`astrasim profile`: time the per-device ops of every strategy and write the profile table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
import typer

from astrasim.commands import user_errors
from astrasim.errors import UserError
from astrasim.strategies import registry
from astrasim.strategies.registry import STRATEGIES

DEFAULT_MODELS = "vit-base,gpt2-s,gpt2-m"


def _ints(text: str, field: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"expected comma-separated integers, got '{text}'", field=field) from None
    if not values:
        raise UserError("expected at least one integer", field=field)
    return values


def parse_knobs(specs: list[str], groups: str = "", codebook: int | None = None) -> dict[str, list[int]]:
    """`--knob NAME=V1,V2` (repeatable) as {NAME: [V1, V2]}; `--groups` and `--codebook` are aliases of
    `--knob groups=...` and `--knob codebook=...`. A knob not given: each strategy's profile_values."""
    out: dict[str, list[int]] = {}
    for text in specs:
        name, sep, values = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError(f"expected NAME=V1,V2 (e.g. groups=1,16,32), got '{text}'", field="knob")
        if name not in registry.PROFILED_KNOBS:
            raise UserError(
                f"'{name}' is no strategy's profiled knob; use one of {', '.join(registry.PROFILED_KNOBS) or '(none)'}",
                field="knob",
            )
        out[name] = _ints(values, name)
    for name, alias in (
        ("groups", _ints(groups, "groups") if groups.strip() else None),
        ("codebook", [codebook] if codebook is not None else None),
    ):
        if alias is not None:
            if name in out:
                raise UserError(f"--{name} and --knob {name}=... both given; keep one", field=name)
            out[name] = alias
    return out


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _model(name: str):
    from astrasim.models import load_model

    return load_model(name)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("profile")
    @user_errors
    def profile(
        models: str = typer.Option(
            DEFAULT_MODELS,
            help="Comma-separated model names (built-in or zoo: `astrasim models`), custom model YAML "
            "paths or Hugging Face "
            "config.json files / folders. "
            "llama3-8b is left out of the default (one layer is ~0.9 GB and ~0.45 TFLOP at 1024 "
            "tokens: tens of minutes on a small CPU); add it explicitly.",
        ),
        strategies: str = typer.Option(
            ",".join(STRATEGIES), help="Comma-separated strategies (default: every registered one with ops of its own)."
        ),
        devices: str = typer.Option("1,2,4,8", help="Comma-separated device counts N."),
        knob: list[str] = typer.Option(
            [],
            "--knob",
            help="A profiled knob's values, NAME=V1,V2 (repeatable), e.g. "
            "groups=1,16,32 or codebook=1024; the strategies that have the knob get one "
            "configuration per value (default: the strategy's profile_values, else "
            "the knob's default). "
            "Profiled knobs: " + ", ".join(registry.PROFILED_KNOBS),
        ),
        groups: str = typer.Option("", help="Alias of --knob groups=... (ASTRA's group counts G)."),
        codebook: int = typer.Option(None, help="Alias of --knob codebook=... (ASTRA's codebook size K)."),
        tokens: str = typer.Option(
            "",
            help="Comma-separated sequence lengths T (default: each model's own: "
            "197 for vit-base, 1024 for gpt2 / llama).",
        ),
        threads: int = typer.Option(None, help="torch intra-op threads (default: torch's, usually all cores)."),
        dtype: str = typer.Option("float32", help="float32, float16 or bfloat16."),
        out: Path = typer.Option(Path("profiles/cpu.csv"), help="Output CSV; its file name is the hardware id."),
        repeats: int = typer.Option(10, help="Timed samples per op (median, p10, p90 over them)."),
        warmup: int = typer.Option(2, help="Untimed calls per op before timing."),
        max_spread: float = typer.Option(
            0.5,
            help="An op whose (p90 - p10) / median, or drift between the halves of "
            "its samples, exceeds this is re-measured, then flagged unstable.",
        ),
        remeasure: int = typer.Option(2, help="At most this many re-measurements of a configuration with a noisy op."),
        clock: str = typer.Option(
            "wall",
            help="wall: wall-clock seconds; cpu: the process's CPU seconds per thread, "
            "which estimates the quiet wall time on a machine shared with other processes.",
        ),
        ops: str = typer.Option(
            "",
            help="Comma-separated op names: time only these ops of each configuration "
            "(default: every op), e.g. to re-measure a few rows into an extension file.",
        ),
        calibrate: bool = typer.Option(
            False,
            "--calibrate",
            help="Only measure this machine's sustained fp32 matmul "
            "FLOP/s and copy bandwidth (the floor of its catalog peak), print them, exit.",
        ),
        quiet: bool = typer.Option(False, help="No progress bar."),
        decode: bool = typer.Option(
            False,
            "--decode",
            help="Time the decode-step ops (one new token over a KV "
            "cache) instead; --tokens are then cache lengths (default 1,512,1024).",
        ),
        statistic: str = typer.Option(
            "median",
            help="What the median_s column holds: median of the timed rounds, "
            "or p10 (their 10th percentile) on a machine shared with other work.",
        ),
    ) -> None:
        """Time every op of every (model, strategy, devices, profiled knobs, tokens) and write the tidy profile CSV.

        Exit codes: 0 written; 2 bad option (nothing written); 3 written, but some rows stayed unstable
        after their re-measurements (one warning line per row on stderr, the `unstable` column)."""
        from astrasim.extras import require_kernels
        from astrasim.fileio import check_output_path

        check_output_path(out, "--out", [m for m in _names(models) if m.endswith((".yaml", ".yml"))])
        require_kernels("profile")
        from astrasim.profiling import plan_configs, profile_ops, write_profile
        from astrasim.profiling.profiler import _threads, normalize_dtype, unstable_rows, unstable_warning
        from astrasim.profiling.timing import CLOCKS

        if calibrate:
            from astrasim.profiling.calibrate import calibrate as measure

            with _threads(threads):
                print("\n".join(measure().lines()))
            return

        dtype = normalize_dtype(dtype)
        if clock not in CLOCKS:
            raise UserError(f"unknown clock '{clock}'; use one of {', '.join(CLOCKS)}", field="clock")
        specs = [_model(m) for m in _names(models)]
        if not specs:
            raise UserError("expected at least one model", field="models")
        strategy_list, device_list = _names(strategies), _ints(devices, "devices")
        knob_lists = parse_knobs(knob, groups, codebook)
        token_list = _ints(tokens, "tokens") if tokens.strip() else ([1, 512, 1024] if decode else None)
        for spec in specs:  # validate everything before the first (slow) measurement
            plan_configs(spec, strategy_list, device_list, knob_lists, token_list or [spec.tokens], decode=decode)
        started = time.perf_counter()
        frames = [
            profile_ops(
                spec,
                strategy_list,
                device_list,
                None,
                token_list,
                knobs=knob_lists,
                dtype=dtype,
                threads=threads,
                repeats=repeats,
                warmup=warmup,
                progress=not quiet,
                decode=decode,
                statistic=statistic,
                max_noise=max_spread,
                remeasure=remeasure,
                clock=clock,
                ops=_names(ops) or None,
            )
            for spec in specs
        ]
        table = pd.concat(frames, ignore_index=True)
        write_profile(table, out)
        print(f"wrote {len(table)} rows to {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        share = table["cpu_share"].median()
        print(
            f"median CPU share of the measured ops: {share:.2f} (1 = the cores were this process's own; lower: "
            f"other processes slowed every op down, which spread and drift cannot see)",
            file=sys.stderr,
        )
        bad = unstable_rows(table)
        for _, row in bad.iterrows():
            print(unstable_warning(row), file=sys.stderr)
        if len(bad):
            print(
                f"{len(bad)} of {len(table)} rows stayed unstable (spread or drift > {max_spread:g}) after up to "
                f"{remeasure} re-measurements; measure them again on a quieter machine (exit code 3)",
                file=sys.stderr,
            )
            raise typer.Exit(code=3)
