"""`astrasim simulate SCENARIO`: one point (the first grid point after --set), its breakdown."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from astrasim.commands import user_errors


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("simulate")
    @user_errors
    def simulate(
        scenario: Path = typer.Argument(..., help="scenario YAML, e.g. scenarios/wifi.yaml"),
        set_: list[str] | None = typer.Option(
            None,
            "--set",
            help="override a field: key.sub=value "
            "(value as YAML), e.g. --set strategies=astra "
            "--set network.bandwidth_mbps=20 --set devices=4",
        ),
        trace: Path | None = typer.Option(None, "--trace", help="write a Chrome/Perfetto trace JSON here"),
        as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    ) -> None:
        """Simulate one point of a scenario and print its latency breakdown (compute, exposed
        communication, idle per device) and the bits sent."""
        from astrasim.fileio import check_output_path
        from astrasim.pointrun import result_row, run_point
        from astrasim.results import InputDigests
        from astrasim.scenario import load_scenario
        from astrasim.scenario.grid import iter_points

        sc = load_scenario(scenario, set_ or [])
        point = next(iter_points(sc))
        if trace is not None:
            check_output_path(trace, "--trace", [scenario, *InputDigests().files_of(point)])
        if point.workload.is_stream:  # a request stream: its row (astrasim.streams), no per-device table
            from astrasim.pointrun import stream_row

            print(json.dumps(stream_row(point), indent=2))
            return
        result, graph = run_point(point, record_timeline=trace is not None)
        row = result_row(point, result, graph=graph)
        if trace is not None:
            result.write_chrome_trace(trace)
        per_device = [
            {"device": d, "compute_s": c, "exposed_comm_s": e, "idle_s": i}
            for d, (c, e, i) in enumerate(zip(result.compute_s, result.exposed_comm_s, result.idle_s))
        ]
        _add_memory(point, per_device)
        if as_json:
            print(
                json.dumps(
                    {**row, "per_device": per_device, "link_bits": result.link_bits, "ops": len(graph.ops)},
                    indent=2,
                    sort_keys=False,
                )
            )
            return
        _print_table(row, per_device, result, trace, point)


def _add_memory(point, per_device: list[dict]) -> None:
    """Each device's hardware and footprint (GB): weights, codebooks, KV cache, activations, total."""
    from astrasim.compute.hardware import GB, hardware_of
    from astrasim.scenario.fleet import point_memory

    use = point_memory(point)
    for d, m in zip(per_device, use):
        d["hardware"] = hardware_of(point, d["device"]) or point.hardware
        d["memory_gb"] = {
            "weights": m.weights / GB,
            "codebooks": m.codebooks / GB,
            "kv_cache": m.kv_cache / GB,
            "activations": m.activations / GB,
            "total": m.total / GB,
        }


def _print_table(row: dict, per_device: list[dict], result, trace, point) -> None:
    from rich.console import Console
    from rich.table import Table

    from astrasim.results import format_ratio
    from astrasim.scenario.fleet import memory_check
    from astrasim.strategies import label_of

    label = label_of(row)
    title = (
        f"{row['model']} (T={row['tokens']}), {label} on {row['devices']} x {row['hardware']}, "
        f"{row['network']} {row['bandwidth_mbps']:g} Mbps"
    )
    t = Table(title=title)
    for col in ("device", "hardware", "compute (s)", "exposed comm (s)", "idle (s)", "busy %", "memory (GB)"):
        t.add_column(col, justify="right")
    lat = row["latency_s"]
    for d in per_device:
        m = d["memory_gb"]
        t.add_row(
            str(d["device"]),
            d["hardware"],
            f"{d['compute_s']:.4f}",
            f"{d['exposed_comm_s']:.4f}",
            f"{d['idle_s']:.4f}",
            f"{100 * d['compute_s'] / lat:.0f}" if lat > 0 else "-",
            f"{m['total']:.3f}",
        )
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(t)
    console.print(f"latency          {lat:.4f} s")
    console.print(f"compute source   {row['compute_source']} ({row['weight_format']} weights)")
    console.print(
        f"one device       {row['single_latency_s']:.4f} s  (speedup {format_ratio(row['speedup_vs_single'])})"
    )
    console.print(f"exposed comm     {100 * row['comm_fraction']:.1f} % of latency (mean over devices)")
    console.print(f"bits sent        {row['comm_bits'] / 1e6:.3f} Mbit in {row['n_messages']} messages")
    m = per_device[0]["memory_gb"]
    console.print(
        f"memory           {row['memory_gb']:.3f} GB on the fullest device (device 0: weights "
        f"{m['weights']:.3f}, codebooks {m['codebooks']:.3f}, KV cache {m['kv_cache']:.3f}, activations "
        f"{m['activations']:.3f} GB; {row['weight_format']} weights)"
    )
    limit = row["memory_limit_gb"]
    console.print(
        "fits             "
        + ("yes" if row["fits"] else f"NO: {memory_check(point).reason()}")
        + (f" (tightest device has {limit:g} GB)" if limit is not None else " (device memory unknown)")
    )
    if row.get("e2e_s") is not None:  # generation (output_tokens > 0)
        tpot = row["tpot_s"]
        console.print(
            f"generation       {row['output_tokens']} tokens: ttft {row['ttft_s']:.4f} s, tpot "
            + (f"{tpot:.4f} s" if tpot is not None else "-")
            + f", e2e {row['e2e_s']:.4f} s"
        )
    if row.get("energy_j") is not None:  # astrasim.placement.energy
        console.print(
            f"energy           {row['energy_j']:.4g} J ({row['energy_per_token_j']:.4g} J per token, "
            f"{row['avg_power_w']:.3g} W on average)"
        )
    if trace is not None:
        console.print(f"trace written to {trace} (open in ui.perfetto.dev)")
