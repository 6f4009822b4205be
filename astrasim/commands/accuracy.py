"""`astrasim accuracy`: measure ASTRA's accuracy on scikit-learn's digits with the real kernels."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from astrasim.commands import user_errors
from astrasim.strategies.astra import AstraKnobs


def _ints(text: str, field: str) -> tuple[int, ...]:
    from astrasim.errors import UserError

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"'{text}' is not a comma-separated list of integers, e.g. 1,2,4", field=field) from None
    if not values:
        raise UserError("give at least one value", field=field)
    return values


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("accuracy")
    @user_errors
    def accuracy(
        out: Path = typer.Option(
            Path("results/accuracy_measured.csv"),
            "--out",
            help="accuracy rows (CSV, "
            "written atomically; the shipped profiles/accuracy_measured.csv is only "
            "replaced when you name it)",
        ),
        groups: str = typer.Option("1,2,4,8,16,32", "--groups", help="VQ groups G (divisors of 64)"),
        devices: str = typer.Option("2,4,8", "--devices", help="device counts N (2..16)"),
        seeds: str = typer.Option("0", "--seeds", help="seeds of the main G x N grid"),
        ablation_seeds: str = typer.Option("0,1,2", "--ablation-seeds", help="seeds of the ablations"),
        ablations: bool = typer.Option(
            True,
            "--ablations/--no-ablations",
            help="noise lambda 0 vs 1 and single vs distributed CLS at one (G, N) point",
        ),
        ablation_point: str = typer.Option("1,4", "--ablation-point", help="G,N of the ablations"),
        noise_lambda: float = typer.Option(1.0, "--noise-lambda", help="noise augmentation lambda of the grid"),
        codebook: int = typer.Option(
            AstraKnobs.model_fields["codebook"].default,
            "--codebook",
            help="codebook entries K per group (default: the astra strategy's knob default)",
        ),
        beta: float = typer.Option(0.0002, "--beta", help="VQ (commitment + codebook) loss weight"),
        pretrain_epochs: int = typer.Option(20, "--pretrain-epochs"),
        finetune_epochs: int = typer.Option(3, "--finetune-epochs"),
        threads: int = typer.Option(2, "--threads", help="torch CPU threads"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    ) -> None:
        """Pre-train a tiny ViT on the digits, fine-tune it as ASTRA for every G and N (grouped VQ with
        commitment loss and noise augmentation, distributed CLS), and write one row per run."""
        import time

        from astrasim.fileio import check_output_path

        check_output_path(out, "--out")  # before torch is even imported
        from rich.console import Console

        from astrasim.executors import Progress
        from astrasim.extras import require_kernels

        require_kernels("accuracy")
        from astrasim.accuracy.train import AccuracySettings, ablation_table, grid_table, n_steps, run_accuracy
        from astrasim.errors import UserError
        from astrasim.fileio import write_csv_atomic

        point = _ints(ablation_point, "--ablation-point")
        if len(point) != 2:
            raise UserError("give G,N, e.g. 1,4", field="--ablation-point")
        for name, v in (
            ("--pretrain-epochs", pretrain_epochs),
            ("--finetune-epochs", finetune_epochs),
            ("--threads", threads),
        ):
            if v < 1:
                raise UserError(f"must be >= 1, got {v}", field=name)
        if noise_lambda < 0 or beta < 0:
            raise UserError("must be >= 0", field="--noise-lambda" if noise_lambda < 0 else "--beta")
        cfg = AccuracySettings(
            groups=_ints(groups, "--groups"),
            devices=_ints(devices, "--devices"),
            seeds=_ints(seeds, "--seeds"),
            ablation_seeds=_ints(ablation_seeds, "--ablation-seeds") if ablations else (),
            ablation_groups=point[0],
            ablation_devices=point[1],
            ablations=ablations,
            noise_lambda=noise_lambda,
            codebook=codebook,
            beta=beta,
            pretrain_epochs=pretrain_epochs,
            finetune_epochs=finetune_epochs,
            threads=threads,
        )
        cfg.check()
        t0 = time.perf_counter()
        with Progress(progress, n_steps(cfg), "accuracy") as bar:
            df = run_accuracy(cfg, progress=lambda msg: bar.advance(description=msg))
        write_csv_atomic(out, df, "%.6g")
        out_console = Console(width=None if sys.stdout.isatty() else 120)
        original = df[df["strategy"] == "single"]["value"]
        out_console.print(f"{len(df)} rows -> {out}  ({time.perf_counter() - t0:.0f} s, {threads} threads)")
        out_console.print(
            f"original model (exact; single/tp/sp): {original.mean():.2f} % top-1"
            + (f" ± {original.std():.2f} over {len(original)} seeds" if len(original) > 1 else "")
        )
        out_console.print("ASTRA after fine-tuning, top-1 % (mean over grid seeds):")
        out_console.print(grid_table(df).round(2).to_string())
        abl = ablation_table(df)
        if not abl.empty:
            out_console.print("ablations (mean ± std over the same seeds):")
            for r in abl.itertuples():
                out_console.print(
                    f"  {r.variant:<12} lambda={r.noise_lambda:g} cls={r.cls:<11} G={r.groups} "
                    f"N={r.devices}: {r.mean:.2f} ± {0 if r.n < 2 else r.std:.2f} % (n={r.n})"
                )
