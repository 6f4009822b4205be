"""The validation campaign: measure real multi-process inference over shaped links, predict the
same points with the simulator, and compare.

Steps (`run_validation`):

1. microbenchmarks, never the validation points: every strategy's kernels timed alone by the
   shipped profiler (`astrasim.profiling.profile_ops`, one thread, one process) and the harness's
   per-op dispatch cost (`dispatch.py`); on each testbed, before its points, the CPU cost of a
   message (`interference.py`) and, at each bandwidth, the network's alpha and efficiency from a
   point-to-point exchange (`calibrate.py`);
2. build every point as the simulator does (`point_for` -> `astrasim.pointrun.engine_inputs`);
3. measure: for each topology and N, build N shaped hosts (`netns.py`), each a worker process
   pinned to a CPU (`worker.pin`), and at each bandwidth run the point's own OpGraph on every host
   (`worker.py`, `programs.py`: real kernels, the engine's collective plans); latency = the
   median over repeats of (last rank's end - common start), and its spread over repeats as the
   point's noise figure. Right before and right after a point's passes its workers run the co-run
   microbenchmark (`corun.py`: every rank's kernels at once, no communication), which gives the
   point's costs (this VM's speed drifts within a minute, so they are taken seconds from it);
4. predict: `astrasim.engine.simulate` on the same engine inputs;
5. write results.csv, summary.csv / summary.md, calibration.csv, profile.csv and the plot
   (`report.py`).

error = predicted / measured - 1 (positive: the simulator is slower than reality).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from astrasim.fileio import write_csv_atomic, write_text_atomic
from astrasim.models import ModelSpec
from astrasim.validation.calibrate import SIM_KIND, Calibration, calibrate
from astrasim.validation.dispatch import dispatch_overhead_s
from astrasim.validation.launch import run_job
from astrasim.validation.netns import TOPOLOGIES, machine_lock, testbed
from astrasim.validation.graphs import VALIDATION_MODEL, graph_to_json
from astrasim.validation.report import TARGET_MAX, TARGET_MEDIAN, plot, summarize, summary_markdown, verdict
from astrasim.validation.steal import clean, least_stolen

__all__ = ["Settings", "load_settings", "run_validation", "summarize", "verdict", "plot", "summary_markdown",
           "TARGET_MEDIAN", "TARGET_MAX"]


def default_strategies() -> list[str]:
    """Every registered strategy at its default knobs, by its registry label."""
    from astrasim.strategies import STRATEGIES

    return [s.label() for s in STRATEGIES.values()]


@dataclass
class Settings:
    """One validation campaign; `strategies` are registry labels (astrasim.strategies.parse_label)."""

    hosts: list[int] = field(default_factory=lambda: [2, 4])
    bandwidths: list[float] = field(default_factory=lambda: [20.0, 100.0])
    topologies: list[str] = field(default_factory=lambda: list(TOPOLOGIES))
    strategies: list[str] = field(default_factory=default_strategies)
    repeats: int = 3
    warmup: int = 1
    budget_s: float = 1.5
    max_repeats: int = 20
    calibration_repeats: int = 5
    profile_repeats: int = 10
    model: ModelSpec = VALIDATION_MODEL
    seed: int = 0

    def check(self) -> None:
        from astrasim.errors import UserError
        from astrasim.strategies import parse_label

        if not self.hosts or any(n < 2 or n > 16 for n in self.hosts):
            raise UserError("every host count must be in 2..16", field="hosts")
        if not self.bandwidths or any(b <= 0 or b > 10000 for b in self.bandwidths):
            raise UserError("bandwidths must be in (0, 10000] Mbps", field="bandwidths")
        bad = [t for t in self.topologies if t not in TOPOLOGIES]
        if bad or not self.topologies:
            raise UserError(f"unknown topology {bad}; use {', '.join(TOPOLOGIES)}", field="topologies")
        if not self.strategies:
            raise UserError("give at least one strategy label", field="strategies")
        for label in self.strategies:
            try:
                strategy, knobs = parse_label(label)
                for n in self.hosts:
                    strategy.check(self.model, n, self.model.tokens, knobs)
            except Exception as exc:  # unknown name, bad tag, a knob the model cannot take
                raise UserError(f"strategy '{label}': {exc}; use registry labels such as "
                                f"{', '.join(repr(x) for x in default_strategies())}",
                                field="strategies") from None
        if self.repeats < 1 or self.warmup < 0:
            raise UserError("repeats must be >= 1 and warmup >= 0", field="repeats")


SETTINGS_KEYS = tuple(Settings.__dataclass_fields__)


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
        settings.hosts = [int(h) for h in settings.hosts]
        settings.bandwidths = [float(b) for b in settings.bandwidths]
        settings.strategies = [str(s) for s in settings.strategies]
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc), field="scenario") from None
    settings.check()
    return settings


# ------------------------------------------------------------------------- points, as simulated
PROFILE_KEY = "validation-microbenchmark-profile"


def point_for(settings: Settings, label: str, n: int, topology: str | None, bandwidth_mbps: float,
              cal: Calibration | None, host_setup: dict | None = None, profile_key: str = PROFILE_KEY,
              costs=None):
    """The scenario Point of one validation point (costs: `costs`, the microbenchmark profile
    named `profile_key`; network: the testbed's simulator kind with the calibrated alpha and
    efficiency; `host_setup`: the testbed machine's hosts and cores, see `machine_hosts`)."""
    from astrasim.scenario.grid import NetworkPoint, Point
    from astrasim.strategies import parse_label

    strategy, knobs = parse_label(label)
    net = NetworkPoint("ideal", 1.0) if topology is None else calibrated_network(topology, bandwidth_mbps, cal)
    return Point(scenario="validate", model=settings.model, tokens=settings.model.tokens, strategy=strategy.name,
                 knobs=knobs, devices=1 if strategy.single_device else n, hardware="validation host",
                 profile_path=profile_key, device=None, speed=1.0, speeds=None, network=net, costs=costs,
                 **(host_setup or {}))


def calibrated_network(topology: str, bandwidth_mbps: float, cal: Calibration):
    """The simulator's network of a testbed: its topology's kind with the calibrated alpha and
    efficiency (a NetworkPoint; `.build(n)` gives the topology)."""
    from astrasim.scenario.grid import NetworkPoint

    return NetworkPoint(SIM_KIND[topology], float(bandwidth_mbps), latency_s=cal.alpha_s, efficiency=cal.efficiency)


def microbenchmark_profile(settings: Settings, log=print) -> pd.DataFrame:
    """Every (strategy, N) of the grid timed alone by the shipped profiler (one thread, ops in
    program order), installed under PROFILE_KEY: the base table whose rows each point's co-run
    windows replace (`install_point_costs`)."""
    from astrasim.profiling import profile_ops
    from astrasim.strategies import parse_label

    tables, seen = [], set()
    for label in settings.strategies:
        strategy, knobs = parse_label(label)
        g, k = strategy.profile_key(knobs)
        for name, n in sorted({strategy.profile_rows(n) for n in settings.hosts}):
            key = (name, n, g, k)
            if key in seen:
                continue
            seen.add(key)
            extra = {"codebook": k} if k else {}
            tables.append(profile_ops(settings.model, [name], [n], [g], settings.model.tokens, threads=1,
                                      repeats=settings.profile_repeats, warmup=2, progress=False, **extra))
    table = pd.concat(tables, ignore_index=True)
    table["alone_s"] = table["median_s"]
    log(f"  profiled {len(seen)} (strategy, N) configurations alone: {len(table)} op rows")
    return table


def point_key(topology: str | None, n: int, bandwidth_mbps: float, label: str) -> str:
    """The profile key of one point's costs (its own co-run windows)."""
    return f"{PROFILE_KEY}:{topology or 'none'}:{n}:{bandwidth_mbps:g}:{label}"


def alone_costs(alone: pd.DataFrame, source: str = "validation microbenchmark profile"):
    """The alone profile as per-op costs (what every point is built from before its own windows)."""
    from astrasim.compute.profiles import ProfileCosts

    return ProfileCosts(alone, source=source)


def point_costs(alone: pd.DataFrame, label: str, n: int, costs: dict[str, float], key: str):
    """(the alone profile with `label`'s N-device rows re-timed by its co-run windows, as per-op costs
    named `key`; the re-timed rows)."""
    from astrasim.compute.profiles import ProfileCosts
    from astrasim.strategies import parse_label

    strategy, knobs = parse_label(label)
    g, k = strategy.profile_key(knobs)
    name, n_dev = strategy.profile_rows(n)  # pp's stages run the single device's ops
    table = alone.copy()
    rows = (table["strategy"] == name) & (table["devices"] == n_dev) & (table["groups"] == g) \
        & (table["codebook"] == k)
    if not rows.any():
        raise RuntimeError(f"no profile rows of {label} at N={n} to re-time: the alone profile lacks {name}, N={n_dev}")
    table.loc[rows, "median_s"] = [costs.get(op, s) for op, s in zip(table.loc[rows, "op"], table.loc[rows, "median_s"])]
    return ProfileCosts(table, source=f"validation co-run windows ({key})"), table[rows]


def core_shares(n: int, cores: int) -> list[float]:
    """Each pinned rank's share of its CPU when every rank computes (rank r on CPU r x cores // n)."""
    on = [r * cores // n for r in range(n)]
    return [min(1.0, 1.0 / on.count(c)) for c in on]


def machine_cores() -> int:
    """The CPUs the workers may run on (they are pinned among these: worker.pin)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_hosts(op_overhead_s: float, cores: int | None = None):
    """n -> the Point fields of the testbed: its N hosts are processes pinned to this machine's
    cores (rank r on CPU r x cores // N, worker.pin), so the simulated devices sit in even groups on
    one-core hosts (hosts = min(N, cores), cores_per_host = 1; devices d x hosts // N), and every
    op pays the measured dispatch cost."""
    cores = cores or machine_cores()
    return lambda n: {"hosts": min(n, cores), "cores_per_host": 1, "op_overhead_s": op_overhead_s}


# --------------------------------------------------------------------------------- measuring
def _latencies(records: list[list[dict]]) -> list[float]:
    """records[rank][repeat] -> per repeat, the slowest rank's end minus the common start."""
    return [max(r[k]["end"] for r in records) - records[0][k]["start"] for k in range(len(records[0]))]


def _pass_shares(records: list[list[dict]]) -> list[float]:
    """records[rank][repeat] -> per repeat, the largest share stolen as a rank saw it (0 if unrecorded)."""
    return [max(r[k].get("stolen", 0.0) for r in records) for k in range(len(records[0]))]


def clean_passes(records: list[list[dict]]) -> list[list[dict]]:
    """records[rank][repeat] without the repeats the hypervisor visibly took from (steal.clean)."""
    keep = clean(_pass_shares(records))
    return [[r[k] for k in keep] for r in records]


def _loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def measured_row(res: list[dict], label: str) -> dict:
    """Median latency, its spread (noise figure) and in-situ op times of one point's passes (those
    the hypervisor did not visibly take from: `clean_passes`), and the share stolen during them."""
    every = [r["result"][label]["passes"] for r in res]
    recs = clean_passes(every)
    lat = sorted(_latencies(recs))
    med = statistics.median(lat)
    q = statistics.quantiles(lat, n=10, method="inclusive") if len(lat) > 1 else [med] * 9
    compute = statistics.median(max(r[k]["compute_s"] for r in recs) for k in range(len(recs[0])))
    ops: dict[str, list[float]] = {}
    for r in recs:  # per rank: median over passes; then the mean over ranks
        for op in r[0]["ops"]:
            ops.setdefault(op, []).append(statistics.median(p["ops"].get(op, 0.0) for p in r))
    return {"measured_s": med, "measured_min_s": lat[0], "measured_max_s": lat[-1],
            "noise": (q[8] - q[0]) / (2 * med) if med > 0 else 0.0, "measured_compute_s": compute,
            "in_situ_ops": json.dumps({op: sum(v) / len(v) for op, v in ops.items()}, sort_keys=True),
            "repeats": len(lat), "passes_dropped": len(every[0]) - len(lat),
            "stolen": statistics.mean(_pass_shares(recs)), "late_start_s": max(r[k]["late_s"] for r in recs for k in range(len(r))),
            "loadavg_1m": _loadavg()}


def measure(settings: Settings, host_setup, alone: pd.DataFrame,
            log=print, trace_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple, Calibration], pd.DataFrame]:
    """Real latencies of every (topology, N, bandwidth, strategy) point (single once): each point's
    engine inputs are built first, and its OpGraph is what the hosts run; each point is costed by
    the co-run rounds its workers ran right before each pass (`cost_rounds`, `corun.py`), on top of
    the `alone` profile, and its network by the calibration of its testbed at its bandwidth, taken
    right before (`calibrate.py`). With `trace_dir`, every job's raw per-rank records (each pass's op and
    message intervals and CPU time, the co-run rounds) go to trace_dir/<topology>-N<n>-<bw>Mbps.json.
    Returns (measured rows, the profiles used: alone rows and each
    point's, {(topology, N, bandwidth): Calibration}, the raw calibration rows)."""
    from astrasim.network.topology import DEFAULTS
    from astrasim.pointrun import engine_inputs
    from astrasim.strategies import parse_label
    from astrasim.validation.corun import ROUNDS, one_core_op_seconds, round_spread

    rows, profiles = [], [alone.assign(topology="alone", hosts=0, bandwidth_mbps=float("nan"), label="")]
    costs_alone = alone_costs(alone)
    job = {"mode": "graphs", "model": asdict(settings.model), "warmup": settings.warmup,
           "repeats": settings.repeats, "budget_s": settings.budget_s, "max_repeats": settings.max_repeats,
           "seed": settings.seed, "pin": True, "kernel_rounds": ROUNDS, "trace": trace_dir is not None}
    singles = [s for s in settings.strategies if parse_label(s)[0].single_device]
    multi = [s for s in settings.strategies if s not in singles]
    cores = machine_cores()

    cals: dict[tuple, Calibration] = {}
    cal_tables: list[pd.DataFrame] = []

    def run(bed, labels, n, topo, bw, algorithm, setup, cal=None):
        points = {lb: point_for(settings, lb, n, topo, bw, cal, setup, costs=costs_alone) for lb in labels}
        graphs = [{"label": lb, "graph": graph_to_json(engine_inputs(p).graph)} for lb, p in points.items()]
        t0 = time.monotonic()
        def kept_stolen(res, job_share):  # a job counts as stolen as the samples its medians keep
            return max(max(measured_row(res, lb)["stolen"], kept_share_of_rounds(res, lb)) for lb in labels)

        res, stolen = least_stolen(lambda: run_job(bed, {**job, "points": graphs, "algorithm": algorithm},
                                                   timeout_s=900), log, f"{topo or 'none'} N={n} {bw:g} Mbps",
                                   share_of=kept_stolen)
        if trace_dir is not None:
            write_trace(Path(trace_dir), f"{topo or 'none'}-N{n}-{bw:g}Mbps", res)
        parts = []
        for lb, p in points.items():
            key = point_key(topo, n, bw, lb)
            windows = point_rounds(res, lb)
            costs = one_core_op_seconds(windows, core_shares(p.devices, cores))
            retimed, timed = point_costs(alone, lb, p.devices, costs, key)
            profiles.append(timed.assign(topology=topo or "none", hosts=p.devices, bandwidth_mbps=bw, label=lb))
            rows.append({"topology": topo or "none", "hosts": p.devices, "bandwidth_mbps": bw if topo else float("nan"),
                         "strategy": lb, **measured_row(res, lb), "job_stolen": stolen,
                         "_point": replace(p, profile_path=key, costs=retimed, speed_jitter=round_spread(windows))})
            parts.append(f"{lb} {rows[-1]['measured_s'] * 1e3:.0f}")
        log(f"  measured {topo or 'none':6s} N={n} {bw:g} Mbps ({time.monotonic() - t0:.0f} s): "
            + ", ".join(parts) + " ms")

    if singles:
        with testbed(1, settings.topologies[0], settings.bandwidths[0]) as bed:  # type: ignore[arg-type]
            run(bed, singles, 1, None, float("nan"), "direct", host_setup(1))
    for topo in settings.topologies if multi else []:
        algorithm = DEFAULTS[SIM_KIND[topo]]["default_algorithm"]  # what "auto" means in the simulator
        for n in settings.hosts:
            with testbed(n, topo, settings.bandwidths[0]) as bed:  # type: ignore[arg-type]
                setup = None
                for bw in settings.bandwidths:
                    bed.set_bandwidth(bw)
                    cal, table = calibrate(bed, repeats=settings.calibration_repeats, log=log)
                    cals[(topo, n, bw)] = cal
                    cal_tables.append(table)
                    if setup is None:  # once per testbed, on the network just calibrated
                        base = host_setup(n)
                        setup = {**base, "message_cpu_s": message_cpu(bed, n, topo, cal, base, log)}
                    run(bed, multi, n, topo, bw, algorithm, setup, cal)
    cal_table = pd.concat(cal_tables, ignore_index=True) if cal_tables else pd.DataFrame()
    return pd.DataFrame(rows), pd.concat(profiles, ignore_index=True), cals, cal_table


def write_trace(folder: Path, name: str, res: list[dict]) -> None:
    """One job's raw worker records as JSON (diagnostics: `astrasim validate --trace FOLDER`)."""
    from astrasim.fileio import write_text_atomic

    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / f"{name}.json", json.dumps(res))


PAIRED_MIN = 5  # co-run rounds paired with passes that suffice alone for a point's costs


def cost_rounds(per_rank: list[dict]) -> list[dict]:
    """The co-run rounds a point's costs come from, per rank (each rank's result of the point):
    the rounds run right before each pass when there are at least PAIRED_MIN of them (they saw the
    machine as the passes did: its speed drifts within seconds, and windows before and after a
    point's passes once had its kernels at 134 ms against 192 ms inside them), otherwise those
    pooled with the windows before and after the passes."""
    from astrasim.validation.corun import pooled

    paired = [r.get("paired") for r in per_rank]
    if all(p and len(p["wall"]) >= PAIRED_MIN for p in paired):
        return paired
    return [pooled([r["kernels"], p]) if p else r["kernels"] for r, p in zip(per_rank, paired)]


def point_rounds(res: list[dict], label: str) -> list[dict]:
    """Per rank, the co-run rounds a point's costs and jitter come from (`cost_rounds`), without
    those the hypervisor visibly took from (`corun.drop_stolen_rounds`)."""
    from astrasim.validation.corun import drop_stolen_rounds

    return drop_stolen_rounds(cost_rounds([r["result"][label] for r in res]))


def kept_share_of_rounds(res: list[dict], label: str) -> float:
    """Mean share stolen over the co-run rounds of a point that `drop_stolen_rounds` keeps."""
    if not all("kernels" in r["result"][label] for r in res):
        return 0.0
    kept = point_rounds(res, label)
    shares = [s for r in kept for s in r.get("stolen", [])]
    return statistics.mean(shares) if shares else 0.0


def message_cpu(bed, n: int, topology: str, cal: Calibration, setup: dict, log=print) -> float:
    """The testbed's CPU cost per message (`interference.py`), fitted with the simulator on its
    calibrated network and its hosts; re-taken like a point's job when the hypervisor steals."""
    from astrasim.engine.cores import Placement
    from astrasim.validation.interference import fit_message_cpu, kept_pairs

    res, _ = least_stolen(lambda: run_job(bed, {"mode": "interference", "pin": True}, timeout_s=300), log,
                          f"message CPU microbenchmark {topology} N={n}",
                          share_of=lambda res, job_share: kept_pairs([r["result"] for r in res])[1])
    net = calibrated_network(topology, bed.bandwidth_mbps, cal).build(n)
    cost = fit_message_cpu([r["result"] for r in res], net, Placement.of(n, setup["hosts"], setup["cores_per_host"]),
                           core_shares(n, machine_cores()))
    log(f"  message CPU cost {topology} N={n}: {cost * 1e6:.0f} us per message sent or received")
    return cost


def predict(measured: pd.DataFrame) -> pd.DataFrame:
    """Add the simulator's prediction to every measured row: the same engine inputs the hosts ran
    (and, as a diagnostic, the same graph with the op times measured inside the real passes)."""
    from astrasim.engine import simulate
    from astrasim.pointrun import engine_inputs, run_point

    out = []
    for row in measured.to_dict("records"):
        point = row.pop("_point")
        res, _ = run_point(point)
        inputs = engine_inputs(point)
        in_situ = json.loads(row["in_situ_ops"])
        g2 = replace(inputs.graph, ops=[replace(op, seconds=in_situ.get(op.name, op.seconds))
                                        if hasattr(op, "seconds") and op.seconds > 0 else op
                                        for op in inputs.graph.ops])
        # (in-situ op times were measured under the real core sharing and messages: neither here)
        pred2 = simulate(g2, inputs.topology, speeds=inputs.speeds, op_overhead_s=inputs.op_overhead_s).latency_s
        net = point.network
        pred = res.latency_s
        out.append({**row, "predicted_s": pred, "error": pred / row["measured_s"] - 1.0,
                    "abs_error": abs(pred / row["measured_s"] - 1.0),
                    "predicted_in_situ_s": pred2, "error_in_situ": pred2 / row["measured_s"] - 1.0,
                    "predicted_compute_s": max(res.compute_s), "comm_bits": res.comm_bits,
                    "n_messages": res.n_messages, "alpha_s": net.latency_s or 0.0,
                    "efficiency": net.efficiency or 1.0, "hosts_on_machine": point.hosts,
                    "cores": point.cores_per_host, "op_overhead_s": point.op_overhead_s,
                    "message_cpu_s": point.message_cpu_s,
                    "speed_jitter": point.speed_jitter})
    return pd.DataFrame(out)


def run_validation(settings: Settings, out_dir: str | Path | None = "validation", *, command: str = "",
                   log=print, trace_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole campaign; writes the files into `out_dir` (None: write nothing), and with
    `trace_dir` every job's raw worker records there (`measure`). Returns (results, summary)."""
    settings.check()
    with machine_lock(log):
        t0 = time.monotonic()
        log("1/3 microbenchmarks: the kernels (each alone) and the harness's dispatch cost")
        profile = microbenchmark_profile(settings, log=log)
        overhead = dispatch_overhead_s()
        log(f"  dispatch cost per op (no-op chain walked by the harness): {overhead * 1e6:.1f} us")
        log("2/3 measuring real forward passes over shaped links (each point's own OpGraph): per testbed its "
            "message CPU cost, per bandwidth its network calibration, per point its kernels timed all ranks at "
            "once right before each pass and in windows before and after its passes")
        measured, profile, cals, cal_table = measure(settings, machine_hosts(overhead), profile, log=log,
                                                      trace_dir=trace_dir)
    log("3/3 simulating the same points")
    results = predict(measured)
    summary = summarize(results)
    elapsed = time.monotonic() - t0
    if out_dir is not None:
        write_outputs(Path(out_dir), results, summary, profile, cal_table, cals, settings.model,
                      summary_markdown(results, summary, cals, settings, command, elapsed))
    log(verdict(summary)[1] + f" ({elapsed:.0f} s)")
    return results, summary


def calibration_rows(cal_table: pd.DataFrame, cals: dict[tuple, Calibration]) -> pd.DataFrame:
    """calibration.csv: every raw transfer with its testbed's fit (only the columns when a campaign
    of single-device points calibrated nothing)."""
    fits = pd.DataFrame([c.to_dict() for c in cals.values()], columns=list(Calibration.__dataclass_fields__))
    return cal_table.merge(fits, on=["topology", "hosts", "bandwidth_mbps"]) if len(cal_table) else fits


def write_outputs(out: Path, results: pd.DataFrame, summary: pd.DataFrame, profile: pd.DataFrame,
                  cal_table: pd.DataFrame, cals: dict[tuple, Calibration], model: ModelSpec, markdown: str) -> None:
    """The campaign's files (each written whole or not at all): results, summary, profile and
    calibration CSVs, the model measured (model.json), summary.md and the plot."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "model.json", json.dumps(asdict(model), indent=1, sort_keys=True) + "\n")
    cal_rows = calibration_rows(cal_table, cals)
    for name, df in (("results.csv", results), ("summary.csv", summary), ("profile.csv", profile),
                     ("calibration.csv", cal_rows)):
        write_csv_atomic(out / name, df, "%.6g")
    write_text_atomic(out / "summary.md", markdown)
    plot(results, out / "predicted_vs_measured.png")


def repredict(settings: Settings, measurements: str | Path, out_dir: str | Path | None, *, command: str = "",
              log=print) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Today's simulator on an earlier campaign's measurements and microbenchmarks (`reuse.py`):
    nothing is measured or refitted. Writes the same files into `out_dir` (None: nothing)."""
    from astrasim.validation.reuse import load_measurements

    t0 = time.monotonic()
    measured, profile, cals, cal_table = load_measurements(settings, measurements)
    results = predict(measured)
    summary = summarize(results)
    if out_dir is not None:
        note = (f"Predicted again by today's simulator from the measurements and microbenchmarks stored in "
                f"`{measurements}` (nothing re-measured; the machine line is where it was re-predicted).")
        write_outputs(Path(out_dir), results, summary, profile, cal_table, cals, settings.model,
                      summary_markdown(results, summary, cals, settings, command, None, note))
    log(verdict(summary)[1] + f" (re-predicted {len(results)} stored points in {time.monotonic() - t0:.1f} s)")
    return results, summary
