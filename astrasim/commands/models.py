"""`astrasim models`: the models astrasim knows by name (built-ins and the shipped zoo)."""

from __future__ import annotations

import json

import typer

from astrasim.commands import user_errors


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("models")
    @user_errors
    def models(
        as_json: bool = typer.Option(False, "--json", help="print the rows as JSON instead of a table"),
    ) -> None:
        """List every model a scenario can name: parameters (active per token for MoE), layers, hidden size,
        query / KV heads, context and weight bytes per format. Any other Hugging Face model: give the path
        of its config.json (or its folder) in a scenario's `models:`."""
        from rich.console import Console
        from rich.table import Table

        from astrasim.compute.formats import FORMATS
        from astrasim.models.catalog import LISTED_FORMATS, model_rows

        rows = model_rows()
        if as_json:
            typer.echo(json.dumps(rows, indent=1))
            return
        bits = ", ".join(f"{f} {FORMATS[f].bits:g}" for f in LISTED_FORMATS)
        table = Table(title=f"models (GB = 10^9 bytes of weights; bits per weight: {bits})")
        for col in (
            "model",
            "params",
            "active",
            "layers",
            "hidden",
            "heads/KV",
            "experts",
            "context",
            *(f"{f} GB" for f in LISTED_FORMATS),
            "source",
        ):
            table.add_column(col, justify="left" if col in ("model", "source") else "right")
        for r in rows:
            table.add_row(
                r["name"],
                f"{r['params'] / 1e9:.2f} B",
                f"{r['active_params'] / 1e9:.2f} B" if r["experts"] else "",
                str(r["layers"]),
                str(r["hidden"]),
                f"{r['heads']}/{r['kv_heads']}",
                r["experts"],
                str(r["context"]),
                *(f"{r[f'{f}_gb']:.2f}" for f in LISTED_FORMATS),
                r["source"],
            )
        Console(width=200).print(table)
