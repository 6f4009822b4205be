"""`astrasim sweep SCENARIO`: run the whole grid, write tidy results and plots."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from astrasim.commands import user_errors


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("sweep")
    @user_errors
    def sweep(
        scenario: Path = typer.Argument(..., help="scenario YAML, e.g. scenarios/wifi.yaml"),
        out: Path | None = typer.Option(
            None, "--out", help="results file, .csv or .parquet [default: results/<scenario name>.csv]"
        ),
        workers: int = typer.Option(1, "--workers", help="local worker processes (1 = serial)"),
        dask: str | None = typer.Option(
            None, "--dask", help="run on an existing Dask scheduler, e.g. tcp://10.0.0.5:8786"
        ),
        resume: bool = typer.Option(
            False, "--resume", help="keep the finished rows of an interrupted sweep and run only the rest"
        ),
        set_: list[str] | None = typer.Option(None, "--set", help="override a field: key.sub=value"),
        plots: bool = typer.Option(True, "--plots/--no-plots", help="save latency and speedup PNGs beside the results"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
        max_points: int | None = typer.Option(
            None,
            "--max-points",
            help="run grids larger than the default limit (docs/scenarios.md) up to this many points",
        ),
    ) -> None:
        """Simulate every point of a scenario; rows are appended as points finish (resumable) and
        the file is rewritten in grid order at the end (identical whatever the execution mode)."""
        from rich.console import Console
        from rich.table import Table

        from astrasim.fileio import check_output_path
        from astrasim.results import format_ratio
        from astrasim.scenario import load_scenario
        from astrasim.sweep import best_strategies, run_sweep

        sc = load_scenario(scenario, set_ or [])
        target = out or Path("results") / f"{sc.name}.csv"
        stem = target.with_suffix("")
        pictures = [Path(f"{stem}_latency.png"), Path(f"{stem}_speedup.png")] if plots else []
        for png in pictures:
            check_output_path(png, "--out", [scenario])
        df = run_sweep(
            sc,
            out=target,
            workers=workers,
            dask_address=dask,
            resume=resume,
            progress=progress,
            inputs=[scenario],
            **({} if max_points is None else {"max_points": max_points}),
        )
        console = Console(width=None if sys.stdout.isatty() else 140)
        console.print(f"{len(df)} points -> {target}")
        best = best_strategies(df)
        if not best.empty:
            t = Table(title="Best strategy per setting among the points that fit in memory")
            setting = list(best.columns[: list(best.columns).index("best")])
            varying = [
                c
                for c in setting
                if c not in ("model", "devices", "bandwidth_mbps") and best[c].astype(str).nunique() > 1
            ]  # every other input that differs between rows
            for col in ["model", *varying, "N", "Mbps", "best", "latency (s)", "speedup", "comm %", "GB"]:
                t.add_column(col, justify="left" if col in ("model", "best") else "right", no_wrap=True)
            for r in best.itertuples():
                t.add_row(
                    r.model,
                    *(str(getattr(r, c)) for c in varying),
                    str(r.devices),
                    f"{r.bandwidth_mbps:g}",
                    r.best,
                    f"{r.latency_s:.4f}",
                    format_ratio(r.speedup_vs_single),
                    f"{100 * r.comm_fraction:.0f}",
                    "-" if r.memory_gb != r.memory_gb else f"{r.memory_gb:.2f}",
                )
            console.print(t)
        if plots:
            from astrasim.analysis.plots import plot_latency_vs_bandwidth, plot_speedup

            lat = plot_latency_vs_bandwidth(df, str(pictures[0]))
            spd = plot_speedup(df, str(pictures[1]))
            console.print(f"plots: {lat}, {spd}")
