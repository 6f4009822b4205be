"""`astrasim whatif PLAN --add DEVICE[=COUNT] --remove DEVICE[=COUNT] --network NAME`: will another
device (or another network) help? The best placement of an inventory plan before and after, the
change of each metric and the reason (astrasim.placement.whatif)."""

from __future__ import annotations

from pathlib import Path

import typer

from astrasim.commands import user_errors


def register(app: typer.Typer) -> None:
    @app.command("whatif")
    @user_errors
    def whatif(
        scenario: Path = typer.Argument(..., help="plan with an `inventory:`, e.g. scenarios/inventory_gpt2.yaml"),
        add: list[str] | None = typer.Option(None, "--add", help="DEVICE[=COUNT] to add (catalog name)"),
        remove: list[str] | None = typer.Option(None, "--remove", help="DEVICE[=COUNT] to remove"),
        network: list[str] | None = typer.Option(
            None, "--network", help="network(s) to use instead (profiles/networks.yaml names)"
        ),
        out: Path | None = typer.Option(None, "--out", help="write the candidates after the change to this CSV"),
        plot: Path | None = typer.Option(None, "--plot", help="frontier after the change, to this PNG"),
        draw: Path | None = typer.Option(None, "--draw", help="the best placement after the change, to this PNG"),
        networks: Path | None = typer.Option(
            None, "--networks", help="network catalog [default: profiles/networks.yaml]"
        ),
        workers: int = typer.Option(1, "--workers", help="local worker processes for the simulations"),
        dask: str | None = typer.Option(None, "--dask", help="run the simulations on this Dask scheduler"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    ) -> None:
        """Best placement before and after the change, each metric's change, and why in one line."""
        from astrasim.executors import check_workers
        from astrasim.placement.commands import run_whatif

        check_workers(workers)
        run_whatif(
            scenario,
            add=add or [],
            remove=remove or [],
            network=network or [],
            out=out,
            plot=plot,
            draw=draw,
            networks=networks,
            workers=workers,
            dask=dask,
            progress=progress,
        )
