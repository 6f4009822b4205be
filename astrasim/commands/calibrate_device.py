"""`astrasim calibrate-device NAME`: measure this machine's sustained figures (memory read bandwidth,
matmul per precision, dispatch, message cost) and write them as catalog entry NAME
(astrasim/compute/calibrate_device.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from astrasim.commands import user_errors


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("calibrate-device")
    @user_errors
    def calibrate_device(
        name: str = typer.Argument(..., help="catalog name of this machine, e.g. cpu or my-pi-5"),
        catalog: Path | None = typer.Option(None, help="catalog to update (default: profiles/devices.yaml)"),
        threads: int | None = typer.Option(None, help="torch threads (default: torch's, usually all cores)"),
        repeats: int = typer.Option(10, help="timed calls per throughput microbenchmark (best is kept)"),
        price_usd: float | None = typer.Option(None, help="list price (needed for a new entry)"),
        idle_power_w: float | None = typer.Option(None, help="idle power, W (needed for a new entry)"),
        active_power_w: float | None = typer.Option(None, help="power under load, W (needed for a new entry)"),
    ) -> None:
        """Run the device microbenchmarks here (1-2 minutes) and write catalog entry NAME atomically:
        an existing entry keeps its datasheet figures, memory, power and price."""
        import re

        import yaml

        from astrasim.compute import calibrate_device as cd
        from astrasim.compute.catalog import CatalogDevice, catalog_path, load_catalog
        from astrasim.errors import UserError
        from astrasim.fileio import write_text_atomic

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise UserError(f"'{name}' is not a catalog name (letters, digits, '.', '_', '-')", field="NAME")
        path = catalog or catalog_path()
        cd.writable_catalog(path)
        text = path.read_text() if path.exists() else "devices:\n"
        old = None
        if path.exists():
            load_catalog(path)  # a malformed catalog is refused before measuring
            raw = yaml.safe_load(text) or {}
            old = next((e for e in raw.get("devices") or [] if isinstance(e, dict) and e.get("name") == name), None)
        cd.check_new_entry(name, old is not None, price_usd, idle_power_w, active_power_w)
        if threads is not None:
            if threads < 1:
                raise UserError(f"{threads} threads; give at least 1", field="--threads")
            import torch

            torch.set_num_threads(threads)
        entry = cd.entry_for(name, cd.measure(repeats=repeats), old, price_usd, idle_power_w, active_power_w)
        try:
            CatalogDevice(**entry)
        except Exception as exc:  # pydantic ValidationError: the measured entry is not a valid one
            raise UserError(
                f"the measured entry is not valid ({str(exc).splitlines()[0]}); nothing written",
                field=f"devices[{name}]",
            ) from None
        write_text_atomic(path, cd.replace_entry(text, name, entry))
        print(f"wrote {name} to {path}")
