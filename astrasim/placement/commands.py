"""What `astrasim plan` (with an inventory) and `astrasim whatif` do between parsing and printing:
check every output path first, search, write, print."""

from __future__ import annotations

from pathlib import Path


def _check_outputs(scenario: Path, networks: Path | None, outputs: dict[str, Path | None]) -> None:
    from astrasim.compute.profiles import profiles_dirs
    from astrasim.fileio import check_output_path

    shipped = [f for d in profiles_dirs() if d.is_dir() for f in d.iterdir()]
    protected = [scenario, *([networks] if networks else []), *shipped]
    for field, path in outputs.items():
        if path is not None:
            check_output_path(path, field, protected)


def _write(result, out: Path | None, plot: Path | None, draw: Path | None) -> list[str]:
    from astrasim.fileio import write_csv_atomic

    lines = []
    if out is not None:
        write_csv_atomic(out, result.table)
        lines.append(f"all {len(result.table)} candidates -> {out}")
    if plot is not None:
        from astrasim.placement.pictures import plot_frontier

        plot_frontier(result, plot)
        lines.append(f"frontier -> {plot}")
    if draw is not None and result.best is not None:
        from astrasim.placement.pictures import draw_placement

        draw_placement(result, draw)
        lines.append(f"placement -> {draw}")
    return lines


def run_inventory_plan(
    scenario: Path,
    *,
    out=None,
    plot=None,
    draw=None,
    networks=None,
    top=8,
    workers=1,
    dask=None,
    exhaustive=False,
    progress=True,
) -> None:
    from astrasim.placement.inventory import load_inventory_plan
    from astrasim.placement.search import format_search, run_search

    _check_outputs(scenario, networks, {"--out": out, "--plot": plot, "--draw": draw})
    plan = load_inventory_plan(scenario)
    result = run_search(
        plan,
        workers=workers,
        dask_address=dask,
        progress=progress,
        exhaustive=True if exhaustive else None,
        networks_path=networks,
    )
    print(format_search(result, top=top))
    for line in _write(result, out, plot, draw):
        print(line)


def run_whatif(
    scenario: Path,
    *,
    add=(),
    remove=(),
    network=(),
    out=None,
    plot=None,
    draw=None,
    networks=None,
    workers=1,
    dask=None,
    progress=True,
) -> None:
    from astrasim.analysis.planning import load_devices, load_networks
    from astrasim.placement.inventory import check_inventory, load_inventory_plan
    from astrasim.placement.search import run_search
    from astrasim.placement.whatif import changed_plan, describe_change, format_whatif, parse_change, reason

    _check_outputs(scenario, networks, {"--out": out, "--plot": plot, "--draw": draw})
    plan = load_inventory_plan(scenario)
    devices, nets = load_devices(), load_networks(networks)
    check_inventory(plan, devices, nets)
    after_plan = changed_plan(plan, devices, list(add), list(remove), list(network))
    for name in after_plan.networks:
        if name not in nets:
            from astrasim.errors import UserError

            raise UserError(f"unknown network '{name}'; profiles/networks.yaml has {sorted(nets)}", field="--network")
    before = run_search(plan, workers=workers, dask_address=dask, progress=progress, networks_path=networks)
    after = run_search(after_plan, workers=workers, dask_address=dask, progress=progress, networks_path=networks)
    line = reason(before, after, describe_change(add, remove, network), [parse_change(a, "--add") for a in add])
    print(format_whatif(before, after, line))
    for text in _write(after, out, plot, draw):
        print(text)
