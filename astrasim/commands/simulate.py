"""`astrasim simulate SCENARIO`: one point (the first grid point after --set), its breakdown."""

from __future__ import annotations

import sys

import json
from pathlib import Path
from typing import Optional

import typer

from astrasim.commands import user_errors


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("simulate")
    @user_errors
    def simulate(
        scenario: Path = typer.Argument(..., help="scenario YAML, e.g. scenarios/wifi.yaml"),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="override a field: key.sub=value "
                                                 "(value as YAML), e.g. --set strategies=astra "
                                                 "--set network.bandwidth_mbps=20 --set devices=4"),
        trace: Optional[Path] = typer.Option(None, "--trace", help="write a Chrome/Perfetto trace JSON here"),
        as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    ) -> None:
        """Simulate one point of a scenario and print its latency breakdown (compute, exposed
        communication, idle per device) and the bits sent."""
        from astrasim.scenario import load_scenario
        from astrasim.pointrun import result_row, run_point

        sc = load_scenario(scenario, set_ or [])
        point = sc.points()[0]
        if point.workload.is_stream:  # a request stream: its row (astrasim.streams), no per-device table
            from astrasim.pointrun import stream_row

            print(json.dumps(stream_row(point), indent=2))
            return
        result, graph = run_point(point, record_timeline=trace is not None)
        row = result_row(point, result)
        if trace is not None:
            result.write_chrome_trace(trace)
        per_device = [{"device": d, "compute_s": c, "exposed_comm_s": e, "idle_s": i}
                      for d, (c, e, i) in enumerate(zip(result.compute_s, result.exposed_comm_s, result.idle_s))]
        if as_json:
            print(json.dumps({**row, "per_device": per_device, "link_bits": result.link_bits,
                              "ops": len(graph.ops)}, indent=2, sort_keys=False))
            return
        _print_table(row, per_device, result, trace)


def _print_table(row: dict, per_device: list[dict], result, trace) -> None:
    from rich.console import Console
    from rich.table import Table

    from astrasim.strategies import label_of

    label = label_of(row)
    title = (f"{row['model']} (T={row['tokens']}), {label} on {row['devices']} x {row['hardware']}, "
             f"{row['network']} {row['bandwidth_mbps']:g} Mbps")
    t = Table(title=title)
    for col in ("device", "compute (s)", "exposed comm (s)", "idle (s)", "busy %"):
        t.add_column(col, justify="right")
    lat = row["latency_s"]
    for d in per_device:
        t.add_row(str(d["device"]), f"{d['compute_s']:.4f}", f"{d['exposed_comm_s']:.4f}", f"{d['idle_s']:.4f}",
                  f"{100 * d['compute_s'] / lat:.0f}" if lat > 0 else "-")
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(t)
    console.print(f"latency          {lat:.4f} s")
    console.print(f"one device       {row['single_latency_s']:.4f} s  (speedup {row['speedup_vs_single']:.2f}x)")
    console.print(f"exposed comm     {100 * row['comm_fraction']:.1f} % of latency (mean over devices)")
    console.print(f"bits sent        {row['comm_bits'] / 1e6:.3f} Mbit in {row['n_messages']} messages")
    if trace is not None:
        console.print(f"trace written to {trace} (open in ui.perfetto.dev)")
