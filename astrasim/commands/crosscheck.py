"""`astrasim crosscheck`: the Wi-Fi and switch models against ns-3 (packet level), see docs/network.md."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from astrasim.commands import user_errors


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("crosscheck")
    @user_errors
    def crosscheck(
        out: Path = typer.Option(Path("validation/ns3"), help="folder for results.csv, summary.md, the plot"),
        quick: bool = typer.Option(False, "--quick", help="a 20-point grid (about a minute) instead of the full one"),
        seeds: int | None = typer.Option(None, help="ns-3 seeds per point (default 3; quick: 2)"),
        workers: int = typer.Option(2, help="ns-3 runs at a time"),
        reuse_runs: Path | None = typer.Option(
            None,
            help="predict again from an earlier runs.csv (same grid) "
            "instead of running ns-3: re-checks a model change in seconds",
        ),
        check: bool = typer.Option(False, "--check", help="exit 1 when the error target is missed"),
    ) -> None:
        """Run the collectives astrasim decomposes (p2p, ring and direct all-gather and all-reduce)
        in ns-3 3.44 over an 802.11n/ac BSS (N stations and an AP, fixed MCS) and a wired switch,
        with several seeds, and compare with astrasim's predictions on the matching presets.
        Needs the optional `ns3` wheel (pip install 'astrasim[crosscheck]') and g++."""
        import dataclasses

        from astrasim.crosscheck.build import unavailable_reason
        from astrasim.crosscheck.campaign import OUTPUT_FILES, QUICK, Grid, run_crosscheck, verdict
        from astrasim.errors import UserError
        from astrasim.fileio import check_output_folder

        check_output_folder(out, OUTPUT_FILES, "--out")  # runs.csv may be --reuse-runs itself: rewritten whole
        reason = None if reuse_runs is not None else unavailable_reason()
        if reason:
            print(f"error: {reason}", file=sys.stderr)
            raise typer.Exit(code=2)
        if workers < 1:
            raise UserError("must be >= 1", field="workers")
        if seeds is not None and seeds < 1:
            raise UserError("must be >= 1", field="seeds")
        grid = dataclasses.replace(QUICK if quick else Grid(), workers=workers)
        if seeds is not None:
            grid = dataclasses.replace(grid, seeds=tuple(range(1, seeds + 1)))
        command = ("astrasim crosscheck " + " ".join(shlex.quote(a) for a in sys.argv[2:])).strip()
        _, summary = run_crosscheck(
            grid, out, command=command, reuse_runs=reuse_runs, log=lambda m: print(m, flush=True)
        )
        print(f"wrote {out}/results.csv, {out}/summary.md, {out}/predicted_vs_measured.png")
        if check and not verdict(summary)[0]:
            raise typer.Exit(code=1)
