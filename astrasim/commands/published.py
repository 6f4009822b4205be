"""`astrasim published [TABLE]`: re-predict measurements that others published (distributed-llama,
Ollama, llama.cpp, MLC, TinyChat on Raspberry Pi and Jetson boards) and report the error per row
and against the targets; see astrasim/published.py and validation/published/README.md."""

from __future__ import annotations

from pathlib import Path

import typer

from astrasim.commands import user_errors


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("published")
    @user_errors
    def published(
        table: Path | None = typer.Argument(
            None, help="measurements CSV (default: the shipped validation/published/measurements.csv)"
        ),
        out: Path = typer.Option(
            Path("validation/published"), help="folder for predictions.csv and predicted_vs_published.png"
        ),
        check: bool = typer.Option(False, "--check", help="exit 1 when a target is missed or a row is skipped"),
    ) -> None:
        """Simulate every published measurement (one device: `single`; a cluster: `tp` with its
        runtime's collective over its link) with the shipped device catalog, print predicted vs
        published per row, the median and max |error| of single- and multi-device rows against
        the targets, and write the predictions and a log-log plot. Published rows are never
        calibration inputs."""
        from rich.console import Console
        from rich.table import Table

        from astrasim import published as pub
        from astrasim.fileio import write_csv_atomic

        rows = pub.load_table(table if table is not None else pub.DEFAULT_TABLE)
        csv_path, png_path = pub.check_out(out)
        console = Console(width=max(Console().width, 160))  # ids and figures unabridged when piped
        with console.status(f"simulating {len(rows)} published measurements"):
            predictions = pub.predict_all(rows)
        grid = Table(show_lines=False, header_style="bold")
        for col, just in (
            ("id", "left"),
            ("device", "left"),
            ("N", "right"),
            ("model", "left"),
            ("format", "left"),
            ("metric", "left"),
            ("published", "right"),
            ("astrasim", "right"),
            ("error", "right"),
        ):
            grid.add_column(col, justify=just)
        for p in predictions:
            r = p.row
            grid.add_row(
                r.id,
                r.device,
                str(r.count),
                r.model,
                r.astrasim_format,
                r.metric,
                f"{r.value:g}",
                "skipped" if p.skipped else f"{p.predicted_value:.4g}",
                pub.fmt_error(p.error),
            )
        console.print(grid)
        skipped = [p for p in predictions if p.skipped]
        for p in skipped:
            console.print(f"skipped {p.row.id}: {p.skipped}", highlight=False, soft_wrap=True)
        summary = pub.summarize(predictions)
        for group in summary.values():
            print(group.line())
        print(f"{len(predictions) - len(skipped)} of {len(predictions)} rows predicted, {len(skipped)} skipped")
        write_csv_atomic(csv_path, pub.frame(predictions))
        wrote = pub.plot(predictions, png_path)
        print(f"wrote {csv_path}" + (f" and {png_path}" if wrote else " (no plot: no row predicted)"))
        if check and (skipped or not all(g.met for g in summary.values())):
            raise typer.Exit(code=1)
