"""`astrasim plan SCENARIO`: the cheapest devices + network + strategy meeting a latency target
and an accuracy floor (capacity planning; astrasim.analysis.planning)."""

from __future__ import annotations

from pathlib import Path

import typer

from astrasim.commands import user_errors


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("plan")
    @user_errors
    def plan(
        scenario: Path = typer.Argument(..., help="plan scenario YAML, e.g. scenarios/plan.yaml"),
        out: Path | None = typer.Option(
            None,
            "--out",
            help="write every configuration (cost, latency, accuracy, energy, feasible, pareto) to this CSV",
        ),
        plot: Path | None = typer.Option(
            None,
            "--plot",
            help="draw latency against cost of every configuration, target line and the chosen one, to this PNG",
        ),
        accuracy: list[Path] | None = typer.Option(
            None, "--accuracy", help="your accuracy table(s); every row must match a simulated configuration"
        ),
        networks: Path | None = typer.Option(
            None, "--networks", help="network catalog [default: profiles/networks.yaml]"
        ),
        top: int = typer.Option(10, "--top", help="feasible configurations to list"),
        workers: int = typer.Option(1, "--workers", help="local worker processes for the simulations"),
        dask: str | None = typer.Option(
            None, "--dask", help="run an inventory plan's simulations on this Dask scheduler (tcp://host:port)"
        ),
        draw: Path | None = typer.Option(
            None,
            "--draw",
            help="inventory plans: draw the chosen placement (devices, what each holds, memory, link) to this PNG",
        ),
        exhaustive: bool = typer.Option(
            False, "--exhaustive", help="inventory plans: simulate every candidate (no pruning)"
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    ) -> None:
        """Rank the feasible configurations by cost (devices x price + network) and print the cheapest,
        the cost/latency/accuracy frontier and, when nothing is feasible, which constraint binds.
        A plan with `inventory:` (the devices you own) instead searches their placement: which of them,
        in what order, split how, with which strategy (docs/placement.md)."""
        from astrasim.analysis.planning import format_report, load_plan, run_plan
        from astrasim.errors import UserError
        from astrasim.executors import check_workers
        from astrasim.fileio import check_output_path, write_csv_atomic

        check_workers(workers)
        from astrasim.fileio import read_yaml_file
        from astrasim.placement.inventory import is_inventory_plan

        if scenario.is_file() and is_inventory_plan(read_yaml_file(scenario, "scenario")):
            from astrasim.placement.commands import run_inventory_plan

            run_inventory_plan(
                scenario,
                out=out,
                plot=plot,
                draw=draw,
                networks=networks,
                top=top,
                workers=workers,
                dask=dask,
                exhaustive=exhaustive,
                progress=progress,
            )
            return
        if dask is not None or draw is not None:
            raise UserError(
                "--dask and --draw apply to plans with an `inventory:`", field="--dask" if dask else "--draw"
            )
        if out is not None or plot is not None:  # the plan reads the catalogs, profiles, accuracy tables of profiles/
            from astrasim.compute.profiles import profiles_dirs

            shipped = [f for d in profiles_dirs() if d.is_dir() for f in d.iterdir()]
            inputs = [scenario, *(accuracy or []), *([networks] if networks else []), *shipped]
            for path, field in ((out, "--out"), (plot, "--plot")):
                if path is not None:
                    check_output_path(path, field, inputs)
        p = load_plan(scenario)
        if accuracy:
            p = p.model_copy(
                update={
                    "accuracy": p.accuracy.model_copy(
                        update={"files": [*p.accuracy.files, *(str(a.resolve()) for a in accuracy)]}
                    )
                }
            )
        result = run_plan(p, workers=workers, progress=progress, networks_path=networks)
        if out is not None:
            write_csv_atomic(out, result.table)
        if plot is not None:
            from astrasim.analysis.pareto_plots import plot_plan

            plot_plan(result, plot)
        print(format_report(result, top=top))
        if out is not None:
            print(f"\nall {len(result.table)} configurations -> {out}")
        if plot is not None:
            print(f"plot -> {plot}")
        if result.cheapest is None:
            raise UserError(
                "no configuration meets every constraint (see above: which binds and by how much)", field="plan"
            )
