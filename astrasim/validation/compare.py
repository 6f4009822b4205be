"""The validation campaign: measure real multi-process inference over shaped links, predict the
same points with the simulator, and compare.

Steps (`run_validation`):

1. calibrate alpha and efficiency per topology with the point-to-point microbenchmark
   (`calibrate.py`; never the validation points);
2. measure: for each topology and N, build N shaped hosts (`netns.py`), and at each bandwidth run
   every strategy's real forward pass on every host (`worker.py`, `programs.py`); latency = the
   median over repeats of (last rank's end - common start). Right before and after a strategy's
   passes every host profiles that strategy's kernels on the spot with the shipped profiler
   (`astrasim.profiling.profile_ops`): all hosts at once, so the profile sees the same machine,
   load and core sharing (N hosts on fewer cores) as the passes;
3. predict: the op graph from `astrasim.strategies.build_graph` (costs = the on-the-spot profile),
   the network from `astrasim.network.build_topology` with the calibrated alpha / efficiency
   (switch -> kind "switch", shared medium -> kind "wifi-adhoc": one half-duplex channel that a
   message crosses once), run by `astrasim.engine.simulate`;
4. write results.csv (one row per point), summary.csv / summary.md (median and max absolute
   error per strategy, per topology, overall), calibration.csv, profile.csv and a
   predicted-vs-measured plot.

error = predicted / measured - 1 (positive: the simulator is slower than reality).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from astrasim.fileio import atomic_path, write_text_atomic
from astrasim.models import ModelSpec
from astrasim.validation.calibrate import SIM_KIND, Calibration, calibrate
from astrasim.validation.launch import run_job
from astrasim.validation.netns import TOPOLOGIES, machine_lock, testbed
from astrasim.validation.programs import DEFAULT_VARIANTS, VALIDATION_MODEL, Variant

TARGET_MEDIAN, TARGET_MAX = 0.05, 0.15


@dataclass
class Settings:
    """One validation campaign (defaults: the full grid published in docs/validation.md)."""

    hosts: list[int] = field(default_factory=lambda: [2, 4])
    bandwidths: list[float] = field(default_factory=lambda: [10.0, 20.0, 50.0, 100.0])
    topologies: list[str] = field(default_factory=lambda: list(TOPOLOGIES))
    strategies: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    repeats: int = 3
    warmup: int = 1
    budget_s: float = 1.5
    max_repeats: int = 20
    calibration_repeats: int = 5
    profile_repeats: int = 5
    model: ModelSpec = VALIDATION_MODEL
    seed: int = 0

    def check(self) -> None:
        from astrasim.errors import UserError

        if not self.hosts or any(n < 2 or n > 16 for n in self.hosts):
            raise UserError("every host count must be in 2..16", field="hosts")
        if not self.bandwidths or any(b <= 0 or b > 10000 for b in self.bandwidths):
            raise UserError("bandwidths must be in (0, 10000] Mbps", field="bandwidths")
        bad = [t for t in self.topologies if t not in TOPOLOGIES]
        if bad or not self.topologies:
            raise UserError(f"unknown topology {bad}; use {', '.join(TOPOLOGIES)}", field="topologies")
        for s in self.strategies:
            try:
                Variant.parse(s)
            except ValueError as exc:
                raise UserError(str(exc), field="strategies") from None
        if self.repeats < 1 or self.warmup < 0:
            raise UserError("repeats must be >= 1 and warmup >= 0", field="repeats")


SETTINGS_KEYS = ("hosts", "bandwidths", "topologies", "strategies", "repeats", "warmup", "budget_s", "max_repeats",
                 "calibration_repeats",
                 "profile_repeats", "model", "seed")


def load_settings(path: str | Path | None = None, **overrides) -> Settings:
    """Settings from an optional YAML file (keys: SETTINGS_KEYS; `model` a mapping of ModelSpec
    fields), then the non-None keyword overrides (the CLI options)."""
    from astrasim.errors import UserError
    from astrasim.models import model_from_dict

    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"file '{p}' not found; give a validation YAML such as validation/validate.yaml",
                            field="scenario")
        from astrasim.fileio import read_yaml_file

        data = read_yaml_file(p, "scenario") or {}
        if not isinstance(data, dict):
            raise UserError("a validation scenario must be a mapping", field="scenario")
        data = data.get("validate", data)
        unknown = set(data) - set(SETTINGS_KEYS)
        if unknown:
            raise UserError(f"unknown key(s) {sorted(unknown)}; allowed: {', '.join(SETTINGS_KEYS)}", field="scenario")
    data.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(data.get("model"), dict):
        data["model"] = model_from_dict({"name": "val-custom", **data["model"]})
    try:
        settings = Settings(**data)
    except TypeError as exc:
        raise UserError(str(exc), field="scenario") from None
    settings.hosts = [int(h) for h in settings.hosts]
    settings.bandwidths = [float(b) for b in settings.bandwidths]
    settings.check()
    return settings


def _median_latency(records: list[list[dict]]) -> tuple[float, float, float, float]:
    """records[rank][repeat] -> (median, min, max of the slowest-rank latency, max late start)."""
    reps = len(records[0])
    lat = [max(r[k]["end"] for r in records) - records[0][k]["start"] for k in range(reps)]
    late = max(r[k]["late_s"] for r in records for k in range(reps))
    return statistics.median(lat), min(lat), max(lat), late


def _loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def measure(settings: Settings, log=print) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real latencies of every (topology, N, bandwidth, strategy) point (plus single once) and
    their on-the-spot profiles. Every worker profiles each strategy's ops with the shipped profiler
    right before and right after timing its passes, all hosts at once (programs.profile_variant):
    the profile sees the same machine, load and sharing of cores as the passes it predicts.
    Rows carry a `point` id that links them to their profile rows."""
    from astrasim.network.topology import DEFAULTS

    spec = settings.model
    variants = [v for v in settings.strategies if Variant.parse(v).strategy != "single"]
    rows, profiles = [], []
    job = {"mode": "strategies", "model": dataclasses.asdict(spec), "warmup": settings.warmup,
           "repeats": settings.repeats, "budget_s": settings.budget_s, "max_repeats": settings.max_repeats,
           "seed": settings.seed, "profile": {"repeats": settings.profile_repeats, "warmup": 1}}

    def record(res: list[dict], names: list[str], base: dict) -> list[str]:
        parts = []
        for v in names:
            point = len(rows)
            recs = [r["result"][v]["passes"] for r in res]
            med, lo, hi, late = _median_latency(recs)
            compute = statistics.median(max(r[k]["compute_s"] for r in recs) for k in range(len(recs[0])))
            ops: dict[str, list[float]] = {}
            for r in recs:  # per rank: median over passes; then the mean over ranks
                for op in r[0]["ops"]:
                    ops.setdefault(op, []).append(statistics.median(p["ops"][op] for p in r))
            in_situ = {op: sum(v) / len(v) for op, v in ops.items()}
            rows.append({**base, "strategy": v, "measured_s": med, "measured_min_s": lo, "measured_max_s": hi,
                         "measured_compute_s": compute, "in_situ_ops": json.dumps(in_situ, sort_keys=True),
                         "repeats": len(recs[0]), "late_start_s": late, "loadavg_1m": _loadavg(), "point": point})
            for rank, r in enumerate(res):
                profiles.append(pd.DataFrame(r["result"][v]["profile"]).assign(point=point, rank=rank))
            parts.append(f"{v} {med * 1e3:.0f}")
        return parts

    if len(variants) < len(settings.strategies):
        with testbed(1, settings.topologies[0], settings.bandwidths[0]) as bed:  # type: ignore[arg-type]
            res = run_job(bed, {**job, "variants": ["single"], "algorithm": "direct"})
        parts = record(res, ["single"], {"topology": "none", "hosts": 1, "bandwidth_mbps": float("nan")})
        log(f"  measured {parts[0]} ms")
    for topo in settings.topologies if variants else []:
        algorithm = DEFAULTS[SIM_KIND[topo]]["default_algorithm"]  # what "auto" means in the simulator
        for n in settings.hosts:
            with testbed(n, topo, settings.bandwidths[0]) as bed:  # type: ignore[arg-type]
                for bw in settings.bandwidths:
                    bed.set_bandwidth(bw)
                    t0 = time.monotonic()
                    res = run_job(bed, {**job, "variants": variants, "algorithm": algorithm}, timeout_s=900)
                    parts = record(res, variants, {"topology": topo, "hosts": n, "bandwidth_mbps": bw})
                    log(f"  measured {topo:6s} N={n} {bw:g} Mbps ({time.monotonic() - t0:.0f} s): "
                        + ", ".join(parts) + " ms")
    return pd.DataFrame(rows), pd.concat(profiles, ignore_index=True)


def point_profile(profile: pd.DataFrame, point: int) -> pd.DataFrame:
    """One point's profile table: per op, the mean over ranks and over the before / after runs."""
    t = profile[profile["point"] == point]
    keys = ["model", "strategy", "devices", "groups", "codebook", "tokens", "op"]
    agg = t.groupby(keys, as_index=False, sort=False).agg(
        median_s=("median_s", "mean"), p10_s=("p10_s", "mean"), p90_s=("p90_s", "mean"),
        repeats=("repeats", "sum"), flops=("flops", "first"), bytes=("bytes", "first"),
        hardware=("hardware", "first"), threads=("threads", "first"), dtype=("dtype", "first"),
        torch_version=("torch_version", "first"))
    return agg


def predict(measured: pd.DataFrame, profile: pd.DataFrame, cals: dict[str, Calibration],
            settings: Settings) -> pd.DataFrame:
    """Add the simulator's prediction to every measured row (costs: the row's own profile)."""
    from astrasim.engine import simulate
    from astrasim.network.topology import build_topology
    from astrasim.strategies import build_graph, get
    from astrasim.strategies.costs import ProfileCosts

    spec = settings.model
    out = []
    for row in measured.to_dict("records"):
        v = Variant.parse(row["strategy"])
        n = int(row["hosts"])
        opts = {k: getattr(v, k) for k in get(v.strategy).Knobs.model_fields}
        costs = ProfileCosts(point_profile(profile, row["point"]), source=f"on-the-spot profile, point {row['point']}")
        graph = build_graph(v.strategy, spec, costs, n, spec.tokens, opts)
        if row["topology"] == "none":
            topo = build_topology("ideal", n, 1.0)
            cal = None
        else:
            cal = cals[row["topology"]]
            topo = build_topology(SIM_KIND[row["topology"]], n, float(row["bandwidth_mbps"]),
                                  latency_s=cal.alpha_s, efficiency=cal.efficiency)
        res = simulate(graph, topo)
        pred = res.latency_s
        # diagnostic: the same graph with the op times measured inside the real passes (what the
        # network + engine model gives when the compute is known exactly; not the validation)
        table = point_profile(profile, row["point"])
        in_situ = json.loads(row["in_situ_ops"])
        table["median_s"] = [in_situ.get(op, t) for op, t in zip(table["op"], table["median_s"])]
        g2 = build_graph(v.strategy, spec, ProfileCosts(table, source="in-situ op times"), n, spec.tokens, opts)
        pred2 = simulate(g2, topo).latency_s
        out.append({**row, "predicted_s": pred, "error": pred / row["measured_s"] - 1.0,
                    "abs_error": abs(pred / row["measured_s"] - 1.0),
                    "predicted_in_situ_s": pred2, "error_in_situ": pred2 / row["measured_s"] - 1.0,
                    "predicted_compute_s": max(res.compute_s), "comm_bits": res.comm_bits,
                    "n_messages": res.n_messages, "alpha_s": cal.alpha_s if cal else 0.0,
                    "efficiency": cal.efficiency if cal else 1.0})
    return pd.DataFrame(out)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Median and max absolute error per strategy, per topology, per N and overall (and the same for
    the diagnostic prediction from in-situ op times, when present)."""
    diag = "error_in_situ" in results.columns

    def row(by: str, key: str, grp: pd.DataFrame) -> dict:
        r = {"group": by, "value": key, "points": len(grp), "median_abs_error": grp["abs_error"].median(),
             "max_abs_error": grp["abs_error"].max(), "mean_error": grp["error"].mean()}
        if diag:
            e = grp["error_in_situ"].abs()
            r.update(median_abs_error_in_situ=e.median(), max_abs_error_in_situ=e.max())
        return r

    rows = [row(by, str(key), grp) for by in ("strategy", "topology", "hosts")
            for key, grp in results.groupby(by, sort=False)]
    # The simulator gives every device its own processor; with more hosts than CPUs the testbed does
    # not (docs/validation.md), so the points where each host had a core of its own are also shown.
    cpus = os.cpu_count() or 1
    own = results[results["hosts"] <= cpus]
    if 0 < len(own) < len(results):
        rows.append(row("cores", f"a core per host (N <= {cpus})", own))
        rows.append(row("cores", f"hosts share cores (N > {cpus})", results[results["hosts"] > cpus]))
    rows.append(row("all", "all", results))
    return pd.DataFrame(rows)


def verdict(summary: pd.DataFrame) -> tuple[bool, str]:
    """Whether the overall errors meet the target, in one line."""
    allrow = summary[summary["group"] == "all"].iloc[0]
    med, mx, pts = allrow["median_abs_error"], allrow["max_abs_error"], int(allrow["points"])
    ok = med <= TARGET_MEDIAN and mx <= TARGET_MAX
    return ok, (f"{pts} points: median |error| {med:.1%} (target <= {TARGET_MEDIAN:.0%}), "
                f"max |error| {mx:.1%} (target <= {TARGET_MAX:.0%}): {'MET' if ok else 'MISSED'}")


def summary_markdown(results: pd.DataFrame, summary: pd.DataFrame, cals: dict[str, Calibration],
                     settings: Settings, command: str, elapsed_s: float) -> str:
    ok, line = verdict(summary)
    lines = [f"# Validation summary", "", f"Command: `{command}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; "
             f"wall time {elapsed_s:.0f} s.", "",
             f"Model: {settings.model.name} (layers={settings.model.layers}, hidden={settings.model.hidden}, "
             f"heads={settings.model.heads}, mlp={settings.model.mlp_hidden}, tokens={settings.model.tokens}); "
             f"Per point: {settings.warmup} warm-up pass, then at least {settings.repeats} timed passes (up to "
             f"{settings.max_repeats} within {settings.budget_s:g} s); latency = median over passes of the slowest "
             f"rank's end minus the common start. 1-minute load average during the measurements: "
             f"{results['loadavg_1m'].min():.2f} to {results['loadavg_1m'].max():.2f} on {os.cpu_count()} CPUs.", "",
             f"**{line}**", "",
             "Calibration (point-to-point microbenchmark: 2 hosts exchanging one message each way, gloo):", ""]
    for c in cals.values():
        lines.append(f"- {c.topology}: alpha = {c.alpha_s * 1e3:.2f} ms, efficiency = {c.efficiency:.4f} "
                     f"(max residual {c.max_rel_residual:.1%} over {c.points} transfers)")
    diag = "median_abs_error_in_situ" in summary.columns
    lines += ["", "| group | value | points | median abs error | max abs error | mean error |"
              + (" median / max abs error, in-situ op times |" if diag else ""),
              "|---|---|---|---|---|---|" + ("---|" if diag else "")]
    for r in summary.to_dict("records"):
        lines.append(f"| {r['group']} | {r['value']} | {r['points']} | {r['median_abs_error']:.1%} | "
                     f"{r['max_abs_error']:.1%} | {r['mean_error']:+.1%} |"
                     + (f" {r['median_abs_error_in_situ']:.1%} / {r['max_abs_error_in_situ']:.1%} |" if diag else ""))
    lines += ["", "Per point (compute = kernel time of the slowest rank per pass, median: measured in the real passes "
              "vs the simulator's busiest device):", "",
              "| topology | N | Mbps | strategy | measured ms | predicted ms | error | compute measured ms | "
              "compute predicted ms | passes | predicted from in-situ op times ms | error |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results.to_dict("records"):
        bw = "-" if pd.isna(r["bandwidth_mbps"]) else f"{r['bandwidth_mbps']:g}"
        lines.append(f"| {r['topology']} | {r['hosts']} | {bw} | {r['strategy']} | {r['measured_s'] * 1e3:.1f} | "
                     f"{r['predicted_s'] * 1e3:.1f} | {r['error']:+.1%} | {r['measured_compute_s'] * 1e3:.1f} | "
                     f"{r['predicted_compute_s'] * 1e3:.1f} | {r['repeats']} | "
                     f"{r.get('predicted_in_situ_s', float('nan')) * 1e3:.1f} | {r.get('error_in_situ', float('nan')):+.1%} |")
    return "\n".join(lines) + "\n"


def plot(results: pd.DataFrame, path: Path) -> None:
    """Predicted vs measured (log-log), y = x and the +-15 % band; colour = the strategy's registry
    colour (shaded per variant, astrasim.analysis.style), marker = topology."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astrasim.analysis.style import Looks, number, plain_axis

    variants = {s: Variant.parse(s) for s in dict.fromkeys(results["strategy"])}
    frame = pd.DataFrame([dataclasses.asdict(v) for v in variants.values()])  # strategy + knob columns
    looks = Looks(frame, pd.Series(list(variants), index=frame.index))
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    markers = {"switch": "o", "shared": "s", "none": "*"}
    for s in looks:
        for topo, mk in markers.items():
            sub = results[(results["strategy"] == s) & (results["topology"] == topo)]
            if len(sub):
                ax.scatter(sub["measured_s"] * 1e3, sub["predicted_s"] * 1e3, marker=mk, color=looks[s].color,
                           s=60 if topo == "none" else 30, alpha=0.85, label=f"{s} / {topo}")
    lo = min(results["measured_s"].min(), results["predicted_s"].min()) * 1e3 / 1.3
    hi = max(results["measured_s"].max(), results["predicted_s"].max()) * 1e3 * 1.3
    xs = [lo, hi]
    ax.plot(xs, xs, color="black", lw=1)
    ax.plot(xs, [x * 1.15 for x in xs], color="grey", lw=0.8, ls="--")
    ax.plot(xs, [x / 1.15 for x in xs], color="grey", lw=0.8, ls="--", label="+-15 %")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency per forward pass (ms)")
    ax.set_ylabel("simulated latency (ms)")
    ax.set_title("astrasim vs real gloo runs over tbf-shaped links")
    plain_axis(ax, "x", number)
    plain_axis(ax, "y", number)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def run_validation(settings: Settings, out_dir: str | Path | None = "validation", *, command: str = "",
                   log=print) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole campaign; writes the files into `out_dir` (None: write nothing). Returns
    (results, summary)."""
    settings.check()
    with machine_lock(log):
        t0 = time.monotonic()
        log("1/3 calibrating the network (point-to-point microbenchmark)")
        cals, cal_table = calibrate(settings.topologies, settings.bandwidths,
                                    repeats=settings.calibration_repeats, log=log)
        log("2/3 profiling the kernels on the spot and measuring real forward passes over shaped links")
        measured, profile = measure(settings, log=log)
    log("3/3 simulating the same points")
    results = predict(measured, profile, cals, settings)
    summary = summarize(results)
    elapsed = time.monotonic() - t0
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in (("results.csv", results), ("summary.csv", summary), ("profile.csv", profile)):
            with atomic_path(out / name) as tmp:
                df.to_csv(tmp, index=False, float_format="%.6g")
        cal_rows = cal_table.merge(pd.DataFrame([c.to_dict() for c in cals.values()]), on="topology")
        with atomic_path(out / "calibration.csv") as tmp:
            cal_rows.to_csv(tmp, index=False, float_format="%.6g")
        write_text_atomic(out / "summary.md", summary_markdown(results, summary, cals, settings, command, elapsed))
        plot(results, out / "predicted_vs_measured.png")
    log(verdict(summary)[1] + f" ({elapsed:.0f} s)")
    return results, summary
