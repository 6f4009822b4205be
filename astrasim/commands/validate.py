"""`astrasim validate [SCENARIO]`: check the simulator against real multi-process inference over
bandwidth-shaped links (network namespaces + tc), see docs/validation.md."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from astrasim.commands import user_errors


def _list(text: str | None, cast=str) -> list | None:
    if text is None:
        return None
    from astrasim.errors import UserError

    try:
        return [cast(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"'{text}' is not a comma-separated list of {cast.__name__}", field="option") from None


def _default(name: str) -> str:
    """The frozen protocol's default of one setting, as the option writes it."""
    from astrasim.validation.protocol import DEFAULTS

    value = getattr(DEFAULTS, name)
    return (
        ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        if isinstance(value, list)
        else f"{value:g}"
    )


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("validate")
    @user_errors
    def validate(
        scenario: Path | None = typer.Argument(
            None, help="validation YAML (default: the frozen protocol's grid, which validation/validate.yaml states)"
        ),
        hosts: str | None = typer.Option(None, help=f"host counts N (default {_default('hosts')})"),
        bandwidths: str | None = typer.Option(None, help=f"link rates in Mbps (default {_default('bandwidths')})"),
        strategies: str | None = typer.Option(
            None, help=f"comma-separated strategy labels as the registry writes them (default {_default('strategies')})"
        ),
        topologies: str | None = typer.Option(None, help=f"switch and/or shared (default {_default('topologies')})"),
        repeats: int | None = typer.Option(
            None,
            help=f"at least this many timed passes per point (default "
            f"{_default('repeats')}; more for short passes, up to "
            f"{_default('max_repeats')} within {_default('budget_s')} s)",
        ),
        out: Path = typer.Option(Path("validation"), help="folder for results.csv, summary.md, the plot"),
        check: bool = typer.Option(
            False, "--check", help="exit 1 when the prediction from profiles misses the error target"
        ),
        reuse_measurements: Path | None = typer.Option(
            None,
            help="predict again, with today's simulator, the measurements stored in this folder by an "
            "earlier run (e.g. validation); measures nothing, needs neither root nor torch",
        ),
        trace: Path | None = typer.Option(
            None,
            help="also write every job's raw worker records (each pass's op and message intervals, CPU "
            "time per rank, the co-run rounds) as JSON into this folder, for diagnosis",
        ),
    ) -> None:
        """Build N test hosts in network namespaces joined by tbf-shaped links (a switch, and a
        shared medium), run every strategy's real per-device kernels on them with torch.distributed
        (gloo), and compare the measured latencies with two predictions of the simulator: from
        profiles (kernels timed alone, network, dispatch and message CPU from microbenchmarks
        before the points) and in-situ (kernel costs from co-run rounds around each point's
        passes). Needs root and `ip netns`; elsewhere it says so in one line and exits 2."""
        from astrasim.fileio import check_output_folder

        check_output_folder(out, ("results.csv", "summary.md", "predicted_vs_measured.png"), "--out")  # before any work
        command = "astrasim validate " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        if reuse_measurements is not None:
            from astrasim.validation.campaign import repredict
            from astrasim.validation.report import verdict
            from astrasim.validation.settings import load_settings

            settings = load_settings(
                scenario,
                hosts=_list(hosts, int),
                bandwidths=_list(bandwidths, float),
                strategies=_list(strategies),
                topologies=_list(topologies),
                repeats=repeats,
            )
            _, summary = repredict(
                settings, reuse_measurements, out, command=command.strip(), log=lambda m: print(m, flush=True)
            )
            print(f"wrote {out}/results.csv, {out}/summary.md, {out}/predicted_vs_measured.png")
            if check and not verdict(summary)[0]:
                raise typer.Exit(code=1)
            return
        from astrasim.validation.netns import unavailable_reason

        reason = unavailable_reason()
        if reason:
            print(f"error: {reason}", file=sys.stderr)
            raise typer.Exit(code=2)
        from astrasim.extras import require_kernels

        require_kernels("validate")
        from astrasim.validation.campaign import run_validation
        from astrasim.validation.report import verdict
        from astrasim.validation.settings import load_settings

        settings = load_settings(
            scenario,
            hosts=_list(hosts, int),
            bandwidths=_list(bandwidths, float),
            strategies=_list(strategies),
            topologies=_list(topologies),
            repeats=repeats,
        )
        _, summary = run_validation(
            settings, out, command=command.strip(), log=lambda m: print(m, flush=True), trace_dir=trace
        )
        print(f"wrote {out}/results.csv, {out}/summary.md, {out}/predicted_vs_measured.png")
        ok, _ = verdict(summary)
        if check and not ok:
            raise typer.Exit(code=1)
